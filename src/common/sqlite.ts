// SQLite for the API server and the load balancer through `node:sqlite`, built into Node.js 24: no native
// add-on to compile at install. The few things better-sqlite3 offered and `DatabaseSync` does not
// (transactions as functions, backups to a path, first-column lists) are here, so callers use one API.

import {
  type AggregateOptions,
  backup,
  DatabaseSync,
  type SQLInputValue,
  type SQLOutputValue,
  type StatementSync,
} from 'node:sqlite';

export type Database = DatabaseSync;
export type Statement = StatementSync;
export type Row = Record<string, SQLOutputValue>;
export type { SQLInputValue, SQLOutputValue };

export interface OpenOptions {
  /** Read-only connection; the file must exist. */
  readOnly?: boolean;
  /** How long a statement waits for another connection's lock before SQLITE_BUSY (ms); default 0. */
  busyTimeoutMs?: number;
}

const PAGE_CACHE_KIB = 16_000;

/** Opens (read-write: creates) the database file. */
export function openDatabase(file: string, opts: OpenOptions = {}): Database {
  const db = new DatabaseSync(file, { readOnly: opts.readOnly ?? false, timeout: opts.busyTimeoutMs ?? 0 });
  // A 16 MB page cache, better-sqlite3's default, instead of SQLite's 2 MB: filling a 1M-unit DB
  // (bench/api-routes.ts) was 19 % slower with the smaller cache.
  db.exec(`PRAGMA cache_size = -${PAGE_CACHE_KIB}`);
  return db;
}

/**
 * Runs `fn` in a transaction: committed when it returns, rolled back when it (or the commit) throws.
 * Called inside another transaction it runs in a savepoint, so that an inner failure undoes only its
 * own writes and the outer call decides. `fn` must be synchronous.
 */
export function transaction<T>(db: Database, fn: () => T): T {
  const nested = db.isTransaction;
  db.exec(nested ? 'SAVEPOINT nested' : 'BEGIN');
  try {
    const out = fn();
    db.exec(nested ? 'RELEASE nested' : 'COMMIT');
    return out;
  } catch (e) {
    // A failed COMMIT may already have ended the transaction (SQLITE_BUSY keeps it open, others do not).
    if (db.isTransaction) db.exec(nested ? 'ROLLBACK TO nested; RELEASE nested' : 'ROLLBACK');
    throw e;
  }
}

/**
 * A prepared statement whose `?` parameters are `columns`, bound from a record in that order: node:sqlite
 * looks every named parameter up by a scan of them all, which made the 36-column unit upsert several times
 * slower than binding by position (bench/api-ingest.ts, first window).
 */
export class RecordStatement<K extends string> {
  private readonly stmt: Statement;

  constructor(
    db: Database,
    sql: string,
    readonly columns: readonly K[],
  ) {
    this.stmt = db.prepare(sql);
  }

  run(row: Readonly<Record<K, SQLInputValue>>): void {
    this.stmt.run(...this.columns.map((c) => row[c]));
  }

  get(row: Readonly<Record<K, SQLInputValue>>): Row | undefined {
    return this.stmt.get(...this.columns.map((c) => row[c]));
  }
}

/** `?, ?, …`: one parameter per column. */
export const placeholders = (columns: readonly unknown[]): string => columns.map(() => '?').join(', ');

/** The first column of every row. */
export function firstColumn<T extends SQLOutputValue>(stmt: Statement, ...params: SQLInputValue[]): T[] {
  stmt.setReturnArrays(true);
  try {
    return (stmt.all(...params) as unknown as T[][]).map((r) => r[0]!);
  } finally {
    stmt.setReturnArrays(false);
  }
}

/**
 * Registers a deterministic aggregate function whose accumulator may be any JS value (`node:sqlite` keeps
 * it as is; its typings allow SQL values only). SQL arguments: `step`'s parameters after the accumulator.
 */
export function aggregate<T>(
  db: Database,
  name: string,
  fns: { start: () => T; step: (acc: T, ...args: SQLOutputValue[]) => T; result: (acc: T) => SQLInputValue },
): void {
  db.aggregate(name, { deterministic: true, ...fns } as unknown as AggregateOptions);
}

/** SQLite online backup of `db` into a new file, `pagesPerStep` pages at a time (other work runs between). */
export async function backupTo(db: Database, file: string, pagesPerStep: number): Promise<void> {
  await backup(db, file, { rate: pagesPerStep });
}

/** The value of a PRAGMA (`PRAGMA <name>`), e.g. `journal_mode`. */
export function pragma(db: Database, name: string): SQLOutputValue | undefined {
  const row = db.prepare(`PRAGMA ${name}`).get();
  return row === undefined ? undefined : Object.values(row)[0];
}
