// API server read path (issues 9, 15), in a DB of 1M units (small mode: 100k) where one user (u0) owns 1 %
// and 990 others 0.1 % each (~86 units per day):
//   1. `/units`, a light user's 1-day window, without and with `cluster_id`;
//   2. `/units`, u0's whole history (10k units; small: 1k);
//   3. `/usage/current` (cache missed: each request asks for another window) and `/usage/global` for u0;
//   4. 200 concurrent clients (real sockets, server in a worker thread) each asking for its user's window
//      20 times (steady state: each client's first request, which opens its connection, is not counted,
//      and with 5 it and the ramps made p99/p50 swing from 1.3 to 8.6 between runs);
//   5. PostgreSQL (issue 21), the same DB copied into a real PostgreSQL 15 (Debian's, when installed): cases
//      1 and 2 against SQLite's in turns, and the 200 clients split over two API server replicas reading
//      that one PostgreSQL against the one SQLite server of case 4.
// Cases 1–3 go through the real fastify routes (inject, no socket). Their floor is the SQL each route
// actually issued (captured through src/api/db/trace.ts, so same WHERE, ORDER and columns), prepared once
// and run with the same parameters, its rows encoded with JSON.stringify as objects: keyed JSON like the
// response (rows as arrays, a smaller document without the field names, are shown too), measured in
// blocks taking turns with the route. Case 4 prints p50, p99 and their ratio, and the requests that failed,
// against a bare node:http server answering the same clients with one fixed body of the same size. Case 5
// prints each figure with SQLite's as its floor and their ratio (the bar: within 2x on reads,
// faster with two replicas).
// `CEEMS_BENCH_DB=<dir>` keeps the filled DB there and reuses it on the next run.

import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Pool } from 'undici';
import { CeemsDb, DB_FILE, openReader, type UnitRecord } from '../src/api/db/index.js';
import { type IssuedQuery, traceQueries } from '../src/api/db/trace.js';
import { createApiServer } from '../src/api/server.js';
import { formatDatetimezone } from '../src/api/timefmt.js';
import type { Database } from '../src/common/sqlite.js';
import { postgresReader } from '../src/common/sqlreader.js';
import { copyToPostgres } from '../test/fixtures/api/postgres.js';
import { apiServerOptions } from '../test/fixtures/api/server.js';
import { startPostgres } from '../test/helpers/postgres.js';

const TZ = 'UTC';
const T0 = Date.UTC(2024, 4, 1);
const DAY_S = 86_400;
const BATCH = 50_000;
const CLIENTS = 200;
/** Debian's PostgreSQL 15 (test/helpers/postgres.ts) on a port of this benchmark. */
const POSTGRES_BIN = '/usr/lib/postgresql/15/bin/postgres';
const POSTGRES_PORT = 9425;

/** Owner of unit i: u0 every 100th unit, else one of 990 light users v<n>. */
const userOf = (i: number) => (i % 100 === 0 ? 'u0' : `v${i % 1000}`);
const LIGHT_USERS = Array.from({ length: 999 }, (_, k) => k + 1)
  .filter((n) => n % 100 !== 0)
  .map((n) => `v${n}`);

/** Deterministic pseudo-random floats in [0, 1) (mulberry32): metric values that do not repeat. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function unit(i: number): UnitRecord {
  const r = random(i + 1);
  const started = T0 + i * 1000;
  const ended = started + 3600_000;
  const user = userOf(i);
  const wall = 3600;
  const cpus = 1 + Math.floor(r() * 64);
  return {
    cluster_id: `slurm-${(i >> 10) & 1}`,
    resource_manager: 'slurm',
    uuid: String(1_000_000 + i),
    name: `job-${i}`,
    project: `p${user}`,
    groupname: `g${user}`,
    username: user,
    created_at: formatDatetimezone(started - 60_000, TZ),
    started_at: formatDatetimezone(started, TZ),
    ended_at: formatDatetimezone(ended, TZ),
    created_at_ts: started - 60_000,
    started_at_ts: started,
    ended_at_ts: ended,
    elapsed: '01:00:00',
    state: 'COMPLETED',
    allocation: { cpus, mem: cpus * 4294967296, nodes: 1 },
    tags: { qos: 'normal', partition: 'cpu' },
    total_time_seconds: {
      walltime: wall,
      alloc_cputime: wall * cpus,
      alloc_cpumemtime: wall * cpus * 4096,
      alloc_gputime: 0,
    },
    avg_cpu_usage: { global: r() * 100 },
    avg_cpu_mem_usage: { global: r() * 100 },
    total_cpu_energy_usage_kwh: { total: r() },
    total_cpu_emissions_gms: { owid_total: r() * 50, rte_total: r() * 10 },
    total_io_read_stats: { bytes: Math.floor(r() * 1e10), requests: Math.floor(r() * 1e6) },
    total_io_write_stats: { bytes: Math.floor(r() * 1e10), requests: Math.floor(r() * 1e6) },
  };
}

function fill(dir: string, total: number): void {
  const db = CeemsDb.open(dir);
  const users = ['u0', ...LIGHT_USERS];
  const t = performance.now();
  for (let start = 0; start < total; start += BATCH) {
    const units = Array.from({ length: Math.min(BATCH, total - start) }, (_, k) => unit(start + k));
    db.storeCollection({
      start: T0 + start * 1000,
      end: T0 + (start + BATCH) * 1000 + 3600_000,
      timeZone: TZ,
      units,
      ...(start === 0
        ? {
            users: users.map((u) => ({
              cluster_id: 'slurm-0',
              resource_manager: 'slurm',
              name: u,
              projects: [`p${u}`],
            })),
            projects: users.map((u) => ({
              cluster_id: 'slurm-0',
              resource_manager: 'slurm',
              name: `p${u}`,
              users: [u],
            })),
          }
        : {}),
    });
  }
  db.close();
  console.log(
    `DB: ${total.toLocaleString('en-US')} units filled in ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );
}

/** A filled DB: `CEEMS_BENCH_DB` when it holds one of this size, else a new one. */
function database(total: number): { dir: string; cleanup(): void } {
  const keep = process.env.CEEMS_BENCH_DB;
  if (keep) {
    const dir = join(keep, String(total));
    if (existsSync(join(dir, DB_FILE))) {
      const t = performance.now();
      CeemsDb.open(dir).close(); // migrations of an older DB
      console.log(`DB: reused ${dir} (opened in ${((performance.now() - t) / 1000).toFixed(1)} s)`);
    } else {
      mkdirSync(dir, { recursive: true });
      fill(dir, total);
    }
    return { dir, cleanup() {} };
  }
  const dir = mkdtempSync(join(tmpdir(), 'ceems-bench-routes-'));
  fill(dir, total);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Figure {
  p50: number;
  p99: number;
}

const ms = (x: number) => `${x < 10 ? x.toFixed(2) : x.toFixed(1)} ms`;
const fig = (m: Figure) => `p50 ${ms(m.p50)}, p99 ${ms(m.p99)}`;

// A full garbage collection between blocks of measurements (V8's own flag, set at run time).
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;
const BLOCK = 5;

/**
 * A route and its floor measured in blocks of BLOCK repetitions, route, floor with rows as objects and
 * floor with rows as arrays taking turns block by block, each block after a full garbage collection: each
 * pays for the collections its own garbage causes, and the machine's load drifts over all three alike.
 * The floor is the queries the route issued, each prepared once, run again with the same parameters and
 * their rows JSON.stringify'd.
 */
async function routeAndFloor(
  route: (rep: number) => Promise<unknown>,
  db: Database,
  queries: IssuedQuery[],
  reps: number,
) {
  const stmts = (arrays: boolean) =>
    queries.map((q) => {
      const s = db.prepare(q.sql);
      s.setReturnArrays(arrays);
      return { s, params: q.params };
    });
  const floor = (list: ReturnType<typeof stmts>) => async () => {
    let bytes = 0;
    for (const { s, params } of list) bytes += JSON.stringify(s.all(...params)).length;
    return bytes;
  };
  const [r, objects, arrays] = (await inTurns([route, floor(stmts(false)), floor(stmts(true))], reps)) as [
    Figure,
    Figure,
    Figure,
  ];
  return { route: r, objects, arrays };
}

/** Each variant run `reps` times in blocks of BLOCK, taking turns, each block after a full collection. */
async function inTurns(variants: Array<(rep: number) => Promise<unknown>>, reps: number): Promise<Figure[]> {
  const times: number[][] = variants.map(() => []);
  for (const v of variants) await v(-1); // warm-up: statement caches, JIT
  for (let i = 0; i < reps; i += BLOCK) {
    for (let j = 0; j < variants.length; j++) {
      const k = (i / BLOCK + j) % variants.length;
      collectGarbage();
      for (let rep = i; rep < Math.min(reps, i + BLOCK); rep++) {
        const t = performance.now();
        await variants[k]!(rep);
        times[k]!.push(performance.now() - t);
      }
    }
  }
  return times.map((t) => {
    t.sort((a, b) => a - b);
    return { p50: percentile(t, 50), p99: percentile(t, 99) };
  });
}

/** `EXPLAIN QUERY PLAN` of a query, one line (`SCAN units` / `SEARCH units USING INDEX …`). */
function plan(db: Database, q: IssuedQuery): string {
  return (db.prepare(`EXPLAIN QUERY PLAN ${q.sql}`).all(...q.params) as { detail: string }[])
    .map((r) => r.detail)
    .join('; ');
}

// ---- 200 clients: the server runs in a worker thread so that the clients do not share its event loop.
// Its floor is a bare node:http server in the same kind of worker answering every request with one fixed
// body of the same size: what 200 clients on this machine see from a server that does no work.

/** `pgUrl`: the server reads that PostgreSQL instead of the SQLite DB in `dir`. */
type ApiRoutesServer = { dir: string; now: number; pgUrl?: string };
type ServerData = { apiRoutesServer: ApiRoutesServer } | { bareServer: { body: string } };

if (!isMainThread && workerData && 'apiRoutesServer' in (workerData as object)) {
  const { dir, now, pgUrl } = (workerData as { apiRoutesServer: ApiRoutesServer }).apiRoutesServer;
  const api = await createApiServer(
    apiServerOptions(dir, {
      listenAddresses: ['127.0.0.1:0'],
      timeZone: TZ,
      now: () => now,
      reader: pgUrl ? postgresReader(pgUrl) : undefined,
    }),
  );
  const [address] = await api.server.listen();
  parentPort!.postMessage(address);
  parentPort!.once('message', () => {
    void api.close().then(() => parentPort!.close());
  });
}

if (!isMainThread && workerData && 'bareServer' in (workerData as object)) {
  const body = Buffer.from((workerData as { bareServer: { body: string } }).bareServer.body);
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
  server.listen(0, '127.0.0.1', () => {
    const a = server.address() as AddressInfo;
    parentPort!.postMessage(`127.0.0.1:${a.port}`);
  });
  parentPort!.once('message', () => {
    server.closeAllConnections();
    server.close(() => parentPort!.close());
  });
}

/** CLIENTS clients in this thread on `servers`, each server in its own worker thread (client c on server c mod n). */
async function concurrentClients(
  servers: ServerData[],
  urlOf: (client: number, rep: number) => string,
  reps: number,
) {
  const workers = servers.map((s) => new Worker(new URL(import.meta.url), { workerData: s }));
  const addresses = await Promise.all(
    workers.map(
      (worker) =>
        new Promise<string>((res, rej) => {
          worker.once('message', res);
          worker.once('error', rej);
        }),
    ),
  );
  const pools = addresses.map(
    (address) => new Pool(`http://${address}`, { connections: Math.ceil(CLIENTS / addresses.length) }),
  );
  const latencies: number[] = [];
  const errors = new Map<string, number>();
  let bytes = 0;
  // Steady state only: the clock starts once every client's first request (rep -1: it opens the connection,
  // and after a long DB copy it reads cold pages) has been answered, and throughput counts only what follows.
  let t0 = 0;
  let t1 = 0;
  let warm = 0;
  let allWarm!: () => void;
  const counting = new Promise<void>((resolve) => {
    allWarm = resolve;
  });
  try {
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, c) => {
        const user = LIGHT_USERS[c % LIGHT_USERS.length]!;
        for (let rep = -1; rep < reps; rep++) {
          if (rep === 0) {
            if (++warm === CLIENTS) {
              t0 = performance.now();
              allWarm();
            }
            await counting;
          }
          const s = performance.now();
          try {
            const r = await pools[c % pools.length]!.request({
              path: urlOf(c, rep),
              method: 'GET',
              headers: { 'x-grafana-user': user },
            });
            const body = await r.body.text();
            if (r.statusCode !== 200) throw new Error(`HTTP ${r.statusCode}: ${body.slice(0, 200)}`);
            if (rep >= 0) {
              latencies.push(performance.now() - s);
              bytes += body.length;
            }
          } catch (e) {
            // E.g. a connection the server dropped (keep-alive timeout while it was busy): counted, not timed.
            const m = (e as Error).message;
            errors.set(m, (errors.get(m) ?? 0) + 1);
          }
        }
      }),
    );
    t1 = performance.now();
  } finally {
    await Promise.all(pools.map((p) => p.close()));
    await Promise.all(
      workers.map((worker) => {
        const exited = new Promise((r) => worker.once('exit', r));
        worker.postMessage('close');
        return exited;
      }),
    );
  }
  const seconds = (t1 - t0) / 1000;
  latencies.sort((a, b) => a - b);
  if (latencies.length === 0) throw new Error(`every request failed: ${[...errors.keys()].join('; ')}`);
  return {
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1]!,
    requests: latencies.length,
    rps: latencies.length / seconds,
    avgBytes: bytes / latencies.length,
    errors,
  };
}

export async function run(small: boolean): Promise<void> {
  const total = small ? 100_000 : 1_000_000;
  const reps = small ? 5 : 30;
  const { dir, cleanup } = database(total);
  try {
    const end = T0 + total * 1000 + 7200_000;
    const now = end;
    // A light user's day in the middle of the DB's span; u0's whole history.
    const mid = Math.floor(T0 / 1000 + total / 2);
    const day = (shiftS = 0) => `from=${mid - DAY_S / 2 + shiftS}&to=${mid + DAY_S / 2 + shiftS}`;
    const all = `from=${Math.floor(T0 / 1000) - 3600}&to=${Math.floor(end / 1000)}`;

    const issued: IssuedQuery[] = [];
    const traced = await createApiServer(
      apiServerOptions(dir, {
        openDb: () => traceQueries(openReader(dir), (q) => issued.push(q)),
        timeZone: TZ,
        now: () => now,
      }),
    );
    const plainApi = await createApiServer(apiServerOptions(dir, { timeZone: TZ, now: () => now }));
    const inject = async (app: typeof plainApi.app, url: string, user: string) => {
      const r = await app.inject({ method: 'GET', url, headers: { 'x-grafana-user': user } });
      if (r.statusCode !== 200) throw new Error(`${url}: ${r.statusCode} ${r.body.slice(0, 200)}`);
      return r.body;
    };
    // Timed requests: the body is taken as the stream of what the route wrote (no copy into one string).
    const timed = async (url: string, user: string) => {
      const r = await plainApi.app.inject({
        method: 'GET',
        url,
        headers: { 'x-grafana-user': user },
        payloadAsStream: true,
      });
      let bytes = 0;
      for await (const chunk of r.stream()) bytes += (chunk as Buffer).length;
      if (r.statusCode !== 200) throw new Error(`${url}: ${r.statusCode}`);
      return bytes;
    };
    const reader = openReader(dir);

    const cases: Array<{ label: string; user: string; url: (rep: number) => string; reps: number }> = [
      { label: "/units, a light user's 1-day window", user: 'v1', url: () => `/api/v1/units?${day()}`, reps },
      {
        label: "/units?cluster_id, a light user's 1-day window",
        user: 'v1',
        url: () => `/api/v1/units?cluster_id=slurm-0&${day()}`,
        reps,
      },
      {
        label: "/units, u0's whole history",
        user: 'u0',
        url: () => `/api/v1/units?${all}`,
        reps: small ? 5 : 20,
      },
      {
        label: "/usage/current, u0's 1-day window (cache missed)",
        user: 'u0',
        // A new 15-min-rounded window on every request: never answered from the usage cache.
        url: (rep) => `/api/v1/usage/current?${day((rep + 1) * 900)}`,
        reps: small ? 5 : 10,
      },
      { label: '/usage/global, u0', user: 'u0', url: () => '/api/v1/usage/global', reps: small ? 5 : 20 },
    ];
    const lines: string[] = [];
    for (const c of cases) {
      issued.length = 0;
      const body = await inject(traced.app, c.url(0), c.user);
      const queries = [...issued];
      const rows = (JSON.parse(body) as { data: unknown[] | null }).data?.length ?? 0;
      const m = await routeAndFloor((rep) => timed(c.url(rep), c.user), reader, queries, c.reps);
      const main = queries.filter((q) => /\bFROM\s+\(?\s*(units|usage|daily_usage)\b/i.test(q.sql));
      lines.push(
        `${c.label}: ${rows} rows, ${(body.length / 1e3).toFixed(0)} kB`,
        `  route ${fig(m.route)} | floor (same ${queries.length} queries + JSON.stringify of the rows as objects) ${fig(m.objects)} | ratio ${(m.route.p50 / m.objects.p50).toFixed(2)}x`,
        `  (rows as arrays, without their field names: floor p50 ${ms(m.arrays.p50)}, ratio ${(m.route.p50 / m.arrays.p50).toFixed(2)}x)`,
        ...main.slice(-1).map((q) => `  plan: ${plan(reader, q)}`),
      );
    }
    // the floor server of the 200 clients answers with one real answer of the route
    const body = await inject(plainApi.app, `/api/v1/units?${day()}`, LIGHT_USERS[0]!);
    reader.close();
    await traced.close();
    await plainApi.close();
    for (const l of lines) console.log(l);

    const windowUrl = (c: number, rep: number) => `/api/v1/units?${day(((c + rep) % 12) * 3600)}`;
    const cc = await concurrentClients([{ apiRoutesServer: { dir, now } }], windowUrl, small ? 2 : 20);
    const bare = await concurrentClients([{ bareServer: { body } }], windowUrl, small ? 2 : 20);
    console.log(
      `${CLIENTS} concurrent clients on /units (each its user's 1-day window, ${(cc.avgBytes / 1e3).toFixed(0)} kB): ${cc.requests} requests, ${cc.rps.toFixed(0)} req/s`,
    );
    console.log(
      `  p50 ${ms(cc.p50)}, p99 ${ms(cc.p99)}, max ${ms(cc.max)} | p99/p50 ${(cc.p99 / cc.p50).toFixed(2)}`,
    );
    console.log(
      `  floor (bare node:http server in a worker, one fixed ${(body.length / 1e3).toFixed(0)} kB body): ${bare.rps.toFixed(0)} req/s, ` +
        `p50 ${ms(bare.p50)}, p99 ${ms(bare.p99)}, max ${ms(bare.max)} | p99/p50 ${(bare.p99 / bare.p50).toFixed(2)}`,
    );
    for (const [message, n] of [...cc.errors, ...bare.errors])
      console.log(`  FAILED: ${n} requests: ${message}`);
    if (existsSync(POSTGRES_BIN)) await postgresCases(dir, now, { day: day(), all, reps, small, windowUrl });
    else console.log(`PostgreSQL: not measured (${POSTGRES_BIN} not installed)`);
  } finally {
    cleanup();
  }
}

/**
 * Case 5: the DB copied into PostgreSQL; `/units` for a light user's day and u0's whole history, SQLite's
 * route and PostgreSQL's in turns; then the 200 clients on two replicas reading that PostgreSQL.
 */
async function postgresCases(
  dir: string,
  now: number,
  c: {
    day: string;
    all: string;
    reps: number;
    small: boolean;
    windowUrl: (client: number, rep: number) => string;
  },
): Promise<void> {
  const pg = await startPostgres({ port: POSTGRES_PORT });
  try {
    const t = performance.now();
    const url = await copyToPostgres(pg, dir);
    console.log(`PostgreSQL 15: DB copied in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const servers = await Promise.all(
      [undefined, postgresReader(url)].map((reader) =>
        createApiServer(apiServerOptions(dir, { timeZone: TZ, now: () => now, reader })),
      ),
    );
    const get = (app: (typeof servers)[number]['app'], url: string, user: string) => async () => {
      const r = await app.inject({ method: 'GET', url, headers: { 'x-grafana-user': user } });
      if (r.statusCode !== 200) throw new Error(`${url}: ${r.statusCode} ${r.body.slice(0, 200)}`);
      return r.rawPayload.length;
    };
    for (const [label, url, user, reps] of [
      ["/units, a light user's 1-day window", `/api/v1/units?${c.day}`, 'v1', c.reps],
      ["/units, u0's whole history", `/api/v1/units?${c.all}`, 'u0', c.small ? 5 : 20],
    ] as const) {
      const [sqlite, postgres] = await inTurns(
        servers.map((s) => get(s.app, url, user)),
        reps,
      );
      console.log(
        `PostgreSQL ${label}: route ${fig(postgres!)} | floor (SQLite, in turns) ${fig(sqlite!)} | ratio ${(postgres!.p50 / sqlite!.p50).toFixed(2)}x (bar: 2x)`,
      );
    }
    await Promise.all(servers.map((s) => s.close()));
    // The one SQLite server again, right before: the copy took long enough for the machine's load to drift.
    const reps = c.small ? 2 : 20;
    const one = await concurrentClients([{ apiRoutesServer: { dir, now } }], c.windowUrl, reps);
    const replica: ServerData = { apiRoutesServer: { dir, now, pgUrl: url } };
    const two = await concurrentClients([replica, replica], c.windowUrl, reps);
    console.log(
      `PostgreSQL, ${CLIENTS} concurrent clients on two API server replicas: ${two.requests} requests, ${two.rps.toFixed(0)} req/s, ` +
        `p50 ${ms(two.p50)}, p99 ${ms(two.p99)} | floor (one SQLite server, measured just before) ${one.rps.toFixed(0)} req/s, ` +
        `p50 ${ms(one.p50)}, p99 ${ms(one.p99)} | throughput ratio ${(two.rps / one.rps).toFixed(2)}x (bar: above 1x)`,
    );
    for (const [message, n] of [...one.errors, ...two.errors])
      console.log(`  FAILED: ${n} requests: ${message}`);
  } finally {
    await pg.stop();
  }
}
