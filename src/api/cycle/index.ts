/**
 * Collection cycle of the API server (spec api-server.md §10.1–10.3).
 *
 * How `src/api/main.ts` starts it (after `CeemsDb.open`, before serving HTTP):
 *
 *   const collector = await createCollector(loadedConfig, { db, logger, configDir, timeZone, retentionDays });
 *   collector.start();          // one collection now, then one every data.update_interval
 *   ...
 *   await collector.stop();     // on SIGINT/SIGTERM: aborts running fetches, waits, closes clients
 *
 * `createCollector` is the default `CollectorFactory` of main.ts; it throws on start-up errors (bad
 * extra_config, missing SLURM tools, Keystone authentication failure).
 *
 * Each cluster advances on its own: its next window starts at the end of its last committed window
 * (`MAX(last_updated_at) FROM usage WHERE cluster_id = ?` after a restart, the in-memory end after an
 * empty window), so a failing or slow cluster never holds back or loses data of the others. One window of
 * one cluster = fetch units, fetch users/projects, run the cluster's updaters in order, then ONE DB
 * transaction (`storeCollection`). A failure anywhere before the commit leaves nothing behind and the
 * window is retried on the next tick; a kill during a window loses only uncommitted work, which the
 * restart redoes from the last committed end (never counted twice).
 */

import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../common/logger.js';
import type { LoadedConfig } from '../config.js';
import { addMetricMaps } from '../db/functions.js';
import type { CollectionWindow, UnitRecord } from '../db/index.js';
import type { UnitStore } from '../db/store.js';
import type { BackgroundTask, CollectorContext } from '../main.js';
import type { MetricMap } from '../models.js';
import { createManager } from '../resource/index.js';
import type { ResourceManager } from '../resource/types.js';
import { formatDatetime, parseDatetime } from '../timefmt.js';
import { clusterUpdaters, createUpdaters } from '../updater/index.js';
import type { Updater } from '../updater/types.js';

export interface CollectorCluster {
  manager: ResourceManager;
  /** Updaters of this cluster, in configuration order. */
  updaters: Updater[];
}

export interface CollectorOptions {
  /** SQLite (CeemsDb) or PostgreSQL (PgStore). */
  db: UnitStore;
  /**
   * Commits one window (main.ts: SQLite's writer thread, or PostgreSQL's leader connection); default:
   * `db.storeCollection`.
   */
  store?: (w: CollectionWindow) => Promise<void>;
  logger: Logger;
  clusters: CollectorCluster[];
  /** Resolved IANA zone of the DB. */
  timeZone: string;
  updateIntervalMs: number;
  maxUpdateIntervalMs: number;
  /** `data.update_from`: `""`, `today`, `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS]`. */
  updateFrom: string;
  /** Retention purge in days; undefined disables it (hidden skip flag). */
  retentionDays?: number;
  /** Pause between catch-up windows (spec: 1 s). */
  windowPauseMs?: number;
  /** Clock (ms); tests move it. */
  now?: () => number;
}

export class ConfigurationError extends Error {}

/** Start of the first collection on an empty DB (`data.update_from`), ms. */
export function parseUpdateFrom(text: string, timeZone: string, now: number): number {
  if (text === '' || text === 'today')
    return parseDatetime(formatDatetime(now, timeZone).slice(0, 10), timeZone)!;
  const ms = parseDatetime(text, timeZone);
  if (ms === undefined)
    throw new ConfigurationError(
      `invalid data.update_from '${text}': use today, YYYY-MM-DD, YYYY-MM-DDTHH:MM or YYYY-MM-DDTHH:MM:SS`,
    );
  return ms;
}

/** Windows `[start, end]` from `last` to `now`, each at most `maxMs` long (§10.1). */
export function windows(last: number, now: number, maxMs: number): Array<[number, number]> {
  if (now <= last) return [];
  if (now - last < maxMs) return [[last, now]];
  const out: Array<[number, number]> = [];
  for (let s = last; s < now; s += maxMs) out.push([s, Math.min(s + maxMs, now)]);
  return out;
}

export interface WindowResult {
  clusterId: string;
  start: number;
  end: number;
  units: number;
  error?: string;
}

export class Collector implements BackgroundTask {
  private readonly opts: Required<Omit<CollectorOptions, 'retentionDays'>> & { retentionDays?: number };
  private readonly progress = new Map<string, number>();
  private readonly running = new Map<string, Promise<WindowResult[]>>();
  private readonly updateFromMs: number;
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(opts: CollectorOptions) {
    if (!(opts.updateIntervalMs > 0))
      throw new ConfigurationError('data.update_interval must be greater than 0');
    if (!(opts.maxUpdateIntervalMs > 0))
      throw new ConfigurationError('data.max_update_interval must be greater than 0');
    this.opts = {
      windowPauseMs: 1000,
      now: Date.now,
      store: async (w) => opts.db.storeCollection(w),
      ...opts,
    };
    this.updateFromMs = parseUpdateFrom(opts.updateFrom, opts.timeZone, this.now());
  }

  /** Current time truncated to whole seconds: stored times have second resolution (resume without overlap). */
  private now(): number {
    return Math.floor(this.opts.now() / 1000) * 1000;
  }

  /** Where the next window of a cluster starts: its last committed end, else the DB's, else update_from. */
  private async startOf(clusterId: string): Promise<number> {
    const known = this.progress.get(clusterId);
    if (known !== undefined) return known;
    const db = this.opts.db;
    const text = (await db.clusterLastUpdatedAt(clusterId)) ?? (await db.lastUpdatedAt());
    const ms =
      (text === undefined ? undefined : parseDatetime(text, this.opts.timeZone)) ?? this.updateFromMs;
    // Pinned so that a failing first window is retried from here, not from where other clusters are.
    this.progress.set(clusterId, ms);
    return ms;
  }

  /**
   * The node energy of the window from the cluster's updaters, summed (one updater per TSDB shard); a
   * failure is logged and costs only this figure, never the window's units.
   */
  private async clusterEnergy(
    c: CollectorCluster,
    start: number,
    end: number,
  ): Promise<MetricMap | undefined> {
    let total: MetricMap | undefined;
    for (const up of c.updaters) {
      try {
        const e = await up.clusterEnergy?.(start, end, this.abort.signal);
        if (e) total = addMetricMaps(total ?? {}, e);
      } catch (err) {
        this.opts.logger.warn(
          { cluster_id: c.manager.clusterId, updater: up.id, err: (err as Error).message },
          'Failed to query the energy of the nodes',
        );
      }
    }
    return total;
  }

  /** Fetches, updates and commits one window of one cluster. Throws on any failure (nothing stored). */
  private async collectWindow(c: CollectorCluster, start: number, end: number): Promise<number> {
    const signal = this.abort.signal;
    const m = c.manager;
    const units: UnitRecord[] = (await m.fetchUnits(start, end, signal)).filter((u) => u.uuid !== '');
    let usersProjects: Awaited<ReturnType<ResourceManager['fetchUsersProjects']>> | undefined;
    try {
      usersProjects = await m.fetchUsersProjects(end, signal);
    } catch (e) {
      // Memberships are refreshed on every window; the units of this window are still worth storing.
      this.opts.logger.warn(
        { cluster_id: m.clusterId, err: (e as Error).message },
        'Failed to fetch users and projects',
      );
    }
    for (const u of units) {
      u.cluster_id = m.clusterId;
      u.resource_manager = m.manager;
    }
    for (const up of c.updaters) await up.update(m.clusterId, units, start, end, signal);
    const energy = await this.clusterEnergy(c, start, end);
    if (signal.aborted) throw new Error('collection stopped');
    await this.opts.store({
      start,
      end,
      timeZone: this.opts.timeZone,
      units,
      clusterEnergy: energy && { cluster_id: m.clusterId, resource_manager: m.manager, kwh: energy },
      users: usersProjects?.users.map((u) => ({
        ...u,
        cluster_id: m.clusterId,
        resource_manager: m.manager,
      })),
      projects: usersProjects?.projects.map((p) => ({
        ...p,
        cluster_id: m.clusterId,
        resource_manager: m.manager,
      })),
    });
    return units.length;
  }

  /** Catches one cluster up to now, window by window; stops at the first failing window. */
  private async collectCluster(c: CollectorCluster): Promise<WindowResult[]> {
    const id = c.manager.clusterId;
    const results: WindowResult[] = [];
    let from: number;
    try {
      from = await this.startOf(id);
    } catch (e) {
      // A database that cannot be read (PostgreSQL unreachable): nothing to do until the next tick.
      const error = (e as Error).message;
      this.opts.logger.error({ cluster_id: id, err: error }, 'Cannot read where the collection resumes');
      return [{ clusterId: id, start: 0, end: 0, units: 0, error }];
    }
    const list = windows(from, this.now(), this.opts.maxUpdateIntervalMs);
    for (let i = 0; i < list.length && !this.stopped; i++) {
      const [start, end] = list[i]!;
      if (i > 0) await this.pause();
      const t0 = Date.now();
      try {
        const n = await this.collectWindow(c, start, end);
        this.progress.set(id, end);
        results.push({ clusterId: id, start, end, units: n });
        this.opts.logger.info(
          {
            cluster_id: id,
            from: formatDatetime(start, this.opts.timeZone),
            to: formatDatetime(end, this.opts.timeZone),
            units: n,
            duration_ms: Date.now() - t0,
          },
          'Collected units',
        );
      } catch (e) {
        const error = (e as Error).message;
        results.push({ clusterId: id, start, end, units: 0, error });
        if (this.stopped) {
          this.opts.logger.info(
            { cluster_id: id },
            'Collection interrupted by shutdown; nothing stored for the window',
          );
          break;
        }
        this.opts.logger.error(
          {
            cluster_id: id,
            manager: c.manager.manager,
            from: formatDatetime(start, this.opts.timeZone),
            err: error,
          },
          'Collection failed; the window is retried at the next update',
        );
        break;
      }
    }
    return results;
  }

  /** Pause between catch-up windows; cut short by stop(). */
  private pause(): Promise<void> {
    return sleep(this.opts.windowPauseMs, undefined, { signal: this.abort.signal }).catch(() => {});
  }

  /**
   * One collection: retention purge, then every cluster that is not still busy with its previous run
   * catches up concurrently. Resolves when all started cluster runs are done.
   */
  async runOnce(): Promise<WindowResult[]> {
    if (this.opts.retentionDays !== undefined) {
      try {
        await this.opts.db.purgeExpired(this.opts.retentionDays);
      } catch (e) {
        this.opts.logger.error({ err: (e as Error).message }, 'Retention purge failed');
      }
    }
    const started: Promise<WindowResult[]>[] = [];
    for (const c of this.opts.clusters) {
      const id = c.manager.clusterId;
      if (this.running.has(id)) {
        this.opts.logger.warn(
          { cluster_id: id },
          'Previous collection of the cluster still running; skipped',
        );
        continue;
      }
      const p = this.collectCluster(c).finally(() => this.running.delete(id));
      this.running.set(id, p);
      started.push(p);
    }
    return (await Promise.all(started)).flat();
  }

  /** Collects now and then every update interval. */
  start(): void {
    const tick = () => {
      if (this.stopped) return;
      void this.runOnce();
      this.timer = setTimeout(tick, this.opts.updateIntervalMs);
    };
    tick();
  }

  /** Stops the schedule, aborts fetches in flight, waits for the cluster runs and closes clients. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.abort.abort();
    await Promise.allSettled([...this.running.values()]);
    const updaters = new Set(this.opts.clusters.flatMap((c) => c.updaters));
    await Promise.allSettled([
      ...this.opts.clusters.map((c) => c.manager.close()),
      ...[...updaters].map((u) => u.close()),
    ]);
  }
}

/** Builds managers and updaters from the configuration (§3.2, §3.3) and the collector over them. */
export async function createCollector(loaded: LoadedConfig, ctx: CollectorContext): Promise<Collector> {
  const data = loaded.config.ceems_api_server.data;
  const log = ctx.logger;
  const updaters = createUpdaters(loaded.config.updaters, log, ctx.configDir);
  const clusters: CollectorCluster[] = [];
  try {
    for (const c of loaded.config.clusters) {
      const manager = await createManager(c, {
        logger: log,
        timeZone: ctx.timeZone,
        configDir: ctx.configDir,
        updateIntervalMs: data.update_interval,
      });
      clusters.push({ manager, updaters: clusterUpdaters(c, updaters, log) });
    }
  } catch (e) {
    await Promise.allSettled([
      ...clusters.map((c) => c.manager.close()),
      ...[...updaters.values()].map((u) => u.close()),
    ]);
    throw e;
  }
  // The original's internal `default` manager returns nothing: collecting it would only log empty windows.
  if (clusters.length === 0) log.warn('No clusters configured: no units will be collected');
  return new Collector({
    db: ctx.db,
    store: ctx.store,
    logger: log,
    clusters,
    timeZone: ctx.timeZone,
    updateIntervalMs: data.update_interval,
    maxUpdateIntervalMs: data.max_update_interval,
    updateFrom: data.update_from,
    retentionDays: ctx.retentionDays,
  });
}
