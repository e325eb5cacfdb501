// PgStore (src/api/db/pg/store.ts) against CeemsDb (SQLite): the same windows stored in both leave the
// same rows, column for column, byte for byte; admin sync, purge and the resume times agree too.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Sql } from 'postgres';
import { CeemsDb, type CollectionWindow, type UnitRecord } from '../../../src/api/db/index.js';
import { openPg } from '../../../src/api/db/pg/connect.js';
import { migratePg } from '../../../src/api/db/pg/migrations.js';
import { PgStore } from '../../../src/api/db/pg/store.js';
import { type PostgresServer, startPostgres } from '../../helpers/postgres.js';

const TABLES = ['units', 'usage', 'daily_usage', 'users', 'projects', 'admin_users', 'cluster_energy'];

let server: PostgresServer;
const pools: Sql[] = [];
const dirs: string[] = [];

before(async () => {
  server = await startPostgres({ port: 9402 });
});
after(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await server?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function backends(name: string): Promise<{ lite: CeemsDb; pg: PgStore; sql: Sql }> {
  await server.createDatabase(name);
  const sql = openPg(server.url(name));
  pools.push(sql);
  await migratePg(sql);
  const dir = mkdtempSync(join(tmpdir(), 'ceems-pgstore-'));
  dirs.push(dir);
  return { lite: CeemsDb.open(dir), pg: new PgStore(sql), sql };
}

async function assertSameTables(lite: CeemsDb, sql: Sql): Promise<void> {
  for (const t of TABLES) {
    const want = lite.db
      .prepare(`SELECT * FROM ${t} ORDER BY id`)
      .all()
      .map((r) => ({ ...r }));
    const got = (await sql.unsafe(`SELECT * FROM ${t} ORDER BY id`)).map((r) => ({ ...r }));
    assert.equal(got.length, want.length, `${t}: row count`);
    for (let i = 0; i < want.length; i++) assert.deepEqual(got[i], want[i], `${t}: row ${i}`);
  }
}

const T0 = Date.UTC(2024, 4, 6, 0, 0, 0);
const H = 3600_000;

/** A unit of the window ending at `end`: running ones come back every window with that window's share. */
function unit(i: number, end: number, opts: { ended?: boolean; cluster?: string } = {}): UnitRecord {
  const secs = 3600;
  return {
    cluster_id: opts.cluster ?? 'c0',
    resource_manager: 'slurm',
    uuid: String(i),
    name: `job${i}`,
    project: `acc${i % 3}`,
    groupname: 'grp',
    username: `usr${i % 5}`,
    created_at: '2024-05-06T00:00:00+0000',
    started_at: '2024-05-06T00:00:00+0000',
    ended_at: opts.ended ? new Date(end).toISOString() : 'Unknown',
    created_at_ts: T0,
    started_at_ts: T0,
    ended_at_ts: opts.ended ? end : 0,
    elapsed: '01:00:00',
    state: opts.ended ? 'COMPLETED' : 'RUNNING',
    allocation: { cpus: 2 + (i % 4), mem: '4G', nodes: ['n1'] },
    tags: { qos: 'normal', i },
    total_time_seconds: {
      walltime: secs,
      alloc_cputime: secs * (1 + (i % 3)),
      alloc_gputime: i % 2 ? 0 : secs,
    },
    avg_cpu_usage: { usage: (i * 7.3 + end / H) % 100 },
    avg_gpu_usage: i % 2 ? {} : { 'gpu-0': (i * 1.7) % 100, 'gpu-1': 0.1 * i },
    total_cpu_energy_usage_kwh: { total: 0.1 * (i % 7) + 1 / 3 },
    total_cpu_emissions_gms: { rte: 0.2 * i, owid: i / 7 },
    avg_sample_interval_seconds: { scrape: 15 + (i % 2) },
    total_cpu_energy_by_source_kwh: { rapl: 0.1 * (i % 7) },
  };
}

function window(n: number, end: number, first: number): CollectionWindow {
  const units = Array.from({ length: n }, (_, k) => unit(first + k, end, { ended: (first + k) % 4 === 0 }));
  // listed twice in one window (a resource manager repeating a row), and one without a uuid
  units.push({ ...unit(first + 1, end), avg_cpu_usage: { usage: 50 } }, { uuid: '' });
  units.push(unit(first, end, { cluster: 'c1' }));
  return {
    start: end - H,
    end,
    timeZone: 'Europe/Paris',
    units,
    users: [
      { cluster_id: 'c0', resource_manager: 'slurm', name: 'usr0', projects: ['acc0'] },
      { cluster_id: 'c0', resource_manager: 'slurm', name: 'usr1', projects: ['acc1'] },
      { cluster_id: 'c0', resource_manager: 'slurm', name: 'usr0', projects: ['acc0', 'acc2'], uid: '1000' },
    ],
    projects: [{ cluster_id: 'c0', resource_manager: 'slurm', name: 'acc0', users: ['usr0'] }],
    clusterEnergy: { cluster_id: 'c0', resource_manager: 'slurm', kwh: { total: end / H / 1000 } },
  };
}

test('windows stored in PostgreSQL leave the rows SQLite does, byte for byte', async () => {
  const { lite, pg, sql } = await backends('same_rows');
  // overlapping unit ranges: most units run over several windows, some appear late
  const plan = [
    [40, 0],
    [40, 10],
    [60, 5],
    [10, 70],
    [40, 0],
  ] as const;
  for (let i = 0; i < plan.length; i++) {
    const [n, first] = plan[i]!;
    const w = window(n, T0 + (i + 1) * H, first);
    lite.storeCollection(w);
    await pg.storeCollection(w);
  }
  lite.syncAdminUsers('ceems', ['root', 'ceems-int-svc', 'root'], '2024-05-06T11:00:00');
  await pg.syncAdminUsers('ceems', ['root', 'ceems-int-svc', 'root'], '2024-05-06T11:00:00');
  lite.syncAdminUsers('grafana', ['g1', 'g2'], '2024-05-06T11:00:00');
  await pg.syncAdminUsers('grafana', ['g1', 'g2'], '2024-05-06T11:00:00');
  lite.syncAdminUsers('grafana', ['g2'], '2024-05-06T12:00:00');
  await pg.syncAdminUsers('grafana', ['g2'], '2024-05-06T12:00:00');
  await assertSameTables(lite, sql);
  assert.equal(await pg.lastUpdatedAt(), lite.lastUpdatedAt());
  assert.equal(await pg.clusterLastUpdatedAt('c1'), lite.clusterLastUpdatedAt('c1'));
  assert.equal(await pg.clusterLastUpdatedAt('nope'), undefined);
  const [counts] =
    await sql`SELECT (SELECT count(*) FROM units) AS units, (SELECT sum(num_units)::bigint FROM usage) AS counted`;
  assert.equal(counts!.units, counts!.counted, 'every unit counted once in usage');
  lite.close();
});

test('an empty database has no resume time; the retention purge deletes what SQLite deletes', async () => {
  const { lite, pg, sql } = await backends('purge');
  assert.equal(await pg.lastUpdatedAt(), undefined);
  const recent = Date.now() - 2 * 86_400_000;
  const old = Date.now() - 40 * 86_400_000;
  for (const end of [old, recent]) {
    const w = window(8, end, 0);
    w.timeZone = 'UTC';
    lite.storeCollection(w);
    await pg.storeCollection(w);
  }
  // the units ended in the old window keep their old ended_at; the running ones ('Unknown') stay
  assert.deepEqual(await pg.purgeExpired(30), lite.purgeExpired(30));
  await assertSameTables(lite, sql);
  lite.close();
});

test('a failing window leaves nothing behind (one transaction)', async () => {
  const { pg, sql } = await backends('atomic');
  const w = window(20, T0 + H, 0);
  // a project list that cannot be stored as JSON text fails the window after its units were written
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  w.projects = [{ cluster_id: 'c0', resource_manager: 'slurm', name: 'x', users: [], tags: cyclic as never }];
  await assert.rejects(pg.storeCollection(w), /circular/i);
  for (const t of ['units', 'usage', 'daily_usage', 'users']) {
    const [r] = await sql.unsafe(`SELECT count(*)::int AS n FROM ${t}`);
    assert.equal(r!.n, 0, t);
  }
});

test('odd stored maps merge as in SQLite: text written by hand, values that overflow to Infinity', async () => {
  const { lite, pg, sql } = await backends('odd_maps');
  const huge = (i: number, end: number): UnitRecord => ({
    ...unit(i, end),
    total_io_read_stats: { bytes: 1.5e308, requests: 1 },
    total_time_seconds: { walltime: 1e308, alloc_cputime: 1 },
    total_cpu_energy_usage_kwh: {},
  });
  const windows = [0, 1, 2, 3].map((k) => ({
    start: T0 + k * H,
    end: T0 + (k + 1) * H,
    timeZone: 'UTC',
    // 1, 16 and 31 share a usage row: their sum overflows within one window
    units: [1, 6, 16, 31].map((i) => huge(i, T0 + (k + 1) * H)).concat(unit(11, T0 + (k + 1) * H)),
  }));
  lite.storeCollection(windows[0]!);
  await pg.storeCollection(windows[0]!);
  // rows an operator (or an older version) wrote: spaces, unsorted keys, strings, nested values, not JSON
  const odd = {
    avg_cpu_usage: '{"usage": "12.5", "b": [1], "a": 3}',
    total_cpu_emissions_gms: 'not json',
    total_time_seconds: '{"walltime": "7200", "alloc_cputime": true}',
    total_gpu_energy_usage_kwh: '{ }',
  };
  for (const [col, text] of Object.entries(odd)) {
    lite.db.prepare(`UPDATE usage SET ${col} = ?`).run(text);
    lite.db.prepare(`UPDATE units SET ${col} = ? WHERE uuid = '1'`).run(text);
    await sql.unsafe(`UPDATE usage SET ${col} = $1`, [text]);
    await sql.unsafe(`UPDATE units SET ${col} = $1 WHERE uuid = '1'`, [text]);
  }
  for (const w of windows.slice(1)) {
    lite.storeCollection(w);
    await pg.storeCollection(w);
  }
  await assertSameTables(lite, sql);
  lite.close();
});
