// ceems_lb entry point: flags, configuration, cluster id validation, one listener per backend type.

import { dirname, resolve } from 'node:path';
import { ConfigError, logConfigNotices } from '../common/config.js';
import type { FlagSpec, ParsedFlags } from '../common/flags.js';
import { createHttpClient } from '../common/httpclient.js';
import { createPlainServer, type PlainServer } from '../common/httpserver.js';
import type { Logger } from '../common/logger.js';
import { listenThenDrop, resolveRunAsUser } from '../common/privileges.js';
import { PRIVILEGE_FLAGS, RUN_AS_USER_FLAG, runServerProgram, SERVER_FLAGS } from '../common/program.js';
import { postgresReader } from '../common/sqlreader.js';
import { webConfigFiles } from '../common/webconfig.js';
import { ApiAuthzSource, Authorizer, type AuthzSource, DbAuthzSource } from './authz.js';
import { Backend, BackendPool } from './backend.js';
import { clientBaseDir, type LbConfig, loadConfig } from './config.js';
import { ParseCache } from './promql.js';
import { loadBalancerHandler } from './server.js';

const PROGRAM = 'ceems_lb';
const DESCRIPTION = 'Prometheus and Pyroscope load balancer with access control for CEEMS.';

export const FLAGS: readonly FlagSpec[] = [
  {
    name: 'config.file',
    type: 'string',
    default: '',
    env: 'CEEMS_LB_CONFIG_FILE',
    help: 'Configuration file path.',
  },
  {
    name: 'config.file.expand-env-vars',
    type: 'bool',
    default: false,
    help: 'Any environment variables that are referenced in config file will be expanded.',
  },
  {
    name: 'web.listen-address',
    type: 'string',
    repeatable: true,
    default: [':9030', ':9040'],
    help: 'Addresses on which to expose the load balancers; address i serves the i-th backend type (TSDB, Pyroscope) in order of appearance.',
  },
  {
    name: 'web.config.file',
    type: 'string',
    default: '',
    env: 'CEEMS_LB_WEB_CONFIG_FILE',
    help: 'Path to configuration file that can enable TLS or authentication.',
  },
  RUN_AS_USER_FLAG,
  ...SERVER_FLAGS,
  ...PRIVILEGE_FLAGS,
  {
    name: 'lb.backend-timeout',
    type: 'duration',
    default: '5m',
    hidden: true,
    help: 'Longest wait for response headers and between body chunks of a backend.',
  },
  {
    name: 'lb.health-check-interval',
    type: 'duration',
    default: '20s',
    hidden: true,
    help: 'Period of the TCP health checks of backends.',
  },
];

export interface LoadBalancer {
  servers: PlainServer[];
  /** Bound addresses, one per load-balancer type, in type order. */
  addresses: string[];
  stop(): Promise<void>;
}

async function openAuthz(cfg: LbConfig, log: Logger): Promise<AuthzSource | undefined> {
  if (cfg.dbUrl) {
    log.info({ db: hostOf(cfg.dbUrl) }, "Using CEEMS API server's PostgreSQL for access control");
    return new DbAuthzSource(postgresReader(cfg.dbUrl, { applicationName: 'ceems_lb' }));
  }
  if (cfg.dbFile) {
    log.info({ db: cfg.dbFile }, 'Using CEEMS API server DB for access control');
    return new DbAuthzSource(cfg.dbFile);
  }
  if (cfg.api) {
    log.info({ url: cfg.api.url }, 'Using CEEMS API server for access control');
    return new ApiAuthzSource(cfg.api.url, cfg.api.client, cfg.configDir);
  }
  log.warn('Neither CEEMS API server DB nor its URL is configured: no access control, routing only');
  return undefined;
}

/** Host and database of a PostgreSQL URL, without its credentials, for the log. */
function hostOf(url: string): string {
  try {
    const u = new URL(url);
    return `${u.host}${u.pathname}`;
  } catch {
    return '(unparsable URL)';
  }
}

export async function startLoadBalancer(flags: ParsedFlags, log: Logger): Promise<LoadBalancer> {
  const configFile = flags.string('config.file');
  if (configFile === '') throw new ConfigError('--config.file is required');
  const runAs = resolveRunAsUser(flags.string('security.run-as-user'));
  const cfg = loadConfig(configFile, flags.bool('config.file.expand-env-vars'));
  logConfigNotices(log, cfg.notices);
  const addresses = flags.strings('web.listen-address');
  if (addresses.length < cfg.types.length) {
    throw new ConfigError(
      `insufficient --web.listen-address. Expected ${cfg.types.length} got ${addresses.length}`,
    );
  }
  const webConfigFile = flags.string('web.config.file') || undefined;
  const webConfigDir = webConfigFile ? dirname(resolve(webConfigFile)) : undefined;

  const source = await openAuthz(cfg, log);
  const cleanups: Array<() => Promise<void> | void> = [];
  const closeAll = async () => {
    for (const c of cleanups.reverse()) await c();
  };
  /** Each listener's server and what it logs once bound. */
  const listeners: { server: PlainServer; log: Logger; clusters: string[] }[] = [];
  try {
    if (source) {
      cleanups.push(() => source.close());
      let known: string[];
      try {
        known = (await source.clusters()).map((c) => c.id);
      } catch (e) {
        throw new Error(`failed to fetch cluster IDs from CEEMS ${source.kind}: ${(e as Error).message}`);
      }
      for (const t of cfg.types) {
        for (const id of t.clusters.keys()) {
          if (!known.includes(id))
            throw new ConfigError(
              `unknown cluster ID: ${id}. Cluster IDs in CEEMS DB are ${known.join(',')}`,
            );
        }
      }
    }
    const authz = source ? new Authorizer(source) : undefined;
    for (let i = 0; i < cfg.types.length; i++) {
      const { type, clusters } = cfg.types[i]!;
      const byCluster = new Map<string, Backend[]>();
      for (const [id, list] of clusters) {
        byCluster.set(
          id,
          list.map((b) => {
            // A reverse proxy hands a backend's redirect to the client (as Go's httputil.ReverseProxy of the
            // original does) instead of following it with the user's headers; `follow_redirects` is ignored.
            const client = createHttpClient(
              { ...b.client, follow_redirects: false },
              clientBaseDir(b.client, cfg.configDir, webConfigDir, (m) => log.warn(m)),
            );
            cleanups.push(() => client.close());
            return new Backend(new URL(b.url), client, b.filterLabels);
          }),
        );
      }
      const tlog = log.child({ lb: type });
      const pool = new BackendPool(byCluster, cfg.strategy, tlog);
      pool.startHealthChecks(flags.number('lb.health-check-interval'));
      cleanups.push(() => pool.stop());
      const handler = loadBalancerHandler({
        type,
        pool,
        authz,
        policy: {
          restrictingLabel: type === 'tsdb' ? 'uuid' : 'service_name',
          unrestrictedMetrics: new Set(type === 'tsdb' ? cfg.unrestrictedMetrics : []),
        },
        parse: new ParseCache().parse,
        timeoutMs: flags.number('lb.backend-timeout'),
        log: tlog,
      });
      // Root logger: the "Listening on" line carries the address first, as for every server.
      const server = await createPlainServer(
        { listenAddresses: [addresses[i]!], webConfigFile, logger: log },
        handler,
      );
      listeners.push({ server, log: tlog, clusters: [...byCluster.keys()] });
      cleanups.push(() => server.close());
    }
  } catch (e) {
    await closeAll();
    throw e;
  }
  // Once the ports are bound (no cap_net_bind_service needed, even below 1024), the config read and the DB
  // connection open (its files stay open), nothing left needs a capability; the web config is re-read when
  // it changes.
  const bound: string[] = [];
  const { stop } = await listenThenDrop({
    listen: async () => {
      for (const l of listeners) {
        bound.push(...(await l.server.listen()));
        l.log.info({ strategy: cfg.strategy, clusters: l.clusters }, 'Load balancer started');
      }
    },
    close: closeAll,
    runAs,
    readFiles: webConfigFile ? webConfigFiles(webConfigFile) : [],
    dropEnabled: flags.bool('security.drop-privileges'),
    log,
  });
  return { servers: listeners.map((l) => l.server), addresses: bound, stop };
}

export async function main(argv: string[]): Promise<number> {
  return runServerProgram(
    { name: PROGRAM, description: DESCRIPTION, flags: FLAGS, start: startLoadBalancer },
    argv,
  );
}
