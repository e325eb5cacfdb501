// The API server's storage backend (`ceems_api_server.data.backend`, issue 21): what main.ts needs from
// either SQLite (a file under data.path, a writer thread) or PostgreSQL (a pool, a leader election).

import type { Logger } from '../../common/logger.js';
import type { Database } from '../../common/sqlite.js';
import { postgresReader, type SqlReader } from '../../common/sqlreader.js';
import type { LoadedConfig } from '../config.js';
import type { BackgroundTask } from '../main.js';
import { CeemsDb, type CollectionWindow, openReader } from './index.js';
import { openPg, redactedUrl } from './pg/connect.js';
import { LeaderElection } from './pg/leader.js';
import { migratePg } from './pg/migrations.js';
import { PgStore } from './pg/store.js';
import type { UnitStore } from './store.js';
import { WindowWriter } from './writer.js';

export interface Backend {
  /** What the cycle and the admin sync write through. */
  db: UnitStore;
  /** The SQLite writer (backups, file ownership); undefined with PostgreSQL. */
  sqlite?: CeemsDb;
  /** Commits one collection window: SQLite's writer thread, PostgreSQL's leader session. */
  store(w: CollectionWindow): Promise<void>;
  /** The HTTP server's read path. */
  reads: { openDb: () => Database } | { reader: SqlReader };
  /** The collection cycle as run by this backend: with PostgreSQL, only while this replica leads. */
  cycle(first: BackgroundTask, rebuild: () => Promise<BackgroundTask>): BackgroundTask;
  /** After the cycle and the HTTP server stopped. */
  close(): Promise<void>;
}

/** Opens (and migrates) the configured backend; `onAnalyzed`: SQLite's statistics changed. */
export async function openBackend(
  loaded: LoadedConfig,
  log: Logger,
  onAnalyzed: () => void,
): Promise<Backend> {
  const data = loaded.config.ceems_api_server.data;
  if (data.backend === 'postgres') return openPostgres(data.url, log);
  const db = CeemsDb.open(loaded.dataPath);
  const writer = new WindowWriter(loaded.dataPath, onAnalyzed);
  return {
    db,
    sqlite: db,
    store: (w) => writer.store(w),
    reads: { openDb: () => openReader(loaded.dataPath) },
    cycle: (first) => first,
    async close() {
      await writer.close();
      db.close();
    },
  };
}

async function openPostgres(url: string, log: Logger): Promise<Backend> {
  const sql = openPg(url);
  try {
    const { version } = await migratePg(sql);
    log.info({ url: redactedUrl(url), schema_version: version }, 'PostgreSQL database ready');
  } catch (e) {
    await sql.end({ timeout: 0 });
    throw new Error(
      `cannot use the PostgreSQL database ${redactedUrl(url)} (ceems_api_server.data.url): ${(e as Error).message}`,
    );
  }
  let election: LeaderElection | undefined;
  return {
    db: new PgStore(sql),
    store: (w) => election?.store(w) ?? Promise.reject(new Error('no leader election: window not stored')),
    reads: { reader: postgresReader(url, { applicationName: 'ceems_api_server' }) },
    cycle(first, rebuild) {
      election = new LeaderElection({ url, logger: log, cycle: first, rebuild });
      return election;
    },
    close: () => sql.end({ timeout: 5 }),
  };
}
