/**
 * The API server's SQLite database (spec §9): one writer connection (this class), read-only connections
 * for HTTP handlers (`openReader`). `node:sqlite` is synchronous, so a write that has started always
 * finishes before the event loop can run a shutdown handler; every multi-row write is one transaction.
 *
 * How the collection cycle (src/api/cycle, through the writer thread of writer.ts) stores one window
 * `[start, end]`:
 *
 *   const db = CeemsDb.open(dataPath);               // creates <dataPath>/ceems.db, runs migrations
 *   db.storeCollection({
 *     start, end,                                    // Unix ms
 *     timeZone,                                      // resolved `data.time_zone` (timefmt.resolveZone)
 *     units,                                         // UnitRecord[]: cluster_id + resource_manager set,
 *                                                    //   window metrics, `ignore: 1` for cut-off units
 *     users, projects,                               // UserRecord[] / ProjectRecord[] (cluster id + manager set)
 *   });
 *
 * That single call runs the upserts of units, usage, daily_usage, users and projects in ONE transaction.
 * The single-table functions (`upsertUnits`, `upsertUsage`, `upsertUsers`, `upsertProjects`,
 * `syncAdminUsers`, `purgeExpired`) are also public and each is transactional on its own (nested inside
 * `storeCollection` they become savepoints). The cycle runs the retention purge (`purgeExpired`) itself
 * before each collection, and resumes each cluster from `clusterLastUpdatedAt(id)`, else `lastUpdatedAt()`
 * (`DatetimeLayout` in the DB zone). Admin users are synced by the server itself (src/api/admins.ts).
 */

import { chmodSync, copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  backupTo,
  type Database,
  openDatabase,
  placeholders,
  RecordStatement,
  type Statement,
  transaction,
} from '../../common/sqlite.js';
import {
  AVG_WEIGHTS,
  METRIC_FIELDS,
  type MetricField,
  type MetricMap,
  NODE_ENERGY_FIELD,
  type Project,
  UNIT_FIELDS,
  type Unit,
  type User,
} from '../models.js';
import { formatDatetime, midnightDatetime } from '../timefmt.js';
import { metricMapJson, registerFunctions } from './functions.js';
import { migrate } from './migrations.js';
import type { UnitStore } from './store.js';

export const DB_FILE = 'ceems.db';

/** A unit as stored: the wire model plus the internal `ignore` flag (cut-off units, §12.4). */
export interface UnitRecord extends Unit {
  ignore?: number;
}
export interface UserRecord extends User {
  /** `DatetimeLayout`; defaults to the window end. */
  last_updated_at?: string;
}
export interface ProjectRecord extends Project {
  last_updated_at?: string;
}

export interface CollectionWindow {
  start: number;
  end: number;
  timeZone: string;
  units: readonly UnitRecord[];
  /** The window's energy of the cluster's nodes (updaters that measure it; issue 20, B4). */
  clusterEnergy?: { cluster_id: string; resource_manager: string; kwh: MetricMap };
  users?: readonly UserRecord[];
  projects?: readonly ProjectRecord[];
}

const json = (v: unknown, empty: string) => (v === undefined || v === null ? empty : JSON.stringify(v));

function metricSet(table: string): string {
  return METRIC_FIELDS.map((m) => {
    const w = AVG_WEIGHTS[m];
    if (!w) return `${m} = add_metric_map(${table}.${m}, excluded.${m})`;
    return `${m} = avg_metric_map(${table}.${m}, excluded.${m}, json_extract(${table}.total_time_seconds, '$.${w}'), json_extract(excluded.total_time_seconds, '$.${w}'))`;
  }).join(',\n  ');
}

/** Every wire field of a unit plus the internal bookkeeping columns of `units`. */
const UNIT_COLUMNS = [...UNIT_FIELDS, 'ignore', 'num_updates', 'last_updated_at'] as const;

// `ended_at` is set apart (ENDED_AT), only when it changed: assigned here, it would make SQLite rewrite the
// entries of the two indexes holding it for every running unit of every window, the same value again
// (100k units: the merge of a window took ~30 % longer).
const UPSERT_UNIT = `INSERT INTO units (${UNIT_COLUMNS.join(', ')})
VALUES (${placeholders(UNIT_COLUMNS)})
ON CONFLICT (cluster_id, uuid, started_at) DO UPDATE SET
  ended_at_ts = excluded.ended_at_ts,
  elapsed = excluded.elapsed,
  state = excluded.state,
  tags = excluded.tags,
  ignore = excluded.ignore,
  last_updated_at = excluded.last_updated_at,
  ${metricSet('units')},
  num_updates = units.num_updates + 1
RETURNING id, num_updates, ended_at`;

const ENDED_AT = 'UPDATE units SET ended_at = ? WHERE id = ?';

const USAGE_COLUMNS = [
  'resource_manager',
  'cluster_id',
  'num_units',
  'project',
  'groupname',
  'username',
  ...METRIC_FIELDS,
  'num_updates',
  'last_updated_at',
] as const;

const upsertUsageSql = (
  table: 'usage' | 'daily_usage',
  key: string,
) => `INSERT INTO ${table} (${USAGE_COLUMNS.join(', ')})
VALUES (${placeholders(USAGE_COLUMNS)})
ON CONFLICT (${key}) DO UPDATE SET
  num_units = ${table}.num_units + excluded.num_units,
  ${metricSet(table)},
  num_updates = ${table}.num_updates + 1,
  last_updated_at = excluded.last_updated_at`;

const CLUSTER_ENERGY_COLUMNS = [
  'cluster_id',
  'resource_manager',
  NODE_ENERGY_FIELD,
  'last_updated_at',
] as const;
const UPSERT_CLUSTER_ENERGY = `INSERT INTO cluster_energy (${CLUSTER_ENERGY_COLUMNS.join(', ')}, num_updates)
VALUES (${placeholders(CLUSTER_ENERGY_COLUMNS)}, 1)
ON CONFLICT (cluster_id, last_updated_at) DO UPDATE SET
  ${NODE_ENERGY_FIELD} = add_metric_map(cluster_energy.${NODE_ENERGY_FIELD}, excluded.${NODE_ENERGY_FIELD}),
  num_updates = cluster_energy.num_updates + 1`;

export const memberColumns = <L extends string>(list: L) =>
  ['uid', 'cluster_id', 'resource_manager', 'name', list, 'tags', 'last_updated_at'] as const;

const upsertMembersSql = (table: 'users' | 'projects', list: 'projects' | 'users') => `INSERT INTO ${table}
  (${memberColumns(list).join(', ')})
VALUES (${placeholders(memberColumns(list))})
ON CONFLICT (cluster_id, name) DO UPDATE SET
  uid = excluded.uid,
  resource_manager = excluded.resource_manager,
  name = excluded.name,
  ${list} = excluded.${list},
  tags = excluded.tags,
  last_updated_at = excluded.last_updated_at`;

function metricParams(u: Unit): Record<MetricField, string> {
  const out = {} as Record<MetricField, string>;
  for (const m of METRIC_FIELDS) {
    const v = u[m];
    out[m] =
      v === undefined || v === null ? '{}' : typeof v === 'object' ? metricMapJson(v) : JSON.stringify(v);
  }
  return out;
}

// The column values both backends store for a record (PostgreSQL: pg/store.ts).

/** The `units` row of a unit first stored by a window ending at `lastUpdatedAt`. */
export function unitRow(u: UnitRecord, lastUpdatedAt: string) {
  return {
    resource_manager: u.resource_manager ?? '',
    cluster_id: u.cluster_id ?? '',
    uuid: u.uuid,
    name: u.name ?? '',
    project: u.project ?? '',
    groupname: u.groupname ?? '',
    username: u.username ?? '',
    created_at: u.created_at ?? '',
    started_at: u.started_at ?? '',
    ended_at: u.ended_at ?? '',
    created_at_ts: u.created_at_ts ?? 0,
    started_at_ts: u.started_at_ts ?? 0,
    ended_at_ts: u.ended_at_ts ?? 0,
    elapsed: u.elapsed ?? '',
    state: u.state ?? '',
    allocation: json(u.allocation, '{}'),
    tags: json(u.tags, '{}'),
    ...metricParams(u),
    ignore: u.ignore ?? 0,
    num_updates: 1,
    last_updated_at: lastUpdatedAt,
  };
}

/** What a unit adds to its `usage` / `daily_usage` row (without `last_updated_at`). */
export function usageRow(u: UnitRecord, created: boolean) {
  return {
    resource_manager: u.resource_manager ?? '',
    cluster_id: u.cluster_id ?? '',
    num_units: created ? 1 : 0,
    project: u.project ?? '',
    groupname: u.groupname ?? '',
    username: u.username ?? '',
    ...metricParams(u),
    num_updates: 1,
  };
}

/** The `users` (list `projects`) or `projects` (list `users`) row of a record. */
export function memberRow<L extends 'projects' | 'users'>(
  r: UserRecord | ProjectRecord,
  list: L,
  defaultLastUpdatedAt: string,
) {
  return {
    uid: r.uid ?? '',
    cluster_id: r.cluster_id,
    resource_manager: r.resource_manager ?? '',
    name: r.name,
    [list]: json((r as unknown as Record<L, unknown>)[list], '[]'),
    tags: json(r.tags, '[]'),
    last_updated_at: r.last_updated_at ?? defaultLastUpdatedAt,
  } as Record<'uid' | 'cluster_id' | 'resource_manager' | 'name' | L | 'tags' | 'last_updated_at', string>;
}

/** Applies the connection settings of §9.1 and the SQL functions of §9.3. */
function prepareConnection(db: Database, readonly: boolean): void {
  if (!readonly) db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF');
  registerFunctions(db);
}

const BUSY_TIMEOUT_MS = 5000;

/** Opens a read-only connection (HTTP handlers); the file must exist. */
export function openReader(dataPath: string): Database {
  const db = openDatabase(join(dataPath, DB_FILE), { readOnly: true, busyTimeoutMs: BUSY_TIMEOUT_MS });
  prepareConnection(db, true);
  return db;
}

export class CeemsDb implements UnitStore {
  private readonly stmts: {
    unit: RecordStatement<(typeof UNIT_COLUMNS)[number]>;
    endedAt: Statement;
    usage: RecordStatement<(typeof USAGE_COLUMNS)[number]>;
    dailyUsage: RecordStatement<(typeof USAGE_COLUMNS)[number]>;
    user: RecordStatement<ReturnType<typeof memberColumns<'projects'>>[number]>;
    project: RecordStatement<ReturnType<typeof memberColumns<'users'>>[number]>;
    admin: RecordStatement<'name' | 'tags' | 'last_updated_at'>;
    clusterEnergy: RecordStatement<(typeof CLUSTER_ENERGY_COLUMNS)[number]>;
  };

  private constructor(
    readonly db: Database,
    readonly path: string,
  ) {
    this.stmts = {
      unit: new RecordStatement(db, UPSERT_UNIT, UNIT_COLUMNS),
      endedAt: db.prepare(ENDED_AT),
      usage: new RecordStatement(db, upsertUsageSql('usage', 'cluster_id, username, project'), USAGE_COLUMNS),
      dailyUsage: new RecordStatement(
        db,
        upsertUsageSql('daily_usage', 'cluster_id, username, project, last_updated_at'),
        USAGE_COLUMNS,
      ),
      user: new RecordStatement(db, upsertMembersSql('users', 'projects'), memberColumns('projects')),
      project: new RecordStatement(db, upsertMembersSql('projects', 'users'), memberColumns('users')),
      admin: new RecordStatement(
        db,
        `INSERT INTO admin_users (uid, cluster_id, resource_manager, name, projects, tags, last_updated_at)
VALUES ('', 'all', '', ?, '[]', ?, ?)
ON CONFLICT (cluster_id, name) DO UPDATE SET
  uid = excluded.uid, resource_manager = excluded.resource_manager, projects = excluded.projects,
  tags = excluded.tags, last_updated_at = excluded.last_updated_at`,
        ['name', 'tags', 'last_updated_at'],
      ),
      clusterEnergy: new RecordStatement(db, UPSERT_CLUSTER_ENERGY, CLUSTER_ENERGY_COLUMNS),
    };
  }

  /** Creates `<dataPath>` (0750) and `<dataPath>/ceems.db` (0640) if needed, migrates, returns the writer. */
  static open(dataPath: string): CeemsDb {
    mkdirSync(dataPath, { recursive: true, mode: 0o750 });
    const path = join(dataPath, DB_FILE);
    const created = !existsSync(path);
    const db = openDatabase(path, { busyTimeoutMs: BUSY_TIMEOUT_MS });
    if (created) chmodSync(path, 0o640);
    prepareConnection(db, false);
    // New indexes get their statistics at once (1M units: migration 10 takes 2.6 s, ANALYZE 0.65 s), so
    // that the planner can choose between them and the old ones; otherwise only stale tables are analyzed.
    if (migrate(db).analyze) db.exec('ANALYZE');
    const ceems = new CeemsDb(db, path);
    ceems.optimize();
    return ceems;
  }

  /**
   * Refreshes the planner statistics of the tables that need it by SQLite's own measure (`PRAGMA
   * optimize`, every table checked: never analyzed, or grown or shrunk about 10-fold since): nothing to do
   * costs nothing, a 1M-unit table 0.7 s. Returns whether a table was analyzed: connections opened before
   * keep the statistics they loaded at open (SQLite does not reload them), so readers should be reopened.
   */
  optimize(): boolean {
    // 0x10003 lists what 0x10002 would do without doing it.
    if (this.db.prepare('PRAGMA optimize = 0x10003').all().length === 0) return false;
    this.db.exec('PRAGMA optimize = 0x10002');
    return true;
  }

  /** `MAX(last_updated_at) FROM usage` (`DatetimeLayout`), or undefined on an empty DB. */
  lastUpdatedAt(): string | undefined {
    const r = this.db.prepare('SELECT MAX(last_updated_at) AS t FROM usage').get() as { t: string | null };
    return r.t ?? undefined;
  }

  /** `MAX(last_updated_at) FROM usage` of one cluster, or undefined when it has no usage yet. */
  clusterLastUpdatedAt(clusterId: string): string | undefined {
    const r = this.db
      .prepare('SELECT MAX(last_updated_at) AS t FROM usage WHERE cluster_id = ?')
      .get(clusterId) as {
      t: string | null;
    };
    return r.t ?? undefined;
  }

  /**
   * Upserts units (conflict on cluster_id, uuid, started_at; metric maps merged, §9.4). Returns the units
   * whose rows this call created: the ones `num_units` counts.
   */
  upsertUnits(units: readonly UnitRecord[], lastUpdatedAt: string): Set<UnitRecord> {
    const created = new Set<UnitRecord>();
    transaction(this.db, () => {
      for (const u of units) {
        if (!u.uuid) continue;
        const row = this.stmts.unit.get(unitRow(u, lastUpdatedAt)) as {
          id: number;
          num_updates: number;
          ended_at: string;
        };
        if (row.num_updates === 1) created.add(u);
        else if (row.ended_at !== (u.ended_at ?? '')) this.stmts.endedAt.run(u.ended_at ?? '', row.id);
      }
    });
    return created;
  }

  /**
   * Merges the window metrics of `units` into `usage` and `daily_usage` (§10.3). `num_units` grows by 1
   * for each unit of `created` (first stored by this window), so every unit counts exactly once even when
   * the resource manager reports it late, after a window its start time belongs to.
   */
  upsertUsage(
    units: readonly UnitRecord[],
    w: { end: number; timeZone: string },
    created: ReadonlySet<UnitRecord>,
  ): void {
    const lastUpdated = formatDatetime(w.end, w.timeZone);
    const day = midnightDatetime(w.end, w.timeZone);
    transaction(this.db, () => {
      for (const u of units) {
        if (!u.uuid) continue;
        const row = usageRow(u, created.has(u));
        this.stmts.usage.run({ ...row, last_updated_at: lastUpdated });
        this.stmts.dailyUsage.run({ ...row, last_updated_at: day });
      }
    });
  }

  upsertUsers(users: readonly UserRecord[], defaultLastUpdatedAt: string): void {
    transaction(this.db, () => {
      for (const u of users) this.stmts.user.run(memberRow(u, 'projects', defaultLastUpdatedAt));
    });
  }

  upsertProjects(projects: readonly ProjectRecord[], defaultLastUpdatedAt: string): void {
    transaction(this.db, () => {
      for (const p of projects) this.stmts.project.run(memberRow(p, 'users', defaultLastUpdatedAt));
    });
  }

  /**
   * Makes the admin rows of one source (`ceems`, `grafana`) exactly `names`: upserts them and deletes the
   * source's rows no longer listed (D-API-2).
   */
  syncAdminUsers(source: string, names: readonly string[], lastUpdatedAt: string): void {
    const tags = JSON.stringify([source]);
    transaction(this.db, () => {
      for (const name of new Set(names)) this.stmts.admin.run({ name, tags, last_updated_at: lastUpdatedAt });
      this.db
        .prepare(
          `DELETE FROM admin_users WHERE EXISTS (SELECT 1 FROM json_each(admin_users.tags) WHERE value = ?)
             AND name NOT IN (SELECT value FROM json_each(?))`,
        )
        .run(source, JSON.stringify([...new Set(names)]));
    });
  }

  /** Retention purge (§10.5); string comparison keeps running units (`Unknown`/`N/A`). */
  purgeExpired(retentionDays: number): { units: number; usage: number } {
    return transaction(this.db, () => {
      const cutoff = `-${retentionDays} day`;
      const units = this.db.prepare("DELETE FROM units WHERE ended_at <= date('now', ?)").run(cutoff).changes;
      const usage = this.db
        .prepare("DELETE FROM usage WHERE last_updated_at <= date('now', ?)")
        .run(cutoff).changes;
      return { units: Number(units), usage: Number(usage) };
    });
  }

  /** Everything one collection window writes, in ONE transaction (§10.2 step 5). */
  storeCollection(w: CollectionWindow): void {
    const lastUpdated = formatDatetime(w.end, w.timeZone);
    transaction(this.db, () => {
      this.upsertUsage(w.units, w, this.upsertUnits(w.units, lastUpdated));
      this.upsertUsers(w.users ?? [], lastUpdated);
      this.upsertProjects(w.projects ?? [], lastUpdated);
      if (w.clusterEnergy) this.upsertClusterEnergy(w.clusterEnergy, midnightDatetime(w.end, w.timeZone));
    });
  }

  /** Adds a window's node energy of a cluster to its day's row (transactional on its own). */
  upsertClusterEnergy(e: NonNullable<CollectionWindow['clusterEnergy']>, day: string): void {
    transaction(this.db, () => {
      this.stmts.clusterEnergy.run({
        cluster_id: e.cluster_id,
        resource_manager: e.resource_manager,
        [NODE_ENERGY_FIELD]: metricMapJson(e.kwh),
        last_updated_at: day,
      });
    });
  }

  /**
   * Online backup (§10.6): VACUUM (failure only reported), copy into `<dataDir>/ceems-<stamp>.db`
   * 25 pages per step, then move into `backupDir` (same filesystem). Returns the final path.
   */
  async backup(backupDir: string, stamp: string, onVacuumError: (e: Error) => void): Promise<string> {
    try {
      this.db.exec('VACUUM');
    } catch (e) {
      onVacuumError(e as Error);
    }
    const name = `ceems-${stamp}.db`;
    const tmp = join(this.path, '..', name);
    try {
      await backupTo(this.db, tmp, 25);
      const dest = join(backupDir, name);
      try {
        renameSync(tmp, dest);
      } catch (e) {
        // Another filesystem: copy instead of the spec's rename.
        if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
        copyFileSync(tmp, dest);
        rmSync(tmp, { force: true });
      }
      return dest;
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
  }

  /** Closes the connection after a last `optimize` (SQLite's advice for every connection it closes). */
  close(): void {
    if (!this.db.isOpen) return;
    try {
      this.optimize();
    } catch {
      // Statistics are an optimisation: a busy or read-only file must not stop the shutdown.
    }
    this.db.close();
  }
}
