// ceems_api_server entry point (spec §2, §4): flags, config, DB, admin users, collection cycle hook,
// backups, HTTP server, graceful shutdown.

import { chownSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AclLease } from '../common/acl.js';
import { logConfigNotices } from '../common/config.js';
import { FlagError, type FlagSpec, type ParsedFlags } from '../common/flags.js';
import type { Logger } from '../common/logger.js';
import { dropPrivileges, grantRunAsAccess, releaseAccess, resolveRunAsUser } from '../common/privileges.js';
import { DEBUG_SERVER_FLAG, PRIVILEGE_FLAGS, runServerProgram, SERVER_FLAGS } from '../common/program.js';
import { webConfigFiles } from '../common/webconfig.js';
import { AdminUsers } from './admins.js';
import { type LoadedConfig, loadConfig } from './config.js';
import { createCollector } from './cycle/index.js';
import { openBackend } from './db/backend.js';
import { type CeemsDb, type CollectionWindow, DB_FILE } from './db/index.js';
import type { UnitStore } from './db/store.js';
import { ClusterEmbodied } from './embodied.js';
import { type ApiServer, createApiServer } from './server.js';
import { formatDatetime, resolveZone } from './timefmt.js';

const PROGRAM = 'ceems_api_server';
const DESCRIPTION =
  'CEEMS API server: compute units, usage and statistics of the compute energy and emissions stack.';

export const FLAGS: readonly FlagSpec[] = [
  {
    name: 'config.file',
    type: 'string',
    default: '',
    env: 'CEEMS_API_SERVER_CONFIG_FILE',
    help: 'Configuration file path (required).',
  },
  {
    name: 'config.file.expand-env-vars',
    type: 'bool',
    default: false,
    help: 'Expand environment variables ($VAR, or the braced form) in the configuration file ($$ is a literal $).',
  },
  {
    name: 'web.listen-address',
    type: 'string',
    repeatable: true,
    default: [':9020'],
    help: 'Addresses on which to expose the API and web interface. Repeatable for multiple addresses.',
  },
  {
    name: 'web.config.file',
    type: 'string',
    default: '',
    env: 'CEEMS_API_SERVER_WEB_CONFIG_FILE',
    help: 'Path to configuration file that can enable TLS or authentication.',
  },
  {
    name: 'web.route-prefix',
    type: 'string',
    default: '/',
    help: 'Prefix for the API routes (<prefix>/api/v1/...); /, /health and /swagger/ stay at the root.',
  },
  {
    name: 'web.max-requests',
    type: 'int',
    default: '0',
    help: 'Maximum number of requests per minute per client IP. 0 means no limit.',
  },
  {
    name: 'web.cors.origin',
    type: 'string',
    default: '.*',
    help: 'Regex for CORS origin. It is fully anchored.',
  },
  { name: 'web.compression', type: 'bool', default: false, help: 'Compress responses with gzip or deflate.' },
  { name: 'web.compression.level', type: 'int', default: '5', help: 'Compression level (1-9).' },
  {
    name: 'query.max-period',
    type: 'duration',
    default: '0s',
    help: 'Maximum allowed query window (to - from). 0s means no limit.',
  },
  {
    name: 'security.run-as-user',
    type: 'string',
    default: '',
    help: 'User to run as after start-up when started as root (default: nobody).',
  },
  ...SERVER_FLAGS,
  DEBUG_SERVER_FLAG,
  ...PRIVILEGE_FLAGS,
  {
    name: 'web.external-url',
    type: 'string',
    default: '',
    hidden: true,
    help: 'External URL (sets host and scheme of the API description).',
  },
  {
    name: 'web.user-header-name',
    type: 'string',
    repeatable: true,
    default: ['X-Grafana-User'],
    hidden: true,
    help: 'Header(s) carrying the user name; the first non-empty one wins.',
  },
  {
    name: 'web.ui.lb-url',
    type: 'string',
    default: '',
    env: 'CEEMS_API_SERVER_UI_LB_URL',
    help: "Base URL of ceems_lb for the web view's time series (/ui/); empty: unit pages show no charts.",
  },
  {
    name: 'web.ui.basic-auth-users',
    type: 'string',
    default: '',
    env: 'CEEMS_API_SERVER_UI_BASIC_AUTH_USERS',
    help: 'Web config basic-auth logins mapped to CEEMS user names for the web view: login=user,…',
  },
  {
    name: 'storage.data.skip.delete.old.units',
    type: 'bool',
    default: false,
    hidden: true,
    help: 'Disable the retention purge of old units.',
  },
  {
    name: 'test.disable.checks',
    type: 'bool',
    default: false,
    hidden: true,
    help: 'Ignore configuration sanity checks (e.g. backup_interval < 1 day).',
  },
];

/** Something started after the DB is open and stopped (awaited) before it is closed. */
export interface BackgroundTask {
  start(): void;
  stop(): Promise<void>;
}

export interface CollectorContext {
  /** SQLite (CeemsDb) or PostgreSQL (PgStore), `data.backend`. */
  db: UnitStore;
  /** Commits one collection window: SQLite's writer thread, PostgreSQL's leader session. */
  store: (w: CollectionWindow) => Promise<void>;
  logger: Logger;
  /** Directory of the config file. */
  configDir: string;
  /** Resolved IANA zone of the DB. */
  timeZone: string;
  /** Retention purge in days; undefined when `--storage.data.skip.delete.old.units`. */
  retentionDays?: number;
}

/** Builds the collection cycle (src/api/cycle) from the validated configuration. */
export type CollectorFactory = (cfg: LoadedConfig, ctx: CollectorContext) => Promise<BackgroundTask>;

export interface MainOptions {
  collector?: CollectorFactory;
}

/** `YYYYMMDDHHMM` of `ms` in `zone` (backup file names). */
const backupStamp = (ms: number, zone: string) => formatDatetime(ms, zone).replace(/[-T:]/g, '').slice(0, 12);

/** Periodic online backups (§10.6): first one after one interval. */
function startBackups(
  db: CeemsDb,
  dir: string,
  intervalMs: number,
  zone: string,
  log: Logger,
): BackgroundTask {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  return {
    start() {
      timer = setInterval(() => {
        if (running) return;
        running = db
          .backup(dir, backupStamp(Date.now(), zone), (e) => log.warn({ err: e.message }, 'VACUUM failed'))
          .then((path) => log.info({ path }, 'DB backed up'))
          .catch((e) => log.error({ err: (e as Error).message }, 'DB backup failed'))
          .finally(() => {
            running = undefined;
          });
      }, intervalMs);
    },
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

export interface Running {
  api: ApiServer;
  addresses: string[];
  stop(): Promise<void>;
}

export async function startApiServer(
  flags: ParsedFlags,
  log: Logger,
  opts: MainOptions = {},
): Promise<Running> {
  const loaded = loadConfig(flags.string('config.file'), {
    expandEnv: flags.bool('config.file.expand-env-vars'),
    disableChecks: flags.bool('test.disable.checks'),
  });
  const { config, dataPath, backupPath } = loaded;
  logConfigNotices(log, loaded.notices);
  const data = config.ceems_api_server.data;
  const timeZone = resolveZone(data.time_zone);
  const corsOrigin = flags.string('web.cors.origin');
  try {
    new RegExp(`^(?:${corsOrigin})$`, 's');
  } catch (e) {
    throw new FlagError(
      `invalid value '${corsOrigin}' for flag '--web.cors.origin': ${(e as Error).message}`,
    );
  }
  const level = flags.number('web.compression.level');
  if (level < 1 || level > 9)
    throw new FlagError(`--web.compression.level must be between 1 and 9 (got ${level})`);
  const runAs = resolveRunAsUser(flags.string('security.run-as-user'));

  if (data.backend === 'sqlite') mkdirSync(dataPath, { recursive: true, mode: 0o750 });
  if (backupPath) mkdirSync(backupPath, { recursive: true, mode: 0o750 });
  let api: ApiServer | undefined;
  const backend = await openBackend(loaded, log, () => api?.reopenReader());
  const db = backend.db;
  const tasks: BackgroundTask[] = [];
  let webConfigAcl: AclLease | undefined;
  try {
    const admins = new AdminUsers(db, config.ceems_api_server.admin, loaded.configDir, timeZone, log);
    await admins.checkGrafana();
    const retentionDays = flags.bool('storage.data.skip.delete.old.units')
      ? undefined
      : Math.floor(data.retention_period / 3600e3 / 24);
    const collectorFactory = opts.collector ?? createCollector;
    const ctx: CollectorContext = {
      db,
      store: (w) => backend.store(w),
      logger: log,
      configDir: loaded.configDir,
      timeZone,
      retentionDays,
    };
    // Built now so that a bad configuration stops the start-up, whenever the cycle runs.
    tasks.push(backend.cycle(await collectorFactory(loaded, ctx), () => collectorFactory(loaded, ctx)));
    api = await createApiServer({
      listenAddresses: flags.strings('web.listen-address'),
      webConfigFile: flags.string('web.config.file') || undefined,
      logger: log,
      routePrefix: flags.string('web.route-prefix'),
      userHeaders: flags.strings('web.user-header-name'),
      maxRequests: flags.number('web.max-requests'),
      corsOrigin,
      compression: flags.bool('web.compression'),
      compressionLevel: level,
      maxPeriodMs: flags.number('query.max-period'),
      timeZone,
      externalUrl: flags.string('web.external-url'),
      ui: { lbUrl: flags.string('web.ui.lb-url'), basicAuthUsers: flags.string('web.ui.basic-auth-users') },
      ...backend.reads,
      embodiedClasses: new Map(
        config.clusters.flatMap((c) =>
          c.footprint ? [[c.id, new ClusterEmbodied(c.footprint)] as const] : [],
        ),
      ),
    });
    admins.start(data.update_interval);
    tasks.unshift({ start() {}, stop: () => admins.stop() });
    for (const t of tasks) t.start();
    if (backend.sqlite && backupPath && data.backup_interval > 0) {
      const b = startBackups(backend.sqlite, backupPath, data.backup_interval, timeZone, log);
      b.start();
      tasks.push(b);
    }
    const addresses = await api.server.listen();
    if (runAs && flags.bool('security.drop-privileges')) {
      // Files created later (backups, WAL checkpoints) must stay writable by the target user.
      for (const p of [
        dataPath,
        backupPath,
        join(dataPath, DB_FILE),
        join(dataPath, `${DB_FILE}-wal`),
        join(dataPath, `${DB_FILE}-shm`),
      ])
        if (p && existsSync(p)) chownSync(p, runAs.uid, runAs.gid);
    }
    // sacct/sacctmgr run as uid 0 through cap_setuid/cap_setgid (§4 step 2); nothing else needs one. The
    // ports are bound already, so no cap_net_bind_service even below 1024.
    const drop = {
      dropPrivileges: flags.bool('security.drop-privileges'),
      needed: {
        slurm: config.clusters.some((c) => c.manager === 'slurm') ? ['cap_setuid', 'cap_setgid'] : [],
      },
      logger: log,
    };
    // read ACLs on the config and web config files, read-write on the data paths (§4 step 2), with search
    // access on the directories above them: the DB writer thread re-creates and opens them as the user
    const webConfigFile = flags.string('web.config.file');
    webConfigAcl = await grantRunAsAccess(
      runAs,
      {
        read: [flags.string('config.file'), ...(webConfigFile ? webConfigFiles(webConfigFile) : [])],
        write: backend.sqlite ? [dataPath, ...(backupPath ? [backupPath] : [])] : [],
      },
      drop,
    );
    await dropPrivileges(runAs, drop);
    const running: Running = {
      api,
      addresses,
      async stop() {
        // Stop producers first (the collector waits for the window being stored), then the writer thread,
        // then HTTP (5 s grace), then close the DB.
        await Promise.all(tasks.map((t) => t.stop()));
        const grace = new Promise<void>((r) => setTimeout(r, 5000).unref());
        await Promise.race([api!.close(), grace]);
        await backend.close();
        await releaseAccess(webConfigAcl, 'web config', log);
      },
    };
    return running;
  } catch (e) {
    await Promise.all(tasks.map((t) => t.stop().catch(() => {})));
    await api?.close().catch(() => {});
    await backend.close();
    await releaseAccess(webConfigAcl, 'web config', log);
    throw e;
  }
}

export async function main(argv: string[], opts: MainOptions = {}): Promise<number> {
  return runServerProgram(
    {
      name: PROGRAM,
      description: DESCRIPTION,
      flags: FLAGS,
      start: (flags, log) => startApiServer(flags, log, opts),
      // the running collection window is written to completion before the DB closes
      shutdownGraceMs: 60_000,
    },
    argv,
  );
}
