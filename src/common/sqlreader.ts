// The read path of the API server's database over either backend (issue 21): every read of the API
// routes, the web view and the LB's ownership check goes through a SqlReader. The SQL is written once,
// with `?` placeholders and the few dialect helpers below where SQLite and PostgreSQL really differ; the
// PostgreSQL reader turns `?` into `$n` (pgPlaceholders) and returns the types SQLite gives (int8 and
// numeric as numbers), so that the routes' JSON is the same byte for byte on both.

import postgres from 'postgres';
import type { Database, SQLInputValue, SQLOutputValue, Statement } from './sqlite.js';

export type Dialect = 'sqlite' | 'postgres';
export type Row = Record<string, unknown>;

/** SQL fragments that differ between the dialects; every argument is SQL text of the caller, never a value. */
export interface SqlDialect {
  /** Table source of the elements of a JSON array of strings, as column `value` of `alias`. */
  jsonArrayValues(expr: string, alias: string): string;
  /** Table source of the entries of a JSON object, as columns `key` and `value` of `alias`. */
  jsonObjectEntries(expr: string, alias: string): string;
  /** The number under a constant key of a JSON object (NULL when absent). */
  jsonNumber(expr: string, key: string): string;
  /**
   * `LEFT JOIN` of the number under one key of a JSON object as column `value` of `alias`, and the bound
   * value naming the key.
   */
  jsonKeyJoin(expr: string, alias: string, key: string): [string, string];
  /** A grouping column the planner must not read an index for (SQLite's unary `+`). */
  noIndex(column: string): string;
  /** A join whose order the planner keeps (SQLite's `CROSS JOIN … ON`). */
  fixedJoin: string;
  /** Pattern match ignoring ASCII case, as SQLite's `LIKE`. */
  like: string;
  /** Function building a JSON object from key, value, key, value… */
  jsonObject: string;
  /** Double-precision type of CAST (SQLite's REAL is PostgreSQL's float4). */
  float: string;
}

const CONSTANT_KEY = /^\w+$/;
const constantKey = (key: string) => {
  if (!CONSTANT_KEY.test(key)) throw new Error(`JSON key ${JSON.stringify(key)} is not a constant name`);
  return key;
};

export const SQLITE_DIALECT: SqlDialect = {
  jsonArrayValues: (expr, alias) => `json_each(${expr}) AS ${alias}`,
  jsonObjectEntries: (expr, alias) => `json_each(${expr}) AS ${alias}`,
  jsonNumber: (expr, key) => `json_extract(${expr}, '$.${constantKey(key)}')`,
  // One JSON path per key: `$."k"` (the caller leaves out keys with `"` or `\`).
  jsonKeyJoin: (expr, alias, key) => [`LEFT JOIN json_each(${expr}, ?) AS ${alias}`, `$."${key}"`],
  noIndex: (column) => `+${column}`,
  fixedJoin: 'CROSS JOIN',
  like: 'LIKE',
  jsonObject: 'json_object',
  float: 'REAL',
};

export const POSTGRES_DIALECT: SqlDialect = {
  // `::text` first: a bound parameter typed json by the server would be encoded by the client as a JSON string.
  jsonArrayValues: (expr, alias) => `json_array_elements_text((${expr})::text::json) AS ${alias}(value)`,
  jsonObjectEntries: (expr, alias) => `json_each_text((${expr})::json) AS ${alias}`,
  jsonNumber: (expr, key) => `((${expr})::json ->> '${constantKey(key)}')::float8`,
  jsonKeyJoin: (expr, alias, key) => [
    `LEFT JOIN LATERAL (SELECT ((${expr})::json ->> ?)::float8 AS value) AS ${alias} ON TRUE`,
    key,
  ],
  noIndex: (column) => column,
  fixedJoin: 'JOIN',
  like: 'ILIKE',
  jsonObject: 'json_build_object',
  float: 'float8',
};

export interface SqlReader {
  readonly dialect: Dialect;
  readonly d: SqlDialect;
  all<T = Row>(sql: string, params?: readonly SQLInputValue[]): Promise<T[]>;
  get<T = Row>(sql: string, params?: readonly SQLInputValue[]): Promise<T | undefined>;
  /**
   * Runs `sql` and hands its column names and its rows, as arrays, to `use`; on SQLite they are read one at
   * a time while `use` iterates (none outlives its encoding, src/api/rowenc.ts), so `use` must consume
   * them before it returns.
   */
  withRows<T>(
    sql: string,
    params: readonly SQLInputValue[],
    use: (columns: string[], rows: Iterable<SQLOutputValue[]>) => T,
  ): Promise<T>;
  /** Planner statistics changed elsewhere: SQLite's next read opens a new connection (it loads them once). */
  reopen(): void;
  close(): Promise<void>;
}

const STATEMENTS_PER_CONNECTION = 256;

/**
 * The SQLite reader over a read-only connection opened on first use. Each call runs its statement to
 * completion synchronously, so a connection is never replaced (reopen) while a read is using it.
 */
export function sqliteReader(open: () => Database): SqlReader {
  let db: Database | undefined;
  let stale = false;
  // Prepared statements of the connection, returning rows as objects and as arrays: preparing the
  // 31-column unit query again cost 0.16 ms of the ~2 ms of a 1-day `/units` request.
  const statements = [new Map<string, Statement>(), new Map<string, Statement>()] as const;
  const forget = () => {
    for (const m of statements) m.clear();
    db?.close();
    db = undefined;
  };
  const prepared = (sql: string, arrays: boolean): Statement => {
    if (stale) {
      stale = false;
      forget();
    }
    db ??= open();
    const cache = statements[arrays ? 1 : 0];
    let stmt = cache.get(sql);
    if (!stmt) {
      // The SQL of a route varies with its parameter counts: the cache starts over rather than grow.
      if (cache.size >= STATEMENTS_PER_CONNECTION) cache.clear();
      stmt = db.prepare(sql);
      stmt.setReturnArrays(arrays);
      cache.set(sql, stmt);
    }
    return stmt;
  };
  return {
    dialect: 'sqlite',
    d: SQLITE_DIALECT,
    async all<T>(sql: string, params: readonly SQLInputValue[] = []) {
      return prepared(sql, false).all(...params) as T[];
    },
    async get<T>(sql: string, params: readonly SQLInputValue[] = []) {
      return prepared(sql, false).get(...params) as T | undefined;
    },
    async withRows(sql, params, use) {
      const stmt = prepared(sql, true);
      const columns = stmt.columns().map((c) => c.name);
      return use(columns, stmt.iterate(...params) as Iterable<SQLOutputValue[]>);
    },
    reopen() {
      stale = db !== undefined;
    },
    async close() {
      forget();
    },
  };
}

/** `$$` or `$tag$` opening a dollar-quoted string (`$1` is a parameter, not a quote). */
const DOLLAR_QUOTE = /^\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$/;

/**
 * `sql` with its `?` placeholders numbered `$1`, `$2`… for PostgreSQL; a `?` inside a string literal,
 * a quoted identifier, a dollar-quoted string or a comment is text and stays as it is.
 */
export function pgPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  let i = 0;
  const copyUntil = (end: string, from: number) => {
    const j = sql.indexOf(end, from);
    const stop = j < 0 ? sql.length : j + end.length;
    out += sql.slice(i, stop);
    i = stop;
  };
  while (i < sql.length) {
    const c = sql[i]!;
    if (c === '?') {
      out += `$${++n}`;
      i++;
    } else if (c === "'" || c === '"') {
      // A doubled quote inside is an escaped one: the scan continues after it as a new literal.
      copyUntil(c, i + 1);
    } else if (c === '-' && sql[i + 1] === '-') {
      copyUntil('\n', i + 2);
    } else if (c === '/' && sql[i + 1] === '*') {
      copyUntil('*/', i + 2);
    } else if (c === '$' && DOLLAR_QUOTE.test(sql.slice(i, i + 64))) {
      const tag = DOLLAR_QUOTE.exec(sql.slice(i, i + 64))![0];
      copyUntil(tag, i + tag.length);
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

// int8 (COUNT, bigint columns) and numeric (SUM of int8) are numbers, as SQLite returns them.
const SQLITE_NUMBERS = {
  bigint: { to: 20, from: [20, 1700], serialize: (x: number) => String(x), parse: (x: string) => Number(x) },
};

export interface PostgresReaderOptions {
  /** Connections of the pool (the `postgres` library's default: 10). */
  maxConnections?: number;
  /** `application_name` of the connections (who reads, in pg_stat_activity). */
  applicationName?: string;
  /** Called with every statement run, its SQL as written (with `?`) and its parameters. */
  onQuery?: (q: { sql: string; params: SQLInputValue[] }) => void;
}

/** The PostgreSQL reader over a pool of connections to `url` (a libpq connection URL). */
export function postgresReader(url: string, opts: PostgresReaderOptions = {}): SqlReader {
  const sql = postgres(url, {
    max: opts.maxConnections ?? 10,
    types: SQLITE_NUMBERS,
    onnotice: () => {},
    // Ask the server for nothing at connect time: every type read here is built in.
    fetch_types: false,
    connect_timeout: 10,
    connection: { application_name: opts.applicationName ?? 'ceems_reader' },
  });
  const translated = new Map<string, string>();
  const run = (text: string, params: readonly SQLInputValue[]) => {
    opts.onQuery?.({ sql: text, params: [...params] });
    let pg = translated.get(text);
    if (pg === undefined) {
      if (translated.size >= STATEMENTS_PER_CONNECTION) translated.clear();
      pg = pgPlaceholders(text);
      translated.set(text, pg);
    }
    return sql.unsafe(pg, params as postgres.ParameterOrJSON<never>[], { prepare: true });
  };
  return {
    dialect: 'postgres',
    d: POSTGRES_DIALECT,
    async all<T>(text: string, params: readonly SQLInputValue[] = []) {
      return [...(await run(text, params))] as T[];
    },
    async get<T>(text: string, params: readonly SQLInputValue[] = []) {
      return (await run(text, params))[0] as T | undefined;
    },
    async withRows(text, params, use) {
      const rows = await run(text, params).values();
      return use(
        rows.columns.map((c) => c.name),
        rows as unknown as SQLOutputValue[][],
      );
    },
    reopen() {},
    async close() {
      await sql.end({ timeout: 5 });
    },
  };
}
