// Moving an API server from SQLite to PostgreSQL (issue 21; `ceems_tool db migrate`): every table of a
// ceems.db copied into a PostgreSQL database in ONE transaction, batch by batch in id order, then checked
// table by table: the row count and a SHA-256 over the canonical rows (JSON arrays of the column values
// in id order, computed here in JS from each side's own read), so that a value changed on the way in
// (type, rounding, encoding) shows as a mismatch.

import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Sql, TransactionSql } from 'postgres';
import { type Database, openDatabase } from '../../../common/sqlite.js';
import { DB_FILE } from '../index.js';
import { SCHEMA_VERSION } from '../migrations.js';
import { migratePg } from './migrations.js';

/** Every table of the schema, parents before nothing: there are no foreign keys. */
export const TABLES = ['units', 'usage', 'daily_usage', 'users', 'projects', 'admin_users', 'cluster_energy'];

export class CopyError extends Error {}

export interface TableCheck {
  table: string;
  sourceRows: number;
  targetRows: number;
  sourceSha256: string;
  targetSha256: string;
}

export const tableMatches = (c: TableCheck) =>
  c.sourceRows === c.targetRows && c.sourceSha256 === c.targetSha256;

/** `path` is a ceems.db file or the data directory holding one. */
function openSource(path: string): Database {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, DB_FILE) : path;
  if (!existsSync(file)) throw new CopyError(`--from: no SQLite database at ${file}`);
  const db = openDatabase(file, { readOnly: true });
  let row: { version: number; dirty: number } | undefined;
  try {
    row = db.prepare('SELECT version, dirty FROM schema_migrations LIMIT 1').get() as typeof row;
  } catch {
    db.close();
    throw new CopyError(`--from: ${file} is not a CEEMS API server database (no schema_migrations table)`);
  }
  if (!row || row.dirty || Number(row.version) !== SCHEMA_VERSION) {
    db.close();
    throw new CopyError(
      `--from: ${file} is at schema version ${row?.version ?? 'none'}${row?.dirty ? ' (dirty)' : ''}, not ${SCHEMA_VERSION}: start this version of ceems_api_server on it once to migrate it, then copy it`,
    );
  }
  return db;
}

interface Column {
  name: string;
  type: 'text' | 'bigint' | 'boolean';
}

/** The target's columns of `table` in their order (the SQLite table has the same names). */
async function columnsOf(sql: Sql | TransactionSql, table: string): Promise<Column[]> {
  const rows = await sql<{ name: string; type: string }[]>`SELECT column_name AS name, data_type AS type
    FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ${table}
    ORDER BY ordinal_position`;
  return rows.map((r) => ({
    name: r.name,
    type: r.type === 'text' ? 'text' : r.type === 'boolean' ? 'boolean' : 'bigint',
  }));
}

/** Rows of a SQLite table in id order, `batch` at a time (keyset: no OFFSET rescans). */
function* sqliteBatches(db: Database, table: string, columns: readonly Column[], batch: number) {
  const stmt = db.prepare(
    `SELECT ${columns.map((c) => c.name).join(', ')} FROM ${table} WHERE id > ? ORDER BY id LIMIT ${batch}`,
  );
  stmt.setReturnArrays(true);
  let last = Number.MIN_SAFE_INTEGER;
  for (;;) {
    const rows = stmt.all(last) as unknown as unknown[][];
    if (rows.length === 0) return;
    yield rows;
    last = Number(rows[rows.length - 1]![0]);
  }
}

async function* pgBatches(sql: Sql, table: string, columns: readonly Column[], batch: number) {
  let last = Number.MIN_SAFE_INTEGER;
  for (;;) {
    const rows = (await sql
      .unsafe(
        `SELECT ${columns.map((c) => c.name).join(', ')} FROM ${table} WHERE id > $1 ORDER BY id LIMIT ${batch}`,
        [last],
      )
      .values()) as unknown[][];
    if (rows.length === 0) return;
    yield rows;
    last = Number(rows[rows.length - 1]![0]);
  }
}

/** Count and digest of canonical rows: one JSON array per row, in id order. */
class TableDigest {
  private readonly hash = createHash('sha256');
  rows = 0;
  add(rows: readonly unknown[][]): void {
    for (const r of rows) this.hash.update(`${JSON.stringify(r.map(canonical))}\n`);
    this.rows += rows.length;
  }
  hex(): string {
    return this.hash.digest('hex');
  }
}

// SQLite's booleans are integers; PostgreSQL's bigints arrive as numbers (connect.ts).
const canonical = (v: unknown) =>
  typeof v === 'boolean' ? Number(v) : typeof v === 'bigint' ? Number(v) : v;

export interface CopyOptions {
  /** ceems.db or its data directory. */
  from: string;
  /** The target database (migrated here to the current schema). */
  sql: Sql;
  /** Empty a non-empty target first instead of refusing. */
  force?: boolean;
  /** Rows per INSERT. */
  batchRows?: number;
  progress?: (line: string) => void;
}

/** Copies, then checks; returns one check per table (the caller decides what a mismatch means). */
export async function copySqliteToPostgres(opts: CopyOptions): Promise<TableCheck[]> {
  const batch = opts.batchRows ?? 5000;
  const src = openSource(opts.from);
  try {
    await migratePg(opts.sql);
    await opts.sql.begin(async (tx) => {
      const counts = await Promise.all(
        TABLES.map(
          async (t) => [t, Number((await tx.unsafe(`SELECT count(*) AS n FROM ${t}`))[0]!.n)] as const,
        ),
      );
      const filled = counts.filter(([, n]) => n > 0);
      if (filled.length > 0) {
        if (!opts.force)
          throw new CopyError(
            `--to: the target database is not empty (${filled.map(([t, n]) => `${t}: ${n} rows`).join(', ')}); use --force to replace its rows`,
          );
        await tx.unsafe(`TRUNCATE ${TABLES.join(', ')} RESTART IDENTITY`);
      }
      for (const table of TABLES) {
        const columns = await columnsOf(tx, table);
        let copied = 0;
        const names = columns.map((c) => c.name);
        const insert = `INSERT INTO ${table} (${names.join(', ')}) OVERRIDING SYSTEM VALUE
SELECT * FROM unnest(${columns.map((c, i) => `$${i + 1}::${c.type}[]`).join(', ')})`;
        for (const rows of sqliteBatches(src, table, columns, batch)) {
          copied += rows.length;
          const arrays = columns.map((c, i) =>
            rows.map((r) => {
              const v = r[i];
              // SQLite keeps what it was given: a number in a text column is stored as text by PostgreSQL
              return v === null || v === undefined ? null : c.type === 'text' ? String(v) : v;
            }),
          );
          await tx.unsafe(insert, arrays as never[]);
        }
        // The identity continues after the copied ids (new rows must not collide with them).
        await tx.unsafe(
          `SELECT setval(pg_get_serial_sequence('${table}', 'id'), GREATEST((SELECT max(id) FROM ${table}), 1), (SELECT max(id) FROM ${table}) IS NOT NULL)`,
        );
        opts.progress?.(`copied ${table}: ${copied} rows`);
      }
      await tx.unsafe('ANALYZE');
    });
    const checks: TableCheck[] = [];
    for (const table of TABLES) {
      const columns = await columnsOf(opts.sql, table);
      const source = new TableDigest();
      for (const rows of sqliteBatches(src, table, columns, batch)) source.add(rows);
      const target = new TableDigest();
      for await (const rows of pgBatches(opts.sql, table, columns, batch)) target.add(rows);
      checks.push({
        table,
        sourceRows: source.rows,
        targetRows: target.rows,
        sourceSha256: source.hex(),
        targetSha256: target.hex(),
      });
    }
    return checks;
  } finally {
    src.close();
  }
}

/** The checks as a table for the operator. */
export function formatChecks(checks: readonly TableCheck[]): string {
  const head = ['table', 'sqlite rows', 'postgres rows', 'sqlite sha256', 'postgres sha256', 'result'];
  const lines = checks.map((c) => [
    c.table,
    String(c.sourceRows),
    String(c.targetRows),
    c.sourceSha256.slice(0, 16),
    c.targetSha256.slice(0, 16),
    tableMatches(c) ? 'ok' : 'MISMATCH',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  return [head, ...lines]
    .map((l) =>
      l
        .map((v, i) => v.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
