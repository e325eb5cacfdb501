// Connections to the API server's PostgreSQL (issue 21). The `postgres` library reads libpq's URL options
// itself (sslmode, sslrootcert, sslcert, sslkey: node_modules/postgres/src/index.js `certificates`), so the
// configured `data.url` is handed over as it is.

import postgres, { type Sql } from 'postgres';

/** int8 (ids, counts, Unix ms) as JS numbers, like node:sqlite returns SQLite's integers. */
const INT8_AS_NUMBER = {
  to: 20,
  from: [20],
  serialize: (n: number | bigint) => String(n),
  parse: (s: string) => Number(s),
};

export interface PgOptions {
  /** Pool size (default 10). */
  max?: number;
  /** Called when a connection of the pool closes (leader.ts watches its dedicated one). */
  onclose?: (connectionId: number) => void;
  /** Never recycle a connection (the library does after 30–60 min): its session holds a lock. */
  keepSession?: boolean;
}

/** Opens a pool on `url`; connections are made on first use. */
export function openPg(url: string, opts: PgOptions = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 10,
    types: { int8: INT8_AS_NUMBER },
    onnotice: () => {}, // `IF NOT EXISTS` notices are not news
    onclose: opts.onclose,
    ...(opts.keepSession ? { max_lifetime: 0, idle_timeout: 0 } : {}),
    connect_timeout: 10,
    connection: { application_name: 'ceems_api_server' },
  });
}

/** The URL without its password, for logs and errors. */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}
