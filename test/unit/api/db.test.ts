import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { addMetricMaps, avgMetricMaps, registerFunctions } from '../../../src/api/db/functions.js';
import { CeemsDb, openReader, type UnitRecord } from '../../../src/api/db/index.js';
import { MIGRATIONS, migrate, SCHEMA_VERSION } from '../../../src/api/db/migrations.js';
import { PROVENANCE_FIELDS, SAMPLING_FIELD } from '../../../src/api/models.js';
import { openDatabase, pragma } from '../../../src/common/sqlite.js';
import { plain } from '../../helpers/rows.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'ceems-db-'));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const T0 = Date.UTC(2024, 4, 6, 10, 0, 0);
const H = 3600_000;

function unit(over: Partial<UnitRecord> = {}): UnitRecord {
  return {
    cluster_id: 'hpc-0',
    resource_manager: 'slurm',
    uuid: '100',
    name: 'job',
    project: 'acc1',
    groupname: 'grp',
    username: 'alice',
    created_at: '2024-05-06T09:00:00+0000',
    started_at: '2024-05-06T10:00:00+0000',
    ended_at: 'Unknown',
    created_at_ts: T0 - H,
    started_at_ts: T0,
    ended_at_ts: 0,
    elapsed: '01:00:00',
    state: 'RUNNING',
    allocation: { cpus: 2 },
    tags: { qos: 'normal' },
    total_time_seconds: { walltime: 3600, alloc_cputime: 7200 },
    avg_cpu_usage: { global: 50 },
    total_cpu_energy_usage_kwh: { total: 1.5 },
    ...over,
  };
}

describe('SQL functions', () => {
  test('add and avg metric maps follow §9.3', () => {
    assert.deepEqual(addMetricMaps({ a: 1, b: 2 }, { b: 3, c: 4 }), { a: 1, b: 5, c: 4 });
    assert.deepEqual(avgMetricMaps({ a: 10, b: 1 }, { a: 20, c: 5 }, 1, 3), { a: 17.5, b: 1, c: 5 });
    // zero total weight: weighted sum (both weights 0 → 0)
    assert.deepEqual(avgMetricMaps({ a: 10 }, { a: 20 }, 0, 0), { a: 0 });
  });

  test('registered on a connection, aggregates included, bad JSON counts as empty', () => {
    const db = openDatabase(':memory:');
    registerFunctions(db);
    const r = db
      .prepare(
        `SELECT add_metric_map('{"a":1}', 'garbage') AS s, avg_metric_map('{"a":1}', '{"a":3}', 1, 1) AS a`,
      )
      .get() as { s: string; a: string };
    assert.deepEqual(JSON.parse(r.s), { a: 1 });
    assert.deepEqual(JSON.parse(r.a), { a: 2 });
    const empty = db
      .prepare(
        `SELECT add_metric_map('{"a":1.5}', '{}') AS x, add_metric_map('{}', '{"b":2}') AS y,
                avg_metric_map('{}', '{"b":2}', 0, 5) AS z, avg_metric_map('{"c":3}', '{}', 5, 0) AS w`,
      )
      .get();
    assert.deepEqual(plain(empty), { x: '{"a":1.5}', y: '{"b":2}', z: '{"b":2}', w: '{"c":3}' });
    db.exec('CREATE TABLE t (m text, w real); INSERT INTO t VALUES (\'{"x":1}\', 1), (\'{"x":4,"y":2}\', 3)');
    const agg = db
      .prepare('SELECT sum_metric_map_agg(m) AS s, avg_metric_map_agg(m, w) AS a FROM t')
      .get() as { s: string; a: string };
    assert.deepEqual(JSON.parse(agg.s), { x: 5, y: 2 });
    assert.deepEqual(JSON.parse(agg.a), { x: 3.25, y: 2 });
  });
});

/** Undoes migrations 11 to 13 on a file, to stand for a database written by an older version. */
function dropProvenanceColumns(db: ReturnType<typeof openDatabase>): void {
  db.exec('DROP TABLE cluster_energy');
  for (const table of ['units', 'usage', 'daily_usage'])
    for (const c of [...PROVENANCE_FIELDS, SAMPLING_FIELD]) db.exec(`ALTER TABLE ${table} DROP COLUMN ${c}`);
}

describe('migrations', () => {
  test('fresh DB reaches version 13 with the §9.2 tables and indexes, WAL, mode 0640', () => {
    const dir = tmp();
    const db = CeemsDb.open(dir);
    assert.equal(SCHEMA_VERSION, 13);
    const v = db.db.prepare('SELECT version, dirty FROM schema_migrations').all();
    assert.deepEqual(plain(v), [{ version: 13, dirty: 0 }]);
    const names = (
      db.db.prepare("SELECT name FROM sqlite_master WHERE type IN ('table','index')").all() as {
        name: string;
      }[]
    ).map((r) => r.name);
    for (const n of [
      'units',
      'usage',
      'daily_usage',
      'users',
      'projects',
      'admin_users',
      'idx_cluster_id_usr_uuid',
      'uq_cluster_id_uuid_start',
      'idx_cluster_id_project_user_ended',
      'uq_cluster_id_project_usr',
      'uq_cluster_id_project_usr_lastupdated',
      'uq_cluster_id_user',
      'uq_cluster_id_project',
      'uq_cluster_id_admin_user',
      'version_unique',
      'idx_units_username_ended',
      'idx_units_last_updated',
      'idx_usage_cluster_project',
      'idx_daily_usage_cluster_project_updated',
      'cluster_energy',
      'uq_cluster_energy_day',
    ])
      assert.ok(names.includes(n), n);
    const cols = (db.db.prepare('PRAGMA table_info(units)').all() as { name: string }[]).map((c) => c.name);
    assert.ok(cols.includes('total_egress_stats') && !cols.includes('total_outgress_stats'));
    assert.equal(pragma(db.db, 'journal_mode'), 'wal');
    assert.equal(statSync(join(dir, 'ceems.db')).mode & 0o777, 0o640);
    db.close();
    // Re-opening is a no-op.
    CeemsDb.open(dir).close();
  });

  test('an old database at version 5 is upgraded, admin users carried over', () => {
    const db = openDatabase(':memory:');
    const v1 = MIGRATIONS.find((m) => m.version === 1)!;
    db.exec(v1.sql);
    db.exec(`CREATE TABLE schema_migrations (version uint64, dirty bool);
      INSERT INTO schema_migrations VALUES (5, 0);
      INSERT INTO admin_users (source, users, last_updated_at) VALUES ('grafana', '["g1","g2"]', 'x');
      INSERT INTO units (cluster_id, uuid, total_outgress_stats) VALUES ('c', 'u', '{"bytes_total":5}')`);
    migrate(db);
    assert.deepEqual(
      plain(db.prepare('SELECT cluster_id, name, tags FROM admin_users ORDER BY name').all()),
      [
        { cluster_id: 'all', name: 'g1', tags: '["grafana"]' },
        { cluster_id: 'all', name: 'g2', tags: '["grafana"]' },
      ],
    );
    assert.deepEqual(plain(db.prepare('SELECT total_egress_stats AS e FROM units').get()), {
      e: '{"bytes_total":5}',
    });
  });

  test('a version 9 database with data gets the indexes of migration 10 and their statistics at once', () => {
    const dir = tmp();
    const db = CeemsDb.open(dir);
    db.upsertUnits(
      Array.from({ length: 50 }, (_, i) => unit({ uuid: String(i), username: `u${i % 5}` })),
      '2024-05-06T11:00:00',
    );
    db.close();
    // The same file as version 9 left it: no index of migration 10, never analyzed.
    const v9 = openDatabase(join(dir, 'ceems.db'));
    v9.exec(`DROP INDEX idx_units_username_ended; DROP INDEX idx_units_last_updated;
      DROP INDEX idx_usage_cluster_project;
      DROP INDEX idx_daily_usage_cluster_project_updated; DROP TABLE sqlite_stat1;
      UPDATE schema_migrations SET version = 9`);
    dropProvenanceColumns(v9);
    v9.close();
    const migrated = CeemsDb.open(dir);
    assert.deepEqual(plain(migrated.db.prepare('SELECT version FROM schema_migrations').all()), [
      { version: 13 },
    ]);
    const stat = migrated.db
      .prepare("SELECT stat FROM sqlite_stat1 WHERE idx = 'idx_units_username_ended'")
      .get() as { stat: string };
    assert.equal(stat.stat, '50 10 10', '50 rows, 10 per user (all running: one ended_at)');
    assert.equal(migrated.optimize(), false, 'nothing left to analyze');
    migrated.close();
  });

  test('a version 10 database keeps its rows and gets the provenance columns, empty, summed from then on', () => {
    const dir = tmp();
    const db = CeemsDb.open(dir);
    db.storeCollection({ start: T0, end: T0 + H, timeZone: 'UTC', units: [unit()] });
    db.close();
    // The same file as version 10 left it: no provenance column.
    const v10 = openDatabase(join(dir, 'ceems.db'));
    dropProvenanceColumns(v10);
    v10.exec('UPDATE schema_migrations SET version = 10');
    v10.close();
    const migrated = CeemsDb.open(dir);
    const row = () =>
      plain(
        migrated.db
          .prepare(
            'SELECT u.total_cpu_energy_usage_kwh AS e, u.total_cpu_energy_by_source_kwh AS s, g.total_cpu_energy_by_source_kwh AS gs FROM units u, usage g',
          )
          .get(),
      );
    assert.deepEqual(row(), { e: '{"total":1.5}', s: '{}', gs: '{}' });
    const next = { total_cpu_energy_by_source_kwh: { estimated: 0.5, rapl: 1 } };
    migrated.storeCollection({ start: T0 + H, end: T0 + 2 * H, timeZone: 'UTC', units: [unit(next)] });
    migrated.storeCollection({ start: T0 + 2 * H, end: T0 + 3 * H, timeZone: 'UTC', units: [unit(next)] });
    assert.deepEqual(row(), {
      e: '{"total":4.5}',
      s: '{"estimated":1,"rapl":2}',
      gs: '{"estimated":1,"rapl":2}',
    });
    migrated.close();
  });

  test('optimize analyzes a table again after it grew 10-fold, and says so; close runs it', () => {
    const db = CeemsDb.open(tmp());
    const many = (n: number, from: number) =>
      Array.from({ length: n }, (_, i) => unit({ uuid: String(from + i), username: `u${i % 7}` }));
    db.upsertUnits(many(20, 0), '2024-05-06T11:00:00');
    assert.equal(db.optimize(), true, 'never analyzed');
    assert.equal(db.optimize(), false);
    db.upsertUnits(many(20, 100), '2024-05-06T12:00:00');
    assert.equal(db.optimize(), false, 'twice as many rows: the statistics still hold');
    db.upsertUnits(many(400, 1000), '2024-05-06T13:00:00');
    const rows = () =>
      (
        db.db.prepare("SELECT stat FROM sqlite_stat1 WHERE idx = 'idx_units_username_ended'").get() as {
          stat: string;
        }
      ).stat;
    assert.match(rows(), /^20 /);
    assert.equal(db.optimize(), true, '22-fold');
    assert.match(rows(), /^440 /);
    db.upsertUnits(many(5000, 10_000), '2024-05-06T14:00:00');
    db.close();
    const reopened = openDatabase(join(db.path, '..', 'ceems.db'));
    assert.match(
      (
        reopened.prepare("SELECT stat FROM sqlite_stat1 WHERE idx = 'idx_units_username_ended'").get() as {
          stat: string;
        }
      ).stat,
      /^5440 /,
      'analyzed by close',
    );
    reopened.close();
  });

  test('a dirty or newer schema is refused with a clear error', () => {
    const db = openDatabase(':memory:');
    db.exec(
      'CREATE TABLE schema_migrations (version uint64, dirty bool); INSERT INTO schema_migrations VALUES (7, 1)',
    );
    assert.throws(() => migrate(db), /dirty at version 7/);
    db.exec(`UPDATE schema_migrations SET version = ${SCHEMA_VERSION + 1}, dirty = 0`);
    assert.throws(() => migrate(db), new RegExp(`version ${SCHEMA_VERSION + 1} is newer`));
  });
});

describe('upserts', () => {
  test('units merge metric maps across windows and keep identity fields', () => {
    const db = CeemsDb.open(tmp());
    db.upsertUnits([unit()], '2024-05-06T11:00:00');
    db.upsertUnits(
      [
        unit({
          name: 'renamed',
          ended_at: '2024-05-06T12:00:00+0000',
          ended_at_ts: T0 + 2 * H,
          state: 'COMPLETED',
          total_time_seconds: { walltime: 3600, alloc_cputime: 21600 },
          avg_cpu_usage: { global: 100 },
          total_cpu_energy_usage_kwh: { total: 0.5 },
        }),
      ],
      '2024-05-06T12:00:00',
    );
    const r = db.db.prepare('SELECT * FROM units').get() as Record<string, unknown>;
    assert.equal(r.name, 'job');
    assert.equal(r.state, 'COMPLETED');
    assert.equal(r.ended_at_ts, T0 + 2 * H);
    // ended_at is set apart from the upsert (only when it changes): the row and its index entries follow
    assert.equal(r.ended_at, '2024-05-06T12:00:00+0000');
    const byIndex = db.db
      .prepare(
        'SELECT uuid FROM units INDEXED BY idx_units_username_ended WHERE username = ? AND ended_at > ?',
      )
      .all('alice', '2024-05-06T11');
    assert.deepEqual(plain(byIndex), [{ uuid: '100' }]);
    db.upsertUnits(
      [unit({ ended_at: '2024-05-06T12:00:00+0000', state: 'COMPLETED' })],
      '2024-05-06T13:00:00',
    );
    assert.equal(
      (db.db.prepare('SELECT ended_at FROM units').get() as { ended_at: string }).ended_at,
      r.ended_at,
    );
    assert.equal(r.num_updates, 2);
    assert.equal(r.last_updated_at, '2024-05-06T12:00:00');
    assert.deepEqual(JSON.parse(r.total_time_seconds as string), { walltime: 7200, alloc_cputime: 28800 });
    // (50·7200 + 100·21600) / 28800
    assert.deepEqual(JSON.parse(r.avg_cpu_usage as string), { global: 87.5 });
    assert.deepEqual(JSON.parse(r.total_cpu_energy_usage_kwh as string), { total: 2 });
  });

  test('metric maps are stored with their keys in order, merged ones too', () => {
    const db = CeemsDb.open(tmp());
    const text = (table: string, column: string) =>
      (db.db.prepare(`SELECT ${column} AS t FROM ${table}`).get() as { t: string }).t;
    const maps = {
      total_time_seconds: { walltime: 3600, alloc_cputime: 7200, alloc_gputime: 0 },
      avg_cpu_usage: { z: 1, a: 2 },
      total_io_read_stats: { nested: { b: 1, a: 2 }, a: 1 } as never,
    };
    db.storeCollection({ start: T0, end: T0 + H, timeZone: 'UTC', units: [unit(maps)] });
    assert.equal(
      text('units', 'total_time_seconds'),
      '{"alloc_cputime":7200,"alloc_gputime":0,"walltime":3600}',
    );
    assert.equal(text('units', 'avg_cpu_usage'), '{"a":2,"z":1}');
    assert.equal(text('units', 'total_io_read_stats'), '{"nested":{"b":1,"a":2},"a":1}', 'nested: as it was');
    db.storeCollection({
      start: T0 + H,
      end: T0 + 2 * H,
      timeZone: 'UTC',
      units: [unit({ total_time_seconds: { walltime: 60, new_key: 1 }, avg_cpu_usage: { y: 3 } })],
    });
    assert.equal(
      text('units', 'total_time_seconds'),
      '{"alloc_cputime":7200,"alloc_gputime":0,"new_key":1,"walltime":3660}',
    );
    assert.equal(text('units', 'avg_cpu_usage'), '{"a":2,"y":3,"z":1}');
    assert.equal(text('usage', 'avg_cpu_usage'), '{"a":2,"y":3,"z":1}');
  });

  test('usage and daily usage: num_units counts each unit once, when first stored; daily bucket is local midnight', () => {
    const db = CeemsDb.open(tmp());
    const tz = 'Europe/Paris';
    const window = (start: number, units: UnitRecord[]) =>
      db.storeCollection({ start, end: start + H, timeZone: tz, units });
    const units = db.db.prepare('SELECT num_units, num_updates FROM usage WHERE username = ?');
    // window 1: new unit
    window(T0, [unit()]);
    // window 2: same unit again: metrics merged, not counted again
    window(T0 + H, [unit({ avg_cpu_usage: { global: 100 } })]);
    const u = db.db.prepare('SELECT * FROM usage').get() as Record<string, unknown>;
    assert.equal(u.num_units, 1);
    assert.equal(u.num_updates, 2);
    assert.equal(u.last_updated_at, '2024-05-06T14:00:00');
    assert.deepEqual(JSON.parse(u.avg_cpu_usage as string), { global: 75 });
    assert.deepEqual(JSON.parse(u.total_cpu_energy_usage_kwh as string), { total: 3 });
    const d = db.db.prepare('SELECT last_updated_at, num_units FROM daily_usage').all();
    assert.deepEqual(plain(d), [{ last_updated_at: '2024-05-06T00:00:00', num_units: 1 }]);
    assert.equal(db.lastUpdatedAt(), '2024-05-06T14:00:00');
    // window 3: a unit that started two windows ago but that the resource manager reports only now
    // (accounting lag) still counts, once; listed twice in one window it counts once too.
    const late = unit({ uuid: '101', started_at_ts: T0 - H });
    window(T0 + 2 * H, [late, { ...late }]);
    assert.deepEqual(plain(units.get('alice')), { num_units: 2, num_updates: 4 });
    // A requeued unit (same uuid, new start) is a new row of `units`, so a new unit.
    window(T0 + 3 * H, [unit({ uuid: '101', started_at: '2024-05-06T12:30:00+0000' })]);
    assert.deepEqual(plain(units.get('alice')), { num_units: 3, num_updates: 5 });
    assert.deepEqual(plain(db.db.prepare('SELECT COUNT(*) AS n FROM units').get()), { n: 3 });
  });

  test('users/projects replaced on conflict; admin users re-synced per source (D-API-2)', () => {
    const db = CeemsDb.open(tmp());
    db.upsertUsers([{ cluster_id: 'c', resource_manager: 'slurm', name: 'alice', projects: ['p1'] }], 't1');
    db.upsertUsers([{ cluster_id: 'c', resource_manager: 'slurm', name: 'alice', projects: ['p2'] }], 't2');
    assert.deepEqual(plain(db.db.prepare('SELECT name, projects, last_updated_at FROM users').all()), [
      { name: 'alice', projects: '["p2"]', last_updated_at: 't2' },
    ]);
    db.upsertProjects([{ cluster_id: 'c', resource_manager: 'slurm', name: 'p1', users: ['a', 'b'] }], 't');
    assert.deepEqual(plain(db.db.prepare('SELECT name, users FROM projects').all()), [
      { name: 'p1', users: '["a","b"]' },
    ]);

    db.syncAdminUsers('ceems', ['root', 'ceems-int-svc'], 't');
    db.syncAdminUsers('grafana', ['g1', 'g2'], 't');
    db.syncAdminUsers('grafana', ['g2'], 't');
    const rows = db.db.prepare('SELECT cluster_id, name, tags FROM admin_users ORDER BY name').all();
    assert.deepEqual(plain(rows), [
      { cluster_id: 'all', name: 'ceems-int-svc', tags: '["ceems"]' },
      { cluster_id: 'all', name: 'g2', tags: '["grafana"]' },
      { cluster_id: 'all', name: 'root', tags: '["ceems"]' },
    ]);
  });

  test('storeCollection writes everything in one transaction; a failure leaves nothing behind', () => {
    const dir = tmp();
    const db = CeemsDb.open(dir);
    const good = unit();
    const bad = unit({ uuid: '200', allocation: { big: 1n } as never });
    assert.throws(() => db.storeCollection({ start: T0 - H, end: T0, timeZone: 'UTC', units: [good, bad] }));
    const reader = openReader(dir);
    assert.deepEqual(plain(reader.prepare('SELECT COUNT(*) AS n FROM units').get()), { n: 0 });
    assert.deepEqual(plain(reader.prepare('SELECT COUNT(*) AS n FROM usage').get()), { n: 0 });
    db.storeCollection({
      start: T0 - H,
      end: T0,
      timeZone: 'UTC',
      units: [good],
      users: [{ cluster_id: 'hpc-0', resource_manager: 'slurm', name: 'alice', projects: ['acc1'] }],
      projects: [{ cluster_id: 'hpc-0', resource_manager: 'slurm', name: 'acc1', users: ['alice'] }],
    });
    for (const t of ['units', 'usage', 'daily_usage', 'users', 'projects'])
      assert.deepEqual(plain(reader.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get()), { n: 1 }, t);
    assert.throws(() => reader.exec('DELETE FROM units'), /readonly/);
    reader.close();
  });

  test('retention purge deletes old finished units and usage, keeps running ones', () => {
    const db = CeemsDb.open(tmp());
    db.upsertUnits(
      [
        unit({ uuid: 'old', ended_at: '2000-01-01T00:00:00+0000', ended_at_ts: 946684800000 }),
        unit({ uuid: 'run', started_at: '2000-01-01T00:00:00+0000' }),
      ],
      '2000-01-01T00:00:00',
    );
    db.upsertUsage([unit()], { end: 946684800000, timeZone: 'UTC' }, new Set());
    assert.deepEqual(db.purgeExpired(30), { units: 1, usage: 1 });
    assert.deepEqual(plain(db.db.prepare('SELECT uuid FROM units').all()), [{ uuid: 'run' }]);
    assert.deepEqual(plain(db.db.prepare('SELECT COUNT(*) AS n FROM daily_usage').get()), { n: 1 });
  });

  test('online backup lands in the backup directory and is a readable copy', async () => {
    const dir = tmp();
    const backups = tmp();
    const db = CeemsDb.open(dir);
    db.upsertUnits([unit()], 't');
    const path = await db.backup(backups, '202405061200', () => {});
    assert.equal(path, join(backups, 'ceems-202405061200.db'));
    const copy = openDatabase(path, { readOnly: true });
    assert.deepEqual(plain(copy.prepare('SELECT uuid FROM units').all()), [{ uuid: '100' }]);
    copy.close();
    db.close();
  });

  test('backup into another filesystem is copied instead of renamed', async () => {
    const other = mkdtempSync('/dev/shm/ceems-bk-');
    dirs.push(other);
    assert.notEqual(statSync(other).dev, statSync(tmpdir()).dev, 'needs /dev/shm on another filesystem');
    const dir = tmp();
    const db = CeemsDb.open(dir);
    db.upsertUnits([unit()], 't');
    const path = await db.backup(other, '202405061300', () => {});
    const copy = openDatabase(path, { readOnly: true });
    assert.deepEqual(plain(copy.prepare('SELECT uuid FROM units').all()), [{ uuid: '100' }]);
    copy.close();
    assert.ok(!existsSync(join(dir, 'ceems-202405061300.db')), 'temporary copy left behind');
    db.close();
  });
});
