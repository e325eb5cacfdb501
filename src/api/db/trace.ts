// A connection that reports every statement it executes, with its bound parameters: the EXPLAIN QUERY
// PLAN test replays the requests of every route and checks the plans of the SQL they actually issued, and
// bench/api-routes.ts runs that same SQL as the floor of each route.

import type { Database, SQLInputValue, Statement } from '../../common/sqlite.js';

export interface IssuedQuery {
  sql: string;
  params: SQLInputValue[];
}

const EXECUTE = new Set(['all', 'get', 'iterate', 'run']);

/** Binds the methods of a native object (DatabaseSync, StatementSync) to it: they reject a Proxy as `this`. */
function forward<T extends object>(target: T, override: (name: string | symbol) => unknown): T {
  return new Proxy(target, {
    get(t, name) {
      const own = override(name);
      if (own !== undefined) return own;
      const v = Reflect.get(t, name, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

function traceStatement(stmt: Statement, sql: string, onQuery: (q: IssuedQuery) => void): Statement {
  return forward(stmt, (name) => {
    if (typeof name !== 'string' || !EXECUTE.has(name)) return undefined;
    const method = (stmt as unknown as Record<string, (...p: SQLInputValue[]) => unknown>)[name]!;
    return (...params: SQLInputValue[]) => {
      onQuery({ sql, params });
      return method.apply(stmt, params);
    };
  });
}

/** `db`, reporting each execution of a statement it prepares (not `exec`: no parameters, no routes use it). */
export function traceQueries(db: Database, onQuery: (q: IssuedQuery) => void): Database {
  return forward(db, (name) =>
    name === 'prepare' ? (sql: string) => traceStatement(db.prepare(sql), sql, onQuery) : undefined,
  );
}
