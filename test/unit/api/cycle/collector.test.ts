import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  Collector,
  type CollectorCluster,
  parseUpdateFrom,
  windows,
} from '../../../../src/api/cycle/index.js';
import { CeemsDb, type UnitRecord } from '../../../../src/api/db/index.js';
import type { Unit } from '../../../../src/api/models.js';
import type { ResourceManager, UsersProjects } from '../../../../src/api/resource/types.js';
import type { Updater } from '../../../../src/api/updater/types.js';
import { createLogger } from '../../../../src/common/logger.js';
import { plain } from '../../../helpers/rows.js';

const logger = createLogger({ level: 'silent' });
const H = 3600_000;
const T0 = Date.UTC(2024, 4, 6, 0, 0, 0);
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const newDb = () => {
  const d = mkdtempSync(join(tmpdir(), 'ceems-cycle-'));
  dirs.push(d);
  return { dir: d, db: CeemsDb.open(d) };
};

/** A manager with one long-running unit per cluster whose window share is the window length. */
class FakeManager implements ResourceManager {
  readonly manager = 'slurm';
  calls: Array<[number, number]> = [];
  failNext = 0;
  gate: Promise<void> | undefined;
  constructor(readonly clusterId: string) {}
  async fetchUnits(start: number, end: number): Promise<Unit[]> {
    this.calls.push([start, end]);
    await this.gate;
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error(`${this.clusterId} is down`);
    }
    const secs = (end - start) / 1000;
    return [
      {
        uuid: `${this.clusterId}-job`,
        project: 'acc',
        username: 'usr',
        started_at: '2024-05-06T00:00:00+0000',
        started_at_ts: T0 - 1000,
        ended_at: 'Unknown',
        ended_at_ts: 0,
        total_time_seconds: { walltime: secs, alloc_cputime: 2 * secs },
      },
    ];
  }
  async fetchUsersProjects(): Promise<UsersProjects> {
    return {
      users: [{ cluster_id: '', name: 'usr', projects: ['acc'] }],
      projects: [{ cluster_id: '', resource_manager: '', name: 'acc', users: ['usr'] }],
    };
  }
  async close() {}
}

function collector(db: CeemsDb, clusters: CollectorCluster[], clock: { now: number }) {
  return new Collector({
    db,
    logger,
    clusters,
    timeZone: 'UTC',
    updateIntervalMs: 15 * 60_000,
    maxUpdateIntervalMs: H,
    updateFrom: '2024-05-06',
    windowPauseMs: 0,
    now: () => clock.now,
  });
}

const walltime = (db: CeemsDb, table: 'units' | 'usage', cluster: string) =>
  (
    db.db.prepare(`SELECT total_time_seconds AS t FROM ${table} WHERE cluster_id = ?`).all(cluster) as Array<{
      t: string;
    }>
  ).map((r) => JSON.parse(r.t).walltime);

describe('collection windows', () => {
  it('one window below max_update_interval, else consecutive chunks up to now', () => {
    assert.deepEqual(windows(0, 30, 60), [[0, 30]]);
    assert.deepEqual(windows(0, 150, 60), [
      [0, 60],
      [60, 120],
      [120, 150],
    ]);
    assert.deepEqual(windows(10, 10, 60), []);
  });

  it('update_from values', () => {
    const now = Date.UTC(2024, 4, 6, 15, 30);
    assert.equal(parseUpdateFrom('', 'Europe/Paris', now), Date.UTC(2024, 4, 5, 22));
    assert.equal(parseUpdateFrom('today', 'UTC', now), Date.UTC(2024, 4, 6));
    assert.equal(parseUpdateFrom('2024-05-01T10:20', 'UTC', now), Date.UTC(2024, 4, 1, 10, 20));
    assert.throws(() => parseUpdateFrom('yesterday', 'UTC', now), /invalid data.update_from 'yesterday'/);
  });
});

describe('collector', () => {
  it('catches up in windows; a failing cluster does not stop the others and is retried from its own cutoff', async () => {
    const { db } = newDb();
    const a = new FakeManager('a');
    const b = new FakeManager('b');
    b.failNext = 1;
    const clock = { now: T0 + 2.5 * H };
    const c = collector(
      db,
      [
        { manager: a, updaters: [] },
        { manager: b, updaters: [] },
      ],
      clock,
    );
    const r1 = await c.runOnce();
    assert.deepEqual(
      r1.map((r) => [r.clusterId, (r.end - r.start) / H, r.error]),
      [
        ['a', 1, undefined],
        ['a', 1, undefined],
        ['a', 0.5, undefined],
        ['b', 1, 'b is down'],
      ],
    );
    assert.deepEqual(walltime(db, 'units', 'a'), [9000]);
    assert.deepEqual(walltime(db, 'units', 'b'), []);
    clock.now = T0 + 3 * H;
    const r2 = await c.runOnce();
    assert.deepEqual(
      r2.map((r) => [r.clusterId, r.start - T0, r.end - T0]),
      [
        ['a', 2.5 * H, 3 * H],
        ['b', 0, H],
        ['b', H, 2 * H],
        ['b', 2 * H, 3 * H],
      ],
    );
    // Every second of both clusters counted exactly once; usage equals the unit; users/projects stored.
    assert.deepEqual(walltime(db, 'units', 'a'), [10800]);
    assert.deepEqual(walltime(db, 'units', 'b'), [10800]);
    assert.deepEqual(walltime(db, 'usage', 'b'), [10800]);
    assert.deepEqual(
      plain(db.db.prepare("SELECT num_units, num_updates FROM usage WHERE cluster_id = 'b'").get()),
      {
        num_units: 1,
        num_updates: 3,
      },
    );
    assert.deepEqual(
      plain(
        db.db
          .prepare('SELECT cluster_id, resource_manager, name, users FROM projects ORDER BY cluster_id')
          .all(),
      ),
      [
        { cluster_id: 'a', resource_manager: 'slurm', name: 'acc', users: '["usr"]' },
        { cluster_id: 'b', resource_manager: 'slurm', name: 'acc', users: '["usr"]' },
      ],
    );
    await c.stop();
  });

  it('resumes after a restart from each cluster’s last committed window', async () => {
    const { db } = newDb();
    const a = new FakeManager('a');
    const clock = { now: T0 + 2 * H };
    await collector(db, [{ manager: a, updaters: [] }], clock).runOnce();
    // "restart": a new collector on the same DB, one hour later
    clock.now = T0 + 3 * H;
    const a2 = new FakeManager('a');
    await collector(db, [{ manager: a2, updaters: [] }], clock).runOnce();
    assert.deepEqual(a2.calls, [[T0 + 2 * H, T0 + 3 * H]]);
    assert.deepEqual(walltime(db, 'units', 'a'), [10800]);
    assert.deepEqual(plain(db.db.prepare('SELECT num_units FROM usage').get()), { num_units: 1 });
  });

  it('a failing updater stores nothing for the window; it is redone next time', async () => {
    const { db } = newDb();
    const a = new FakeManager('a');
    let fail = true;
    const up: Updater = {
      id: 'tsdb',
      async update(_c: string, units: UnitRecord[]) {
        if (fail) throw new Error('Prometheus down');
        for (const u of units) u.avg_cpu_usage = { global: 50 };
      },
      async close() {},
    };
    const clock = { now: T0 + H / 2 };
    const c = collector(db, [{ manager: a, updaters: [up] }], clock);
    const r = await c.runOnce();
    assert.equal(r[0]!.error, 'Prometheus down');
    assert.deepEqual(plain(db.db.prepare('SELECT COUNT(*) AS n FROM units').get()), { n: 0 });
    fail = false;
    await c.runOnce();
    assert.deepEqual(
      JSON.parse((db.db.prepare('SELECT avg_cpu_usage AS m FROM units').get() as { m: string }).m),
      {
        global: 50,
      },
    );
    assert.deepEqual(walltime(db, 'units', 'a'), [1800]);
  });

  it('a slow cluster is skipped while busy; the others go on', async () => {
    const { db } = newDb();
    const fast = new FakeManager('fast');
    const slow = new FakeManager('slow');
    let release!: () => void;
    slow.gate = new Promise((r) => {
      release = r;
    });
    const clock = { now: T0 + H / 2 };
    const c = collector(
      db,
      [
        { manager: fast, updaters: [] },
        { manager: slow, updaters: [] },
      ],
      clock,
    );
    const first = c.runOnce();
    await new Promise((r) => setTimeout(r, 20));
    clock.now = T0 + H;
    const second = await c.runOnce();
    assert.deepEqual(
      second.map((r) => r.clusterId),
      ['fast'],
    );
    assert.deepEqual(walltime(db, 'units', 'fast'), [3600]);
    release();
    await first;
    assert.deepEqual(walltime(db, 'units', 'slow'), [1800]);
    assert.equal(slow.calls.length, 1);
  });

  it('stop() aborts a window in flight: nothing stored, clients closed', async () => {
    const { db } = newDb();
    let closed = false;
    const hanging: ResourceManager = {
      clusterId: 'h',
      manager: 'slurm',
      fetchUnits: (_s: number, _e: number, signal?: AbortSignal) =>
        new Promise((_resolve, reject) =>
          signal?.addEventListener('abort', () => reject(new Error('aborted'))),
        ),
      fetchUsersProjects: async () => ({ users: [], projects: [] }),
      close: async () => {
        closed = true;
      },
    };
    const c = collector(db, [{ manager: hanging, updaters: [] }], { now: T0 + H });
    c.start();
    await new Promise((r) => setTimeout(r, 50));
    await c.stop();
    assert.ok(closed);
    assert.deepEqual(plain(db.db.prepare('SELECT COUNT(*) AS n FROM usage').get()), { n: 0 });
  });
});
