// Builds the configured updaters (spec §3.3) and resolves each cluster's updater ids.

import type { Logger } from '../../common/logger.js';
import type { ClusterConfig, UpdaterConfig } from '../config.js';
import { TsdbUpdater } from './tsdb.js';
import type { Updater } from './types.js';

/** Every configured updater by id; a bad updater config is a start-up error. */
export function createUpdaters(
  configs: readonly UpdaterConfig[],
  logger: Logger,
  configDir: string,
): Map<string, Updater> {
  const out = new Map<string, Updater>();
  for (const c of configs) {
    out.set(
      c.id,
      new TsdbUpdater(
        {
          id: c.id,
          updater: c.updater,
          web: { url: '', ...c.web },
          extra_config: c.extra_config ?? undefined,
        },
        { logger, configDir },
      ),
    );
  }
  return out;
}

/** The updaters of a cluster in configuration order; unknown ids are logged and skipped. */
export function clusterUpdaters(
  cluster: ClusterConfig,
  all: Map<string, Updater>,
  logger: Logger,
): Updater[] {
  return cluster.updaters.flatMap((id) => {
    const u = all.get(id);
    if (!u)
      logger.warn(
        { cluster_id: cluster.id, updater: id },
        'Unknown updater id in cluster configuration; skipped',
      );
    return u ? [u] : [];
  });
}
