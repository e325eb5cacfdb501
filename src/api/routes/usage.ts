// /usage/{current,global}[/admin] (spec §7.7): cumulative usage rows, or units aggregated over a window
// with per-key sums and weighted averages built from the JSON metric maps.

import type { SQLInputValue } from '../../common/sqlite.js';
import type { SqlDialect } from '../../common/sqlreader.js';
import { ApiError, sendRows, sendSuccess } from '../http.js';
import { USAGE_STRUCT } from '../jsonenc.js';
import { AVG_WEIGHTS, METRIC_FIELDS, USAGE_FIELDS } from '../models.js';
import {
  present,
  projectsOfUsers,
  type Query,
  selectFields,
  timeWindow,
  userSet,
  values,
  Where,
  windowClause,
} from '../query.js';
import { type EncodedRows, encodeQuery } from '../rowenc.js';
import { apiRoute, querySchema, type RouteContext, type RouteGroup } from './context.js';

const METRICS = new Set<string>(METRIC_FIELDS);
const JSON_COLUMNS = METRICS;
/** Allowed `groupby` values (D-API-1). */
export const GROUPBY_FIELDS = ['cluster_id', 'resource_manager', 'project', 'groupname', 'username'];
const ROUND_S = 900;
const CACHE_TTL_MS = 15 * 60_000;
const CACHE_MAX_ENTRIES = 1000;

/** 64-bit FNV-1a of a string's UTF-8 bytes, as hex. */
export function fnv1a64(text: string): string {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(text, 'utf8')) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16);
}

/** Cache of `/usage/current` results keyed by FNV-1a of the normalised request URL (TTL 15 min). */
export class UsageCache {
  private readonly entries = new Map<string, { expires: number; result: EncodedRows }>();

  get(key: string, now: number): { expires: number; result: EncodedRows } | undefined {
    const e = this.entries.get(key);
    if (e && e.expires <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  set(key: string, result: EncodedRows, now: number): void {
    if (this.entries.size >= CACHE_MAX_ENTRIES) {
      for (const [k, e] of this.entries) if (e.expires <= now) this.entries.delete(k);
      if (this.entries.size >= CACHE_MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    }
    this.entries.set(key, { expires: now + CACHE_TTL_MS, result });
  }
}

function visibleProjects(d: SqlDialect, q: Query, users: readonly string[]): Where {
  const [sub, params] = projectsOfUsers(d, users);
  return new Where()
    .add(`(cluster_id, project) IN (${sub})`, ...params)
    .inIfAny('project', values(q, 'project'))
    .inIfAny('cluster_id', values(q, 'cluster_id'));
}

function globalUsage(ctx: RouteContext, q: Query, users: readonly string[]): Promise<EncodedRows> {
  const fields = selectFields(q, USAGE_FIELDS);
  const where = visibleProjects(ctx.reader.d, q, users);
  return encodeQuery(
    ctx.reader,
    `SELECT ${fields.join(', ')} FROM usage WHERE ${where.sql()} ORDER BY cluster_id ASC, username ASC, project ASC`,
    where.params,
    USAGE_STRUCT,
    { jsonColumns: JSON_COLUMNS },
  );
}

/** `current` aggregation; null data when no metric field can be aggregated. */
async function currentUsage(
  ctx: RouteContext,
  q: Query,
  users: readonly string[],
  w: { from: number; to: number },
): Promise<EncodedRows | null> {
  const fields = selectFields(q, USAGE_FIELDS);
  const groupby = values(q, 'groupby');
  for (const g of groupby) {
    if (!GROUPBY_FIELDS.includes(g)) throw new ApiError('bad_data', 'invalid groupby fields');
  }
  const experimental = present(q, 'experimental');
  const terminated = !experimental && present(q, '__terminated');
  const [windowSql, windowParams] = windowClause('last_updated_at', w, ctx.timeZone, { terminated });
  const { reader } = ctx;
  const { d } = reader;

  // The keys of every requested metric in the window (from every unit of the window, whoever owns it:
  // spec §7.7), in one pass over the units: one query per metric read them 13 times (100k units in the
  // window: 742 ms against 344 ms).
  const metrics = fields.filter((f) => METRICS.has(f));
  const keysOf = new Map<string, string[]>(metrics.map((m) => [m, []]));
  if (metrics.length > 0) {
    const where = new Where()
      .add('j.key IS NOT NULL')
      .inIfAny('project', values(q, 'project'))
      .inIfAny('cluster_id', values(q, 'cluster_id'))
      .add(windowSql, ...windowParams);
    const column = metrics.map((m, i) => `WHEN ${i} THEN units.${m}`).join(' ');
    const rows = await reader.all<{ metric: number; key: unknown }>(
      `SELECT DISTINCT m.column1 AS metric, j.key AS key FROM units, (VALUES ${metrics.map((_, i) => `(${i})`).join(', ')}) AS m,
  ${d.jsonObjectEntries(`CASE m.column1 ${column} END`, 'j')} WHERE ${where.sql()}`,
      where.params,
    );
    // Keys that cannot be quoted in a JSON path are left out rather than failing the query.
    for (const r of rows)
      if (typeof r.key === 'string' && !/["\\]/.test(r.key)) keysOf.get(metrics[r.metric]!)!.push(r.key);
  }

  const selects: string[] = [];
  const selectParams: SQLInputValue[] = [];
  const joins: string[] = [];
  const joinParams: SQLInputValue[] = [];
  const joined = new Map<string, string>();
  const join = (column: string, key: string): string => {
    const id = `${column}\u0000${key}`;
    let alias = joined.get(id);
    if (!alias) {
      alias = `j${joined.size}`;
      joined.set(id, alias);
      const [sql, param] = d.jsonKeyJoin(`u.${column}`, alias, key);
      joins.push(sql);
      joinParams.push(param);
    }
    return alias;
  };
  const group = [...new Set(['username', 'project', ...groupby])].sort();
  let metricJoins = 0;
  for (const f of fields) {
    if (f === 'num_units') {
      selects.push(experimental ? 'SUM(u.num_units) AS num_units' : 'COUNT(u.id) AS num_units');
    } else if (!METRICS.has(f)) {
      // A column outside the grouping (cluster_id, groupname…) takes the group's greatest value: one
      // well-defined row on both backends, where SQLite's bare column took any.
      selects.push(group.includes(f) ? `u.${f} AS ${f}` : `MAX(u.${f}) AS ${f}`);
    } else {
      const keys = keysOf.get(f)!;
      if (keys.length === 0) continue;
      metricJoins++;
      const weight = AVG_WEIGHTS[f];
      const parts = keys.map((k) => {
        const v = join(f, k);
        selectParams.push(k);
        // Keys bound as text (PostgreSQL cannot type a bare parameter of json_build_object); a zero
        // weight divides by NULL, giving NULL on both backends.
        if (!weight) return `CAST(? AS TEXT), SUM(${v}.value)`;
        const wt = join('total_time_seconds', weight);
        return `CAST(? AS TEXT), CAST(SUM(${v}.value * ${wt}.value) AS ${d.float}) / NULLIF(SUM(${wt}.value), 0)`;
      });
      selects.push(`${d.jsonObject}(${parts.join(', ')}) AS ${f}`);
    }
  }
  if (metricJoins === 0) return null;

  const where = visibleProjects(d, q, users).add(windowSql, ...windowParams);
  // `+column` groups alike but keeps the planner from scanning a whole index for its order: with `project`
  // fixed, it chose to read idx_units_username_ended end to end to skip sorting a few groups.
  // The other grouping columns break ties, so that both backends list groups in one order.
  const order = [...new Set(['cluster_id', 'username', 'project', ...group])]
    .map((c) => (group.includes(c) ? c : `MAX(u.${c})`))
    .join(' ASC, ');
  const sql = `SELECT ${selects.join(', ')} FROM (${experimental ? 'daily_usage' : 'units'} AS u ${joins.join(' ')})
WHERE ${where.sql()} GROUP BY ${group.map(d.noIndex).join(', ')} ORDER BY ${order} ASC`;
  return encodeQuery(reader, sql, [...selectParams, ...joinParams, ...where.params], USAGE_STRUCT, {
    jsonColumns: JSON_COLUMNS,
  });
}

const PARAMS = {
  cluster_id: { description: 'Cluster IDs', repeatable: true },
  project: { description: 'Projects', repeatable: true },
  field: { description: 'Fields to return', repeatable: true },
};
const CURRENT_PARAMS = {
  ...PARAMS,
  from: { description: 'Window start, Unix seconds (floored to 15 min)' },
  to: { description: 'Window end, Unix seconds (ceiled to 15 min)' },
  groupby: { description: `Extra grouping: ${GROUPBY_FIELDS.join(', ')}`, repeatable: true },
  experimental: { description: 'Presence flag: aggregate daily_usage' },
  __terminated: { description: 'Presence flag: only ended units' },
};

/** Normalised URL of a current-usage request: rounded window, logged user, keys sorted. */
function cacheKey(path: string, q: Query, w: { from: number; to: number }, user: string): string {
  const params = new URLSearchParams();
  const merged: Query = { ...q, from: String(w.from), to: String(w.to), logged_user: user };
  for (const k of Object.keys(merged).sort()) for (const v of values(merged, k)) params.append(k, v);
  return fnv1a64(`${path}?${params.toString()}`);
}

export function usageRoutes(cache: UsageCache): RouteGroup {
  return (app, ctx) => {
    for (const mode of ['current', 'global'] as const) {
      for (const admin of [false, true]) {
        const url = `${ctx.api}/usage/${mode}${admin ? '/admin' : ''}`;
        const params = mode === 'current' ? CURRENT_PARAMS : PARAMS;
        apiRoute(
          app,
          url,
          {
            access: admin ? 'admin' : 'user',
            summary: `${mode === 'current' ? 'Usage aggregated over a window' : 'Cumulative usage'} of ${admin ? 'any users (admin)' : "the logged user's projects"}`,
            tags: ['usage'],
            model: USAGE_STRUCT,
            querystring: querySchema(
              admin ? { ...params, user: { description: 'Users (absent = all)', repeatable: true } } : params,
            ),
          },
          async (req, reply) => {
            const q = req.query as Query;
            const users = admin
              ? values(q, 'user')
              : await userSet(ctx.reader, req.ceemsUser, values(q, 'project'));
            if (mode === 'global') return sendRows(reply, await globalUsage(ctx, q, users));
            const raw = timeWindow(q, ctx.now(), ctx.maxPeriodMs);
            const w = {
              from: Math.floor(raw.from / ROUND_S) * ROUND_S,
              to: Math.ceil(raw.to / ROUND_S) * ROUND_S,
            };
            const key = cacheKey(url, q, w, req.ceemsUser);
            const now = ctx.now();
            const hit = cache.get(key, now);
            if (hit) {
              reply.header('Expires', new Date(hit.expires).toUTCString());
              return sendRows(reply, hit.result);
            }
            const result = await currentUsage(ctx, q, users, w);
            if (!result) return sendSuccess(reply, USAGE_STRUCT, null);
            if (result.rows > 0) cache.set(key, result, now);
            return sendRows(reply, result);
          },
        );
      }
    }
  };
}
