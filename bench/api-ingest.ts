// API server ingest figures (issue 6): (1) 100k SLURM units from `sacct -P` output → Unit objects →
// one DB window (units, usage, daily_usage upserts), against a baseline of merely splitting the same text
// into fields; (2) TSDB aggregates of 10k units from a fake Prometheus (real API JSON) and their merge
// into existing rows, against a baseline of the same HTTP round trips without the updater.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Fastify from 'fastify';
import { CeemsDb, type CollectionWindow, type UnitRecord } from '../src/api/db/index.js';
import { openPg } from '../src/api/db/pg/connect.js';
import { migratePg } from '../src/api/db/pg/migrations.js';
import { PgStore } from '../src/api/db/pg/store.js';
import { WindowWriter } from '../src/api/db/writer.js';
import { parseSacct } from '../src/api/resource/slurm.js';
import { DEFAULT_QUERIES, TsdbUpdater } from '../src/api/updater/tsdb.js';
import { createLogger } from '../src/common/logger.js';
import { startPostgres } from '../test/helpers/postgres.js';

const FAKE_SACCT = resolve(import.meta.dirname, '../test/fixtures/api-data/bin/sacct');
const T0 = Date.UTC(2024, 4, 6);
const H = 3600_000;

const time = async <T>(fn: () => T | Promise<T>): Promise<[T, number]> => {
  const t = performance.now();
  const v = await fn();
  return [v, performance.now() - t];
};
/** Runs `fn` while timing the event loop; returns its value and the longest stall seen (ms). */
async function stalls<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  await new Promise((r) => setTimeout(r, 20)); // the histogram's timer must be running before fn blocks
  const v = await fn();
  await new Promise((r) => setTimeout(r, 20)); // let the histogram's timer see a stall that ends with fn
  h.disable();
  return [v, h.max / 1e6];
}
const ms = (x: number) => `${x.toFixed(1)} ms`;
const rate = (n: number, t: number) => `${Math.round((n / t) * 1000).toLocaleString('en-US')}/s`;

async function ingest(n: number): Promise<void> {
  // Jobs 0.1 s apart, all overlapping the window [T0 + 1 h, T0 + 2 h].
  const output = execFileSync(
    FAKE_SACCT,
    ['--starttime', '2024-05-06T01:00:00', '--endtime', '2024-05-06T02:00:00'],
    {
      env: {
        ...process.env,
        FAKE_SACCT_JOBS: String(n),
        FAKE_SACCT_T0: String(T0 + H / 2),
        FAKE_SACCT_STEP_S: '0.01',
      },
      encoding: 'utf8',
      maxBuffer: 1024 * 1024 * 1024,
    },
  );
  const [fields, tSplit] = await time(() => output.split('\n').map((l) => l.split('|')));
  const [units, tParse] = await time(() =>
    parseSacct(output, { clusterId: 'bench', timeZone: 'Europe/Paris', start: T0 + H, end: T0 + 2 * H }),
  );
  if (units.length !== n || fields.length < n) throw new Error(`expected ${n} units, parsed ${units.length}`);
  const dir = mkdtempSync(join(tmpdir(), 'ceems-bench-ingest-'));
  try {
    const db = CeemsDb.open(dir);
    const store = (start: number) =>
      db.storeCollection({
        start,
        end: start + H,
        timeZone: 'Europe/Paris',
        units,
      });
    const [, tStore] = await time(() => store(T0 + H));
    // Second window: every row exists, so each upsert merges its metric maps (the steady state).
    const [[, stallDirect], tMerge] = await time(() => stalls(async () => store(T0 + 2 * H)));
    db.close();
    // Third window through the API server's writer thread: how long HTTP handlers would wait meanwhile.
    const writer = new WindowWriter(dir);
    const w = { start: T0 + 3 * H, end: T0 + 4 * H, timeZone: 'Europe/Paris', units };
    await writer.store({ ...w, units: [] }); // thread start-up is not part of a window
    const [[, stallThread], tThread] = await time(() => stalls(() => writer.store(w)));
    await writer.close();
    console.log(`sacct -P text: ${(output.length / 1e6).toFixed(1)} MB, ${n.toLocaleString('en-US')} jobs`);
    console.log(`  baseline split into fields : ${ms(tSplit)}`);
    console.log(
      `  parse into units           : ${ms(tParse)} (${rate(n, tParse)}, ${(tParse / tSplit).toFixed(1)}× baseline)`,
    );
    console.log(
      `  first window DB insert     : ${ms(tStore)} (${rate(n, tStore)}, ${(tStore / tSplit).toFixed(1)}× baseline)`,
    );
    console.log(
      `  next window DB merge       : ${ms(tMerge)} (${rate(n, tMerge)}, ${(tMerge / tSplit).toFixed(1)}× baseline)`,
    );
    console.log(
      `  total parse + insert       : ${ms(tParse + tStore)} for ${n.toLocaleString('en-US')} units`,
    );
    console.log(
      `  merge in writer thread     : ${ms(tThread)} (${(tThread / tMerge).toFixed(2)}× main-thread merge)`,
    );
    console.log(
      `  longest main-thread stall  : ${ms(stallThread)} with the writer thread vs ${ms(stallDirect)} on the main thread (${(stallThread / stallDirect).toFixed(3)}×)`,
    );
    const pg = await postgresIngest((start) => ({ start, end: start + H, timeZone: 'Europe/Paris', units }));
    console.log(`PostgreSQL 15 (local, same units; SQLite's figures above are the floor)`);
    console.log(
      `  first window DB insert     : ${ms(pg.insert)} (${rate(n, pg.insert)}, ${(pg.insert / tStore).toFixed(2)}× SQLite)`,
    );
    console.log(
      `  next window DB merge       : ${ms(pg.merge)} (${rate(n, pg.merge)}, ${(pg.merge / tMerge).toFixed(2)}× SQLite)`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A PostgreSQL port of this project's range for the benchmarks (tests use 9400–9409). */
const BENCH_PG_PORT = 9410;

/** The same two windows (insert, then merge) through PgStore into a throw-away local PostgreSQL. */
async function postgresIngest(
  window: (start: number) => CollectionWindow,
): Promise<{ insert: number; merge: number }> {
  const server = await startPostgres({ port: BENCH_PG_PORT });
  try {
    await server.createDatabase('ingest');
    const sql = openPg(server.url('ingest'));
    try {
      await migratePg(sql);
      const store = new PgStore(sql);
      const [, insert] = await time(() => store.storeCollection(window(T0 + H)));
      const [, merge] = await time(() => store.storeCollection(window(T0 + 2 * H)));
      return { insert, merge };
    } finally {
      await sql.end();
    }
  } finally {
    await server.stop();
  }
}

async function aggregates(n: number): Promise<void> {
  const app = Fastify({ bodyLimit: 64 * 1024 * 1024 });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_r, body, done) =>
    done(null, Object.fromEntries(new URLSearchParams(body as string))),
  );
  app.get('/api/v1/status/config', async () => ({
    status: 'success',
    data: { yaml: 'global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n' },
  }));
  app.get('/api/v1/status/flags', async () => ({
    status: 'success',
    data: { 'query.max-samples': '50000000' },
  }));
  let queries = 0;
  app.post('/api/v1/query', async (req) => {
    queries++;
    const q = (req.body as { query: string }).query;
    const uuids = /uuid=~"([^"]*)"/.exec(q)![1]!.split('|');
    return {
      status: 'success',
      data: {
        resultType: 'vector',
        result: uuids.map((u) => ({
          metric: { uuid: u },
          value: [T0 / 1000, String((Number(u) % 97) + 0.5)],
        })),
      },
    };
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'ceems-bench-tsdb-'));
  try {
    const logger = createLogger({ level: 'error' });
    const updater = new TsdbUpdater(
      { id: 'bench', updater: 'tsdb', web: { url }, extra_config: {} },
      { logger },
    );
    const mkUnits = (): UnitRecord[] =>
      Array.from({ length: n }, (_, i) => ({
        cluster_id: 'bench',
        resource_manager: 'slurm',
        uuid: String(100_000 + i),
        username: `usr${i % 50}`,
        project: `acc${i % 10}`,
        started_at: '2024-05-06T00:00:00+0000',
        started_at_ts: T0,
        ended_at: 'Unknown',
        total_time_seconds: { walltime: 3600, alloc_cputime: 7200, alloc_cpumemtime: 3600, alloc_gputime: 0 },
      }));
    // Warm-up (settings cache, connection pool), then the measured window.
    await updater.update('bench', mkUnits().slice(0, 10), T0, T0 + H);
    queries = 0;
    const units = mkUnits();
    const [, tUpdate] = await time(() => updater.update('bench', units, T0, T0 + H));
    const nQueries = queries;
    // Baseline: the same query round trips (same batches, same concurrency) without the updater.
    const perBatch = Object.values(DEFAULT_QUERIES).reduce((k, subs) => k + Object.keys(subs).length, 0);
    const batches = nQueries / perBatch;
    const perQuery = Math.ceil(n / batches);
    const [, tBaseline] = await time(async () => {
      for (let b = 0; b < batches; b++) {
        const ids = units
          .slice(b * perQuery, (b + 1) * perQuery)
          .map((u) => u.uuid)
          .join('|');
        const body = new URLSearchParams({
          query: `x{uuid=~"${ids}"}`,
          time: String(T0 / 1000 + 3600),
        }).toString();
        await Promise.all(
          Array.from({ length: perBatch }, () =>
            fetch(`${url}/api/v1/query`, {
              method: 'POST',
              headers: { 'content-type': 'application/x-www-form-urlencoded' },
              body,
            }).then((r) => r.json()),
          ),
        );
      }
    });
    const db = CeemsDb.open(dir);
    const store = (start: number, list: UnitRecord[]) =>
      db.storeCollection({ start, end: start + H, timeZone: 'UTC', units: list });
    store(T0 - H, mkUnits());
    const [, tMerge] = await time(() => store(T0, units));
    db.close();
    await updater.close();
    console.log(
      `TSDB aggregates: ${n.toLocaleString('en-US')} units, ${nQueries} instant queries (${perQuery} uuids per batch)`,
    );
    console.log(`  baseline HTTP round trips  : ${ms(tBaseline)}`);
    console.log(
      `  updater (queries + maps)   : ${ms(tUpdate)} (${rate(n, tUpdate)}, ${(tUpdate / tBaseline).toFixed(2)}× baseline)`,
    );
    console.log(
      `  merge into existing rows   : ${ms(tMerge)} (${rate(n, tMerge)}, ${(tMerge / tBaseline).toFixed(2)}× baseline)`,
    );
  } finally {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(small: boolean): Promise<void> {
  await ingest(small ? 2_000 : 100_000);
  await aggregates(small ? 500 : 10_000);
}
