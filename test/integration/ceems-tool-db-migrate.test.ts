// `ceems_tool db migrate` (issue 21): a 100k-unit SQLite database copied into a real PostgreSQL, every
// table checked by row count and checksum; a non-empty target refused without --force; a value that
// changes on the way reported as a mismatch (exit 1); the copied database takes new windows.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Sql } from 'postgres';
import { CeemsDb, DB_FILE, type UnitRecord } from '../../src/api/db/index.js';
import { openPg } from '../../src/api/db/pg/connect.js';
import { PgStore } from '../../src/api/db/pg/store.js';
import { openDatabase } from '../../src/common/sqlite.js';
import { SyntheticManager } from '../fixtures/api/synthetic-cluster.js';
import { type PostgresServer, startPostgres } from '../helpers/postgres.js';
import { runTool } from '../unit/cli/tool.js';

const H = 3600_000;
const T0 = Date.UTC(2024, 4, 6);
const UNITS = 100_000;
let server: PostgresServer;
let dir: string;
const pools: Sql[] = [];

/** 10 windows of 10k units each (plus users, projects, admins, node energy), as the server stores them. */
async function buildSqlite(path: string): Promise<void> {
  const db = CeemsDb.open(path);
  const manager = new SyntheticManager(0, UNITS / 10, 0);
  for (let w = 0; w < 10; w++) {
    const start = T0 + w * H;
    const units: UnitRecord[] = (await manager.fetchUnits(start, start + H)).map((u) => ({
      ...u,
      cluster_id: manager.clusterId,
      resource_manager: manager.manager,
    }));
    const { users, projects } = await manager.fetchUsersProjects();
    db.storeCollection({
      start,
      end: start + H,
      timeZone: 'Europe/Paris',
      units,
      users: users.map((u) => ({ ...u, cluster_id: 'synth', resource_manager: 'slurm' })),
      projects: projects.map((p) => ({ ...p, cluster_id: 'synth', resource_manager: 'slurm' })),
      clusterEnergy: { cluster_id: 'synth', resource_manager: 'slurm', kwh: { total: w / 3 } },
    });
  }
  db.syncAdminUsers('ceems', ['root', 'ceems-int-svc'], '2024-05-06T11:00:00');
  db.close();
}

before(async () => {
  server = await startPostgres({ port: 9405 });
  dir = mkdtempSync(join(tmpdir(), 'ceems-migrate-'));
  await buildSqlite(dir);
});
after(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const resultOf = (stderr: string, table: string) =>
  new RegExp(`^${table}\\s+(\\d+)\\s+(\\d+)\\s+(\\w+)\\s+(\\w+)\\s+(ok|MISMATCH)$`, 'm').exec(stderr);

test('a 100k-unit database is copied and every table checks out; the copy takes new windows', async () => {
  await server.createDatabase('copy');
  const url = server.url('copy');
  const r = await runTool(['db', 'migrate', `--from=${dir}`, `--to=${url}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /every table matches/);
  assert.doesNotMatch(r.stderr, /test@/, 'the password is not printed');
  const units = resultOf(r.stderr, 'units');
  assert.ok(units, r.stderr);
  assert.deepEqual(units.slice(1, 3), [String(UNITS), String(UNITS)]);
  assert.equal(units[3], units[4]);
  for (const t of ['usage', 'daily_usage', 'users', 'projects', 'admin_users', 'cluster_energy'])
    assert.equal(resultOf(r.stderr, t)?.[5], 'ok', `${t}:\n${r.stderr}`);
  assert.equal(resultOf(r.stderr, 'admin_users')?.[1], '2');

  // The identities continue after the copied ids: the next window inserts without a collision.
  const sql = openPg(url);
  pools.push(sql);
  const manager = new SyntheticManager(0, 10, 0);
  const fresh = (await manager.fetchUnits(T0 + 20 * H, T0 + 21 * H)).map((u) => ({
    ...u,
    cluster_id: 'synth',
    resource_manager: 'slurm',
  }));
  await new PgStore(sql).storeCollection({
    start: T0 + 20 * H,
    end: T0 + 21 * H,
    timeZone: 'UTC',
    units: fresh,
  });
  const [max] = await sql`SELECT max(id) AS id, count(*)::int AS n FROM units`;
  assert.deepEqual({ ...max }, { id: UNITS + 10, n: UNITS + 10 });
  const [version] = await sql`SELECT version, dirty FROM schema_migrations`;
  assert.deepEqual({ ...version }, { version: 13, dirty: false });
});

test('a non-empty target is refused unless --force, which replaces its rows', async () => {
  await server.createDatabase('again');
  const url = server.url('again');
  assert.equal((await runTool(['db', 'migrate', `--from=${join(dir, DB_FILE)}`, `--to=${url}`])).code, 0);
  const refused = await runTool(['db', 'migrate', `--from=${dir}`, `--to=${url}`]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /--to: the target database is not empty \(units: 100000 rows.*use --force/);
  const forced = await runTool(['db', 'migrate', `--from=${dir}`, `--to=${url}`, '--force']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(resultOf(forced.stderr, 'units')?.[2], String(UNITS));
});

test('a value that changes on the way is a mismatch (exit 1); a missing source is named', async () => {
  // A blob where the schema says text: PostgreSQL can only store its text form.
  const copy = mkdtempSync(join(tmpdir(), 'ceems-migrate-blob-'));
  try {
    const small = CeemsDb.open(copy);
    small.storeCollection({
      start: T0,
      end: T0 + H,
      timeZone: 'UTC',
      units: [
        { uuid: '1', cluster_id: 'c', resource_manager: 'slurm' },
        { uuid: '2', cluster_id: 'c' },
      ],
    });
    small.close();
    const raw = openDatabase(join(copy, DB_FILE));
    raw.exec("UPDATE units SET name = X'00ff' WHERE uuid = '2'");
    raw.close();
    await server.createDatabase('blob');
    const r = await runTool(['db', 'migrate', `--from=${copy}`, `--to=${server.url('blob')}`]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(resultOf(r.stderr, 'units')?.[5], 'MISMATCH', r.stderr);
    assert.equal(resultOf(r.stderr, 'usage')?.[5], 'ok', r.stderr);
    assert.match(r.stderr, /MISMATCH: the copy differs from the source/);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
  const missing = await runTool([
    'db',
    'migrate',
    '--from=/nonexistent/ceems.db',
    `--to=${server.url('blob')}`,
  ]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /--from: no SQLite database at \/nonexistent\/ceems\.db/);
});
