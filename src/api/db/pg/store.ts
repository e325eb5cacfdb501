// The API server's writes to PostgreSQL (issue 21): the upserts of CeemsDb (../index.ts) with the same
// results, each window in ONE transaction.
//
// The metric maps are merged here, in JS, with the very functions SQLite's upserts call
// (addMetricMapText/avgMetricMapText): the rows a window touches are read FOR UPDATE in one statement,
// merged in unit order (a unit listed twice merges twice, as SQLite's row-by-row upserts do), and
// written back with one INSERT and one UPDATE per table over unnest() arrays. So both backends store the
// same bytes, and a window costs a few round trips instead of one per unit. Only the leader writes windows
// (leader.ts), which is what makes the read-merge-write safe.

import type { Sql, TransactionSql } from 'postgres';
import { AVG_WEIGHTS, METRIC_FIELDS, type MetricField, NODE_ENERGY_FIELD } from '../../models.js';
import { formatDatetime, midnightDatetime } from '../../timefmt.js';
import { addMetricMapText, avgMetricMapText, metricMapJson, metricWeight } from '../functions.js';
import {
  type CollectionWindow,
  memberColumns,
  memberRow,
  type ProjectRecord,
  type UnitRecord,
  type UserRecord,
  unitRow,
  usageRow,
} from '../index.js';
import type { UnitStore } from '../store.js';

type Row = Record<string, string | number | null>;
type Tx = TransactionSql;

/** The metric columns of `row` merged with `add` (ON CONFLICT's SET: every weight from the old row). */
function mergeMetrics(row: Row, add: Record<MetricField, string>): void {
  const merged: Partial<Record<MetricField, string>> = {};
  for (const m of METRIC_FIELDS) {
    const w = AVG_WEIGHTS[m];
    merged[m] = w
      ? avgMetricMapText(
          row[m],
          add[m],
          metricWeight(row.total_time_seconds, w),
          metricWeight(add.total_time_seconds, w),
        )
      : addMetricMapText(row[m], add[m]);
  }
  Object.assign(row, merged);
}

/** Column name → PostgreSQL array type of the unnest() parameters. */
type Columns = Readonly<Record<string, 'text' | 'bigint'>>;

const textColumns = (names: readonly string[]) => Object.fromEntries(names.map((n) => [n, 'text' as const]));

const UNIT_COLUMNS: Columns = {
  resource_manager: 'text',
  cluster_id: 'text',
  uuid: 'text',
  name: 'text',
  project: 'text',
  groupname: 'text',
  username: 'text',
  created_at: 'text',
  started_at: 'text',
  ended_at: 'text',
  created_at_ts: 'bigint',
  started_at_ts: 'bigint',
  ended_at_ts: 'bigint',
  elapsed: 'text',
  state: 'text',
  allocation: 'text',
  tags: 'text',
  ...textColumns(METRIC_FIELDS),
  ignore: 'bigint',
  num_updates: 'bigint',
  last_updated_at: 'text',
};
/** What an existing unit's conflict changes (../index.ts UPSERT_UNIT and ENDED_AT). */
const UNIT_UPDATED = [
  'ended_at',
  'ended_at_ts',
  'elapsed',
  'state',
  'tags',
  'ignore',
  'last_updated_at',
  ...METRIC_FIELDS,
  'num_updates',
];

const USAGE_COLUMNS: Columns = {
  resource_manager: 'text',
  cluster_id: 'text',
  num_units: 'bigint',
  project: 'text',
  groupname: 'text',
  username: 'text',
  ...textColumns(METRIC_FIELDS),
  num_updates: 'bigint',
  last_updated_at: 'text',
};
const USAGE_UPDATED = ['num_units', ...METRIC_FIELDS, 'num_updates', 'last_updated_at'];

/** `INSERT INTO table (cols) SELECT … FROM unnest(arrays) WITH ORDINALITY ORDER BY ordinality`. */
async function insertRows(
  tx: Tx,
  table: string,
  cols: Columns,
  rows: readonly Row[],
  tail = '',
): Promise<void> {
  if (rows.length === 0) return;
  const names = Object.keys(cols);
  const args = names.map((n) => rows.map((r) => r[n] ?? null));
  const arrays = names.map((n, i) => `$${i + 1}::${cols[n]}[]`).join(', ');
  await tx.unsafe(
    `INSERT INTO ${table} (${names.join(', ')})
SELECT ${names.map((n) => `v.${n}`).join(', ')}
FROM unnest(${arrays}) WITH ORDINALITY AS v(${names.join(', ')}, ord) ORDER BY ord ${tail}`,
    args as never[],
  );
}

/** `UPDATE table SET cols FROM unnest(id, cols…) WHERE table.id = v.id`. */
async function updateRows(
  tx: Tx,
  table: string,
  cols: Columns,
  updated: readonly string[],
  rows: readonly Row[],
): Promise<void> {
  if (rows.length === 0) return;
  const names = ['id', ...updated];
  const args = names.map((n) => rows.map((r) => r[n] ?? null));
  const arrays = names.map((n, i) => `$${i + 1}::${n === 'id' ? 'bigint' : cols[n]}[]`).join(', ');
  await tx.unsafe(
    `UPDATE ${table} SET ${updated.map((n) => `${n} = v.${n}`).join(', ')}
FROM unnest(${arrays}) AS v(${names.join(', ')}) WHERE ${table}.id = v.id`,
    args as never[],
  );
}

const keyOf = (row: Row, key: readonly string[]) => key.map((k) => row[k] ?? '').join('\0');

/**
 * The rows of `table` whose `key` columns match one of `rows`, locked FOR UPDATE, by key. Only the
 * columns a merge reads come back.
 */
async function existingRows(
  tx: Tx,
  table: string,
  key: readonly string[],
  columns: readonly string[],
  rows: readonly Row[],
): Promise<Map<string, Row>> {
  const out = new Map<string, Row>();
  if (rows.length === 0) return out;
  const seen = new Map<string, Row>();
  for (const r of rows) seen.set(keyOf(r, key), r);
  const args = key.map((k) => [...seen.values()].map((r) => r[k] ?? ''));
  const found = await tx.unsafe<Row[]>(
    `SELECT ${['id', ...new Set([...key, ...columns])].map((c) => `t.${c}`).join(', ')}
FROM ${table} t JOIN unnest(${key.map((_, i) => `$${i + 1}::text[]`).join(', ')}) AS k(${key.join(', ')})
  ON ${key.map((k) => `t.${k} = k.${k}`).join(' AND ')}
FOR UPDATE OF t`,
    args as never[],
  );
  for (const r of found) out.set(keyOf(r, key), r);
  return out;
}

/**
 * Upserts one table's rows in order: a row whose key exists (in the table or earlier in `rows`) is merged
 * into it by `merge`, else inserted. Returns, per row of `rows`, whether it created its row.
 */
async function upsertMerged(
  tx: Tx,
  table: string,
  cols: Columns,
  key: readonly string[],
  updated: readonly string[],
  rows: readonly Row[],
  merge: (current: Row, add: Row) => void,
): Promise<boolean[]> {
  const current = await existingRows(tx, table, key, updated, rows);
  const inserted: Row[] = [];
  const created = rows.map((r) => {
    const k = keyOf(r, key);
    const row = current.get(k);
    if (row) {
      merge(row, r);
      return false;
    }
    const fresh = { ...r };
    current.set(k, fresh);
    inserted.push(fresh);
    return true;
  });
  const isNew = new Set(inserted);
  await insertRows(tx, table, cols, inserted);
  await updateRows(
    tx,
    table,
    cols,
    updated,
    [...current.values()].filter((r) => !isNew.has(r)),
  );
  return created;
}

/** ON CONFLICT's SET of units (../index.ts UPSERT_UNIT, then ENDED_AT when it changed). */
function mergeUnit(row: Row, add: Row): void {
  mergeMetrics(row, add as Record<MetricField, string>);
  for (const c of ['ended_at_ts', 'elapsed', 'state', 'tags', 'ignore', 'last_updated_at', 'ended_at'])
    row[c] = add[c]!;
  row.num_updates = Number(row.num_updates ?? 0) + 1;
}

/** ON CONFLICT's SET of usage and daily_usage (../index.ts upsertUsageSql). */
function mergeUsage(row: Row, add: Row): void {
  mergeMetrics(row, add as Record<MetricField, string>);
  row.num_units = Number(row.num_units ?? 0) + Number(add.num_units);
  row.num_updates = Number(row.num_updates ?? 0) + 1;
  row.last_updated_at = add.last_updated_at!;
}

const UNIT_KEY = ['cluster_id', 'uuid', 'started_at'];
const USAGE_KEY = ['cluster_id', 'username', 'project'];
const DAILY_USAGE_KEY = [...USAGE_KEY, 'last_updated_at'];

/** Units of the window (../index.ts upsertUnits); returns the units whose rows this window created. */
async function upsertUnits(
  tx: Tx,
  units: readonly UnitRecord[],
  lastUpdatedAt: string,
): Promise<Set<UnitRecord>> {
  const stored = units.filter((u) => u.uuid);
  const rows: Row[] = stored.map((u) => unitRow(u, lastUpdatedAt));
  const created = await upsertMerged(tx, 'units', UNIT_COLUMNS, UNIT_KEY, UNIT_UPDATED, rows, mergeUnit);
  return new Set(stored.filter((_, i) => created[i]));
}

/** usage and daily_usage of the window (../index.ts upsertUsage). */
async function upsertUsage(
  tx: Tx,
  units: readonly UnitRecord[],
  w: { end: number; timeZone: string },
  created: ReadonlySet<UnitRecord>,
): Promise<void> {
  const lastUpdated = formatDatetime(w.end, w.timeZone);
  const day = midnightDatetime(w.end, w.timeZone);
  const rows = units.filter((u) => u.uuid).map((u) => usageRow(u, created.has(u)));
  const usage = rows.map((r) => ({ ...r, last_updated_at: lastUpdated }));
  await upsertMerged(tx, 'usage', USAGE_COLUMNS, USAGE_KEY, USAGE_UPDATED, usage, mergeUsage);
  const daily = rows.map((r) => ({ ...r, last_updated_at: day }));
  await upsertMerged(tx, 'daily_usage', USAGE_COLUMNS, DAILY_USAGE_KEY, USAGE_UPDATED, daily, mergeUsage);
}

/**
 * users / projects (../index.ts upsertMembersSql): the last record of a name wins; ids are given in the
 * order names first appear.
 */
async function upsertMembers(
  tx: Tx,
  table: 'users' | 'projects',
  records: readonly (UserRecord | ProjectRecord)[],
  defaultLastUpdatedAt: string,
): Promise<void> {
  const list = table === 'users' ? 'projects' : 'users';
  const byName = new Map<string, Row>();
  for (const r of records) byName.set(`${r.cluster_id}\0${r.name}`, memberRow(r, list, defaultLastUpdatedAt));
  const columns = memberColumns(list);
  await insertRows(
    tx,
    table,
    textColumns(columns),
    [...byName.values()],
    `ON CONFLICT (cluster_id, name) DO UPDATE SET ${columns
      .filter((c) => c !== 'cluster_id')
      .map((c) => `${c} = excluded.${c}`)
      .join(', ')}`,
  );
}

/** A window's node energy added to its day's row (../index.ts upsertClusterEnergy). */
async function upsertClusterEnergy(
  tx: Tx,
  e: NonNullable<CollectionWindow['clusterEnergy']>,
  day: string,
): Promise<void> {
  const add = metricMapJson(e.kwh);
  const [row] = await tx<Row[]>`SELECT id, ${tx(NODE_ENERGY_FIELD)} AS kwh FROM cluster_energy
    WHERE cluster_id = ${e.cluster_id} AND last_updated_at = ${day} FOR UPDATE`;
  if (row)
    await tx`UPDATE cluster_energy SET ${tx(NODE_ENERGY_FIELD)} = ${addMetricMapText(row.kwh, add)},
      num_updates = num_updates + 1 WHERE id = ${row.id}`;
  else
    await tx`INSERT INTO cluster_energy (cluster_id, resource_manager, ${tx(NODE_ENERGY_FIELD)}, last_updated_at, num_updates)
      VALUES (${e.cluster_id}, ${e.resource_manager}, ${add}, ${day}, 1)`;
}

/** Everything one window writes, inside the caller's transaction (leader.ts adds its lock check). */
export async function writeWindow(tx: Tx, w: CollectionWindow): Promise<void> {
  const lastUpdated = formatDatetime(w.end, w.timeZone);
  await upsertUsage(tx, w.units, w, await upsertUnits(tx, w.units, lastUpdated));
  await upsertMembers(tx, 'users', w.users ?? [], lastUpdated);
  await upsertMembers(tx, 'projects', w.projects ?? [], lastUpdated);
  if (w.clusterEnergy) await upsertClusterEnergy(tx, w.clusterEnergy, midnightDatetime(w.end, w.timeZone));
}

/** Admin rows are written by every replica: one at a time (ASCII "ceemsadm"). */
const ADMIN_LOCK = BigInt('0x6365656d7361646d').toString();

export class PgStore implements UnitStore {
  constructor(readonly sql: Sql) {}

  async storeCollection(w: CollectionWindow): Promise<void> {
    await this.sql.begin((tx) => writeWindow(tx, w));
  }

  async lastUpdatedAt(): Promise<string | undefined> {
    const [r] = await this.sql<{ t: string | null }[]>`SELECT MAX(last_updated_at) AS t FROM usage`;
    return r?.t ?? undefined;
  }

  async clusterLastUpdatedAt(clusterId: string): Promise<string | undefined> {
    const [r] = await this.sql<{ t: string | null }[]>`SELECT MAX(last_updated_at) AS t FROM usage
      WHERE cluster_id = ${clusterId}`;
    return r?.t ?? undefined;
  }

  async syncAdminUsers(source: string, names: readonly string[], lastUpdatedAt: string): Promise<void> {
    const unique = [...new Set(names)];
    const tags = JSON.stringify([source]);
    await this.sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${ADMIN_LOCK}::bigint)`;
      await tx`INSERT INTO admin_users (uid, cluster_id, resource_manager, name, projects, tags, last_updated_at)
        SELECT '', 'all', '', n, '[]', ${tags}, ${lastUpdatedAt}
        FROM unnest(${unique}::text[]) WITH ORDINALITY AS v(n, ord) ORDER BY ord
        ON CONFLICT (cluster_id, name) DO UPDATE SET uid = excluded.uid,
          resource_manager = excluded.resource_manager, projects = excluded.projects, tags = excluded.tags,
          last_updated_at = excluded.last_updated_at`;
      await tx`DELETE FROM admin_users
        WHERE CASE WHEN tags LIKE '[%' THEN jsonb_exists(tags::jsonb, ${source}) ELSE false END
          AND NOT (name = ANY(${unique}::text[]))`;
    });
  }

  /** Retention purge (§10.5): the cutoff is SQLite's `date('now', '-N day')`, a UTC date. */
  async purgeExpired(retentionDays: number): Promise<{ units: number; usage: number }> {
    const cutoff = new Date(Date.now() - retentionDays * 86_400_000).toISOString().slice(0, 10);
    return this.sql.begin(async (tx) => {
      const units = await tx`DELETE FROM units WHERE ended_at <= ${cutoff}`;
      const usage = await tx`DELETE FROM usage WHERE last_updated_at <= ${cutoff}`;
      return { units: units.count, usage: usage.count };
    });
  }
}
