// Query-parameter rules shared by the API routes (spec §7.1): repeatable parameters, presence flags,
// `field` whitelisting, the `from`/`to` window and SQL `IN` lists with bound parameters only.

import type { SQLInputValue } from '../common/sqlite.js';
import type { SqlDialect, SqlReader } from '../common/sqlreader.js';
import { ApiError } from './http.js';
import { formatDatetime } from './timefmt.js';

export type Query = Record<string, string | string[] | undefined>;

/** Every value of a repeatable parameter, in order. */
export function values(q: Query, name: string): string[] {
  const v = q[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

/** Presence flag: any value, even `false`, means true (kept quirk). */
export function present(q: Query, name: string): boolean {
  return q[name] !== undefined;
}

/** Requested fields in the model's wire order; absent `field` = all; none valid → 400. */
export function selectFields(q: Query, whitelist: readonly string[]): string[] {
  const asked = values(q, 'field');
  if (asked.length === 0) return [...whitelist];
  const set = new Set(asked);
  const fields = whitelist.filter((f) => set.has(f));
  if (fields.length === 0) throw new ApiError('bad_data', 'invalid query fields');
  return fields;
}

const DAY_S = 24 * 3600;
const MAX_TIMESTAMP_S = 8.6e12;

function timestamp(q: Query, name: 'from' | 'to'): number | undefined {
  const v = values(q, name);
  if (v.length === 0) return undefined;
  const text = v[0]!;
  const n = Number(text);
  // Beyond ±8.6e12 s a Date cannot represent the window bounds.
  if (!/^[+-]?\d{1,15}$/.test(text) || Math.abs(n) > MAX_TIMESTAMP_S) {
    throw new ApiError('bad_data', `query parameter '${name}': malformed timestamp`);
  }
  return n;
}

/** `from`/`to` in Unix seconds with the defaults of §7.1; enforces `--query.max-period`. */
export function timeWindow(q: Query, nowMs: number, maxPeriodMs: number): { from: number; to: number } {
  let from = timestamp(q, 'from');
  let to = timestamp(q, 'to');
  if (from === undefined && to === undefined) {
    to = Math.floor(nowMs / 1000);
    from = to - DAY_S;
  } else if (to === undefined) {
    to = from! + DAY_S;
  } else if (from === undefined) {
    from = to - DAY_S;
  }
  if (maxPeriodMs > 0 && (to! - from!) * 1000 > maxPeriodMs) {
    throw new ApiError('bad_data', 'maximum query window exceeded');
  }
  return { from: from!, to: to! };
}

/** A WHERE clause built from fragments with `?` placeholders and their bound values. */
export class Where {
  readonly parts: string[] = [];
  readonly params: SQLInputValue[] = [];

  add(sql: string, ...params: SQLInputValue[]): this {
    this.parts.push(sql);
    this.params.push(...params);
    return this;
  }

  /** `AND <col> IN (?, …)`; an empty list matches nothing. */
  in(column: string, list: readonly string[]): this {
    return this.add(`${column} IN (${list.map(() => '?').join(', ')})`, ...list);
  }

  /** `in` only when the parameter was given. */
  inIfAny(column: string, list: readonly string[]): this {
    return list.length > 0 ? this.in(column, list) : this;
  }

  sql(): string {
    return this.parts.length === 0 ? '1=1' : this.parts.join(' AND ');
  }
}

/**
 * Window clause of §7.1: bounds rendered in the DB zone (`DatetimeLayout`), compared as strings;
 * `running` adds `OR ended_at_ts IN ('0')`, `terminated` adds `AND ended_at_ts > 0`.
 */
export function windowClause(
  column: string,
  w: { from: number; to: number },
  timeZone: string,
  opts: { running?: boolean; terminated?: boolean } = {},
): [string, string[]] {
  let sql = `${column} BETWEEN ? AND ?`;
  if (opts.running) sql += ` OR ended_at_ts IN ('0')`;
  if (opts.terminated) sql += ' AND ended_at_ts > 0';
  return [`(${sql})`, [formatDatetime(w.from * 1000, timeZone), formatDatetime(w.to * 1000, timeZone)]];
}

/**
 * Sub-select of `(cluster_id, name)` of the projects having any of `users` as member (all with members if
 * empty). Callers compare the pair, e.g. `(cluster_id, project) IN (…)`: project names repeat across
 * clusters (`default` namespaces, `acc1` accounts) and membership in one cluster grants nothing in another.
 */
export function projectsOfUsers(d: SqlDialect, users: readonly string[]): [string, string[]] {
  const members = d.jsonArrayValues('projects.users', 'm');
  if (users.length === 0) {
    return [`SELECT cluster_id, name FROM projects WHERE EXISTS (SELECT 1 FROM ${members})`, []];
  }
  return [
    `SELECT cluster_id, name FROM projects WHERE EXISTS (SELECT 1 FROM ${members} WHERE m.value IN (${users.map(() => '?').join(', ')}))`,
    [...users],
  ];
}

/**
 * Units a non-admin user may list (§7.2 with D-API-6): their own, and the service-account pods
 * (`<p>:unknown`) of each `project` parameter p they are a member of — in the cluster of that membership.
 */
export function ownUnitsClause(
  d: SqlDialect,
  user: string,
  projectParams: readonly string[],
): [string, SQLInputValue[]] {
  const names = [...new Set(projectParams)];
  if (names.length === 0) return ['username = ?', [user]];
  return [
    `(username = ? OR (cluster_id, project, username) IN (SELECT cluster_id, name, name || ':unknown' FROM projects
       WHERE name IN (${names.map(() => '?').join(', ')}) AND EXISTS (SELECT 1 FROM ${d.jsonArrayValues('projects.users', 'm')} WHERE m.value = ?)))`,
    [user, ...names, user],
  ];
}

/**
 * User set of a non-admin request: `<p>:unknown` for each `project` parameter p the logged user is a
 * member of (D-API-6), then the logged user.
 */
export async function userSet(
  reader: SqlReader,
  user: string,
  projectParams: readonly string[],
): Promise<string[]> {
  const out: string[] = [];
  if (projectParams.length > 0) {
    const [sql, params] = projectsOfUsers(reader.d, [user]);
    const rows = await reader.all<{ name: string }>(`SELECT name FROM (${sql}) AS p`, params);
    const member = new Set(rows.map((r) => r.name));
    for (const p of new Set(projectParams)) if (member.has(p)) out.push(`${p}:unknown`);
  }
  out.push(user);
  return out;
}
