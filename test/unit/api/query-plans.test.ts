// Issue 15: a user-scoped request never scans `units`, `usage` or `daily_usage`. The routes are not listed
// here: every GET route the API server registered is taken from its route registry (the web view's too),
// its query parameters from its declared schema (the API description), and it is replayed as a user (an
// admin route with a `user` parameter: as an admin for that user) with every combination of its filters
// (cluster_id, from/to, project, running, uuid, experimental, __terminated). The reader connection
// reports each statement the handlers execute (src/api/db/trace.ts), and the `EXPLAIN QUERY PLAN` of each
// one touching those tables, with its real parameters, must not `SCAN` them (a full table or full index
// scan). Checked on a fresh DB (no planner statistics) and after `CeemsDb.optimize` on a bigger one; and
// on PostgreSQL (issue 21), the same routes on a copy of the bigger one after ANALYZE: no `Seq Scan`, in
// the plan for the values and in the generic plan.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import postgres from 'postgres';
import { CeemsDb, DB_FILE, openReader, type UnitRecord } from '../../../src/api/db/index.js';
import { type IssuedQuery, traceQueries } from '../../../src/api/db/trace.js';
import { apiRoute, querySchema } from '../../../src/api/routes/context.js';
import { createApiServer } from '../../../src/api/server.js';
import { type Database, openDatabase } from '../../../src/common/sqlite.js';
import { pgPlaceholders, postgresReader } from '../../../src/common/sqlreader.js';
import { copyToPostgres } from '../../fixtures/api/postgres.js';
import { ADMIN, NOW, seedDb, TZ } from '../../fixtures/api/seed.js';
import { apiServerOptions } from '../../fixtures/api/server.js';
import { type PostgresServer, startPostgres } from '../../helpers/postgres.js';

const API = '/api/v1';
const USER = 'alice';
const CHECKED = ['units', 'usage', 'daily_usage'];
const TOUCHES = new RegExp(`\\b(?:FROM|JOIN)\\s+\\(?\\s*(?:${CHECKED.join('|')})\\b`, 'i');

/**
 * Admin routes that take a `user` parameter which does not scope their query. Every other route with a
 * `user` parameter, and every route open to plain users, is checked.
 */
const NOT_USER_SCOPED: ReadonlyMap<string, string> = new Map([
  [`${API}/stats/current/admin`, 'spec §7.8: `user` is accepted and ignored, the counts cover every unit'],
  [`${API}/stats/global/admin`, 'spec §7.8: `user` is accepted and ignored, the counts cover every unit'],
]);

/** Filters toggled on and off, each with the query text it adds when the route declares it. */
const FILTERS: ReadonlyArray<{ params: string[]; query: string }> = [
  { params: ['cluster_id'], query: 'cluster_id=slurm-0' },
  { params: ['from', 'to'], query: `from=${NOW / 1000 - 86_400}&to=${NOW / 1000}` },
  { params: ['project'], query: 'project=acc1' },
  { params: ['running'], query: 'running' },
  { params: ['uuid'], query: 'uuid=1001' },
  { params: ['experimental'], query: 'experimental' },
  { params: ['__terminated'], query: '__terminated' },
];

interface Server {
  app: Awaited<ReturnType<typeof createApiServer>>['app'];
  routes: Awaited<ReturnType<typeof createApiServer>>['routes'];
  issued: IssuedQuery[];
  /** The plan of an issued query, one line per step. */
  explain(q: IssuedQuery): Promise<string[]>;
  /** The table or alias a plan line reads end to end, if any. */
  scanned(line: string): string | undefined;
  close(): Promise<void>;
}

async function tracedServer(dataDir: string): Promise<Server & { db: Database }> {
  const issued: IssuedQuery[] = [];
  let db: Database | undefined;
  const traced = () => {
    db ??= traceQueries(openReader(dataDir), (q) => issued.push(q));
    return db;
  };
  const api = await createApiServer(apiServerOptions(dataDir, { openDb: traced }));
  return {
    app: api.app,
    routes: api.routes,
    get db() {
      return traced();
    },
    issued,
    explain: async (q) =>
      (
        traced()
          .prepare(`EXPLAIN QUERY PLAN ${q.sql}`)
          .all(...q.params) as { detail: string }[]
      ).map((p) => p.detail),
    scanned: (line) => /^SCAN (\w+)/.exec(line)?.[1],
    close: () => api.close(),
  };
}

/**
 * The generic plan of `sql` (PostgreSQL 15 has no `EXPLAIN (GENERIC_PLAN)`): prepared, then explained
 * executing with its values as literals (quoted by the server) under `force_generic_plan`.
 */
async function genericPlan(admin: postgres.Sql, sql: string, params: readonly unknown[]): Promise<string[]> {
  await admin.unsafe(`PREPARE plan_check AS ${sql}`).simple();
  try {
    const [row] = await admin.unsafe(
      "SELECT parameter_types::text[] AS types FROM pg_prepared_statements WHERE name = 'plan_check'",
    );
    const types = row!.types as string[];
    const args: string[] = [];
    for (const [i, p] of params.entries()) {
      const [l] = await admin.unsafe('SELECT quote_nullable($1::text) AS l', [p == null ? null : String(p)]);
      args.push(`${l!.l}::${types[i]}`);
    }
    await admin.unsafe('SET plan_cache_mode = force_generic_plan');
    const plan = await admin
      .unsafe(`EXPLAIN EXECUTE plan_check${args.length > 0 ? `(${args.join(', ')})` : ''}`)
      .simple();
    return plan.map((r) => String(r['QUERY PLAN']));
  } finally {
    await admin.unsafe('RESET plan_cache_mode');
    await admin.unsafe('DEALLOCATE plan_check');
  }
}

/** The same server reading a copy of the DB in `dataDir` from PostgreSQL. */
async function tracedPgServer(pg: PostgresServer, dataDir: string): Promise<Server> {
  const issued: IssuedQuery[] = [];
  const url = await copyToPostgres(pg, dataDir);
  const reader = postgresReader(url, { onQuery: (q) => issued.push(q) });
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  const api = await createApiServer(apiServerOptions(dataDir, { reader }));
  return {
    app: api.app,
    routes: api.routes,
    issued,
    // The plan for these values and the generic plan a prepared statement switches to after five runs.
    explain: async (q) => {
      const custom = await admin.unsafe(
        `EXPLAIN ${pgPlaceholders(q.sql)}`,
        q.params as postgres.ParameterOrJSON<never>[],
      );
      return [
        ...custom.map((r) => String(r['QUERY PLAN'])),
        '(generic plan)',
        ...(await genericPlan(admin, pgPlaceholders(q.sql), q.params)),
      ];
    },
    // `Seq Scan on units u`, `Parallel Seq Scan on usage`: the alias when there is one.
    scanned: (line) => {
      const m = /Seq Scan on (\w+)(?: (\w+))?/.exec(line);
      return m ? (m[2] ?? m[1]) : undefined;
    },
    async close() {
      await api.close();
      await admin.end({ timeout: 5 });
    },
  };
}

/** Query parameters each route declares, from the API description (/swagger/doc.json). */
async function declaredParams(app: Server['app']): Promise<Map<string, Set<string>>> {
  const doc = (await app.inject({ method: 'GET', url: '/swagger/doc.json' })).json() as {
    paths: Record<string, Record<string, unknown>>;
  };
  const out = new Map<string, Set<string>>();
  for (const [path, ops] of Object.entries(doc.paths)) {
    const get = ops.get as { parameters?: { in: string; name: string }[] } | undefined;
    const names = (get?.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name);
    out.set(`${API}${path}`, new Set(names));
  }
  return out;
}

/** Every combination of the filters a route declares, as query strings. */
function variants(params: ReadonlySet<string>, base: string[]): string[] {
  const filters = FILTERS.filter((f) => f.params.every((p) => params.has(p)));
  const out: string[] = [];
  for (let mask = 0; mask < 1 << filters.length; mask++) {
    const parts = [...base, ...filters.filter((_, i) => mask & (1 << i)).map((f) => f.query)];
    out.push(parts.join('&'));
  }
  return out;
}

/** Names a checked table goes by in a statement: its own and its aliases (`units AS u`). */
function checkedNames(sql: string): Set<string> {
  const names = new Set(CHECKED);
  for (const m of sql.matchAll(new RegExp(`\\b(?:${CHECKED.join('|')})\\s+AS\\s+(\\w+)`, 'gi')))
    names.add(m[1]!);
  return names;
}

interface Violation {
  url: string;
  sql: string;
  plan: string[];
}

/**
 * Replays every user-scoped request of every registered API route and returns the statements whose plan
 * scans a checked table; `checkedRoutes` lists the routes that were replayed.
 */
async function findScans(s: Server): Promise<{ violations: Violation[]; checkedRoutes: Set<string> }> {
  const params = await declaredParams(s.app);
  const violations: Violation[] = [];
  const checkedRoutes = new Set<string>();
  for (const route of s.routes) {
    if (!route.methods.includes('GET') || /[*:]/.test(route.url)) continue;
    const declared = params.get(route.url) ?? new Set<string>();
    let user: string;
    let base: string[];
    // A public route may identify the user itself from the same headers (the web view's /ui/api/*).
    if (route.access === 'user' || route.access === 'public') {
      user = USER;
      base = [];
    } else if (route.access === 'admin' && declared.has('user') && !NOT_USER_SCOPED.has(route.url)) {
      user = ADMIN;
      base = [`user=${USER}`];
    } else {
      continue;
    }
    checkedRoutes.add(route.url);
    for (const query of variants(declared, base)) {
      const url = query ? `${route.url}?${query}` : route.url;
      s.issued.length = 0;
      const r = await s.app.inject({ method: 'GET', url, headers: { 'x-grafana-user': user } });
      assert.ok(r.statusCode < 500, `${url}: ${r.statusCode} ${r.body}`);
      for (const q of s.issued.splice(0)) {
        if (!TOUCHES.test(q.sql)) continue;
        const names = checkedNames(q.sql);
        const plan = await s.explain(q);
        if (plan.some((d) => names.has(s.scanned(d) ?? ''))) violations.push({ url, sql: q.sql, plan });
      }
    }
  }
  return { violations, checkedRoutes };
}

const describeViolations = (v: Violation[]) =>
  v.map((x) => `${x.url}\n  ${x.sql.replace(/\s+/g, ' ')}\n  plan: ${x.plan.join(' | ')}`).join('\n');

/**
 * Units of 2,000 users in 500 projects of 2 clusters over 10 days, one every 100 s: enough rows in units and
 * usage (2,000) for the planners to see what an index buys.
 */
function bulkUnits(): UnitRecord[] {
  return Array.from({ length: 8000 }, (_, i) => {
    const started = NOW - 10 * 86_400_000 + i * 100_000;
    return {
      cluster_id: `slurm-${i % 2}`,
      resource_manager: 'slurm',
      uuid: String(10_000 + i),
      project: `bulk${i % 500}`,
      username: `bulk${i % 2000}`,
      started_at: new Date(started).toISOString(),
      ended_at: new Date(started + 3_600_000).toISOString(),
      started_at_ts: started,
      ended_at_ts: started + 3_600_000,
      total_time_seconds: { walltime: 3600 },
      avg_cpu_usage: { global: i % 100 },
    };
  });
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * The seeded DB without its statistics (closing the writer analyzed its few rows, with which a scan is
 * the right plan): how the planner sees a DB before its first ANALYZE.
 */
function unanalyzedDb(): string {
  const dir = seedDb();
  dirs.push(dir);
  const db = openDatabase(join(dir, DB_FILE));
  db.exec('DROP TABLE IF EXISTS sqlite_stat1');
  db.close();
  return dir;
}

describe('EXPLAIN QUERY PLAN of every route for a user-scoped request', () => {
  const expectedRoutes = [
    'units',
    'units/admin',
    'units/verify',
    'usage/current',
    'usage/global',
    'usage/current/admin',
    'usage/global/admin',
    'projects',
    'users',
  ].map((r) => `${API}/${r}`);

  /** Replays every route on the DB in `dir`: each expected route ran, and no plan scanned a table. */
  async function assertNoScans(dir: string, pg?: PostgresServer): Promise<void> {
    const s = pg ? await tracedPgServer(pg, dir) : await tracedServer(dir);
    try {
      const { violations, checkedRoutes } = await findScans(s);
      for (const r of expectedRoutes) assert.ok(checkedRoutes.has(r), `${r} was not replayed`);
      assert.equal(violations.length, 0, describeViolations(violations));
    } finally {
      await s.close();
    }
  }

  test('no planner statistics (a DB never analyzed): no scan of units, usage or daily_usage', async () => {
    const dir = unanalyzedDb();
    await assertNoScans(dir);
  });

  /** The seeded DB with 8,000 more units of 2,000 users, analyzed. */
  function bulkDb(): string {
    const dir = seedDb();
    dirs.push(dir);
    const db = CeemsDb.open(dir);
    // Stored as the cycle stores them, each in the hourly window it ended in (its last_updated_at).
    const byHour = new Map<number, UnitRecord[]>();
    for (const u of bulkUnits()) {
      const end = Math.ceil(u.ended_at_ts! / 3_600_000) * 3_600_000;
      byHour.set(end, [...(byHour.get(end) ?? []), u]);
    }
    for (const [end, units] of byHour)
      db.storeCollection({ start: end - 3_600_000, end, timeZone: TZ, units });
    db.optimize();
    const stats = db.db.prepare("SELECT idx FROM sqlite_stat1 WHERE tbl = 'units'").all() as {
      idx: string;
    }[];
    assert.ok(
      stats.some((r) => r.idx === 'idx_units_username_ended'),
      'units were analyzed',
    );
    db.close();
    return dir;
  }

  test('after CeemsDb.optimize on 8,000 units of 2,000 users: no scan either', async () => {
    await assertNoScans(bulkDb());
  });

  describe('PostgreSQL', () => {
    let pg: PostgresServer;
    before(async () => {
      pg = await startPostgres({ port: 9423 });
    });
    after(() => pg.stop());

    test('the same routes on the same 8,000 units, analyzed: no Seq Scan of units, usage or daily_usage', async () => {
      await assertNoScans(bulkDb(), pg);
    });
  });

  test('a new route whose query has no index is caught, with no list to update', async () => {
    const dir = unanalyzedDb();
    const s = await tracedServer(dir);
    try {
      apiRoute(
        s.app,
        `${API}/units/by-name`,
        {
          access: 'user',
          summary: 'test route',
          tags: ['test'],
          querystring: querySchema({ cluster_id: { description: 'Cluster IDs', repeatable: true } }),
        },
        async (req, reply) => {
          s.db.prepare('SELECT uuid FROM units WHERE name = ? ORDER BY uuid').all(req.ceemsUser);
          return reply.send('');
        },
      );
      const { violations, checkedRoutes } = await findScans(s);
      assert.ok(checkedRoutes.has(`${API}/units/by-name`));
      assert.deepEqual(
        [...new Set(violations.map((v) => v.url))],
        [`${API}/units/by-name`, `${API}/units/by-name?cluster_id=slurm-0`],
      );
    } finally {
      await s.close();
    }
  });
});
