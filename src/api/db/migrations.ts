// Versioned schema migrations in the golang-migrate layout of the original (`schema_migrations(version,
// dirty)`, current version 13), so that an existing ceems.db is taken over as is. Version 1 creates the
// schema as it stood before the original's migration 6; 6–9 replay the original's later changes; 10–13 are
// ours: the indexes that let every user-scoped route search instead of scanning (issue 15), the
// energy provenance and sampling interval columns and the per-cluster node energy (issue 20).

import { type Database, transaction } from '../../common/sqlite.js';
import { NODE_ENERGY_FIELD, PROVENANCE_FIELDS, SAMPLING_FIELD } from '../models.js';

const METRIC_COLUMNS_V1 = [
  'total_time_seconds',
  'avg_cpu_usage',
  'avg_cpu_mem_usage',
  'total_cpu_energy_usage_kwh',
  'total_cpu_emissions_gms',
  'avg_gpu_usage',
  'avg_gpu_mem_usage',
  'total_gpu_energy_usage_kwh',
  'total_gpu_emissions_gms',
  'total_io_write_stats',
  'total_io_read_stats',
  'total_ingress_stats',
  'total_outgress_stats',
]
  .map((c) => `  ${c} text default '{}'`)
  .join(',\n');

const usageColumns = (metrics: string) => `  id integer not null primary key,
  resource_manager text default "",
  cluster_id text,
  num_units integer,
  project text,
  groupname text,
  username text,
${metrics},
  num_updates integer default 0,
  last_updated_at text`;

export interface Migration {
  version: number;
  sql: string;
  /** Adds indexes: the planner statistics are refreshed once it is applied (migrate's `analyze`). */
  analyze?: boolean;
}

/** New metric-map columns of the three tables that hold them. */
function addMetricColumns(columns: readonly string[]): string {
  return ['units', 'usage', 'daily_usage']
    .flatMap((table) => columns.map((c) => `ALTER TABLE ${table} ADD COLUMN ${c} text default '{}';`))
    .join('\n');
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
CREATE TABLE IF NOT EXISTS units (
  id integer not null primary key,
  resource_manager text default "",
  cluster_id text,
  uuid text,
  name text,
  project text,
  groupname text,
  username text,
  created_at text,
  started_at text,
  ended_at text,
  created_at_ts integer,
  started_at_ts integer,
  ended_at_ts integer,
  elapsed text,
  state text,
  allocation text default '{}',
  tags text default '{}',
${METRIC_COLUMNS_V1},
  ignore integer,
  num_updates integer default 0,
  last_updated_at text
);
CREATE INDEX IF NOT EXISTS idx_cluster_id_usr_uuid ON units (cluster_id, username, uuid);
CREATE UNIQUE INDEX IF NOT EXISTS uq_cluster_id_uuid_start ON units (cluster_id, uuid, started_at);
CREATE TABLE IF NOT EXISTS usage (
${usageColumns(METRIC_COLUMNS_V1)}
);
CREATE UNIQUE INDEX IF NOT EXISTS uq_cluster_id_project_usr ON usage (cluster_id, username, project);
CREATE TABLE IF NOT EXISTS users (
  id integer not null primary key,
  uid text,
  cluster_id text,
  resource_manager text,
  name text,
  projects text default '[]',
  tags text default '[]',
  last_updated_at text
);
CREATE UNIQUE INDEX IF NOT EXISTS uq_cluster_id_user ON users (cluster_id, name);
CREATE TABLE IF NOT EXISTS projects (
  id integer not null primary key,
  uid text,
  cluster_id text,
  resource_manager text,
  name text,
  users text default '[]',
  tags text default '[]',
  last_updated_at text
);
CREATE UNIQUE INDEX IF NOT EXISTS uq_cluster_id_project ON projects (cluster_id, name);
CREATE TABLE IF NOT EXISTS admin_users (
  id integer not null primary key,
  source text,
  users text default '[]',
  last_updated_at text
);
CREATE UNIQUE INDEX IF NOT EXISTS uq_source ON admin_users (source);
`,
  },
  {
    version: 6,
    sql: 'CREATE INDEX IF NOT EXISTS idx_cluster_id_project_user_ended ON units (cluster_id, project, username, ended_at);',
  },
  {
    version: 7,
    sql: `
CREATE TABLE IF NOT EXISTS daily_usage (
${usageColumns(METRIC_COLUMNS_V1)}
);
CREATE UNIQUE INDEX IF NOT EXISTS uq_cluster_id_project_usr_lastupdated ON daily_usage (cluster_id, username, project, last_updated_at);
`,
  },
  {
    version: 8,
    sql: `
CREATE TABLE admin_users_new (
  id integer not null primary key,
  uid text default '',
  cluster_id text default 'all',
  resource_manager text default '',
  name text,
  projects text default '[]',
  tags text default '[]',
  last_updated_at text
);
INSERT OR IGNORE INTO admin_users_new (cluster_id, name, tags, last_updated_at)
  SELECT 'all', u.value, json_array(a.source), a.last_updated_at FROM admin_users AS a, json_each(a.users) AS u;
DROP TABLE admin_users;
ALTER TABLE admin_users_new RENAME TO admin_users;
CREATE UNIQUE INDEX IF NOT EXISTS uq_cluster_id_admin_user ON admin_users (cluster_id, name);
`,
  },
  {
    version: 9,
    sql: `
ALTER TABLE units RENAME COLUMN total_outgress_stats TO total_egress_stats;
ALTER TABLE usage RENAME COLUMN total_outgress_stats TO total_egress_stats;
ALTER TABLE daily_usage RENAME COLUMN total_outgress_stats TO total_egress_stats;
`,
  },
  {
    // Every index of the original starts with cluster_id, so a request without `cluster_id` scanned
    // units (1M units: 350 ms for one user's day, 1.4 ms with the user index; bench/api-routes.ts).
    version: 10,
    analyze: true,
    sql: `
-- /units, /units/admin?user: the user's units, the window on ended_at
CREATE INDEX IF NOT EXISTS idx_units_username_ended ON units (username, ended_at);
-- /usage/current: the metric keys of the units updated in the window (all users, spec §7.7)
CREATE INDEX IF NOT EXISTS idx_units_last_updated ON units (last_updated_at);
-- /usage/global: the rows of the user's projects
CREATE INDEX IF NOT EXISTS idx_usage_cluster_project ON usage (cluster_id, project);
-- /usage/current?experimental: the daily rows of the user's projects in the window
CREATE INDEX IF NOT EXISTS idx_daily_usage_cluster_project_updated ON daily_usage (cluster_id, project, last_updated_at);
`,
  },
  // Rows written before keep '{}': their energy's source is unknown, which is what they will say.
  { version: 11, sql: addMetricColumns(PROVENANCE_FIELDS) },
  // Rows written before have no sampling interval: their sampling error is not counted.
  { version: 12, sql: addMetricColumns([SAMPLING_FIELD]) },
  {
    // Energy of each cluster's nodes per day: what the rules distributed and what no unit got (B4).
    version: 13,
    sql: `
CREATE TABLE IF NOT EXISTS cluster_energy (
  id integer not null primary key,
  cluster_id text,
  resource_manager text default '',
  ${NODE_ENERGY_FIELD} text default '{}',
  num_updates integer default 0,
  last_updated_at text
);
CREATE UNIQUE INDEX IF NOT EXISTS uq_cluster_energy_day ON cluster_energy (cluster_id, last_updated_at);
`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export class MigrationError extends Error {}

/**
 * Applies every migration newer than the recorded version, each in its own transaction. Returns whether
 * one of them asks for fresh planner statistics (`analyze`).
 */
export function migrate(db: Database): { version: number; analyze: boolean } {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version uint64, dirty bool);
CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON schema_migrations (version);`);
  const row = db.prepare('SELECT version, dirty FROM schema_migrations LIMIT 1').get() as
    | { version: number; dirty: number }
    | undefined;
  if (row?.dirty) {
    throw new MigrationError(
      `database schema is dirty at version ${row.version}: a previous migration failed; fix the database by hand`,
    );
  }
  const current = row?.version ?? 0;
  if (current > SCHEMA_VERSION) {
    throw new MigrationError(
      `database schema version ${current} is newer than this program's ${SCHEMA_VERSION}`,
    );
  }
  let analyze = false;
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue;
    transaction(db, () => {
      db.exec(m.sql);
      db.exec('DELETE FROM schema_migrations');
      db.prepare('INSERT INTO schema_migrations (version, dirty) VALUES (?, 0)').run(m.version);
    });
    analyze ||= m.analyze === true;
  }
  return { version: SCHEMA_VERSION, analyze };
}
