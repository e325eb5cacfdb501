// Collection windows stored from the writer thread (src/api/db/writer.ts).

import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CeemsDb, type CollectionWindow, openReader, type UnitRecord } from '../../../src/api/db/index.js';
import { WindowWriter } from '../../../src/api/db/writer.js';

const T0 = Date.UTC(2024, 4, 6);
const H = 3600_000;
const tmp = () => mkdtempSync(join(tmpdir(), 'ceems-writer-'));

function units(n: number): UnitRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    cluster_id: 'hpc-0',
    resource_manager: 'slurm',
    uuid: String(1000 + i),
    project: `acc${i % 7}`,
    username: `usr${i % 13}`,
    started_at: '2024-05-06T00:00:00+0000',
    started_at_ts: T0 - 2 * H,
    ended_at: 'Unknown',
    tags: { partition: 'debug' },
    total_time_seconds: { walltime: 3600, alloc_cputime: 7200 },
    avg_cpu_usage: { global: 40 + (i % 50) },
    total_cpu_energy_usage_kwh: { total: 0.001 * (i + 1) },
  }));
}

const window = (list: UnitRecord[], end = T0): CollectionWindow => ({
  start: end - H,
  end,
  timeZone: 'Europe/Paris',
  units: list,
  users: [{ cluster_id: 'hpc-0', resource_manager: 'slurm', name: 'usr1', projects: ['acc1'] }],
  projects: [{ cluster_id: 'hpc-0', resource_manager: 'slurm', name: 'acc1', users: ['usr1'] }],
});

function tables(dir: string): Record<string, unknown[]> {
  const r = openReader(dir);
  try {
    return Object.fromEntries(
      ['units', 'usage', 'daily_usage', 'users', 'projects'].map((t) => [
        t,
        r
          .prepare(`SELECT * FROM ${t} ORDER BY 1, 2, 3`)
          .all()
          .map((row) => ({ ...(row as object), id: 0 })),
      ]),
    );
  } finally {
    r.close();
  }
}

describe('DB writer thread', () => {
  test('stores exactly what CeemsDb.storeCollection stores on the main thread', async () => {
    const [threaded, direct] = [tmp(), tmp()];
    const list = units(4500); // sent in three messages
    const db = CeemsDb.open(direct);
    db.storeCollection(window(list));
    db.storeCollection(window(list, T0 + H));
    db.close();
    const writer = new WindowWriter(threaded);
    CeemsDb.open(threaded).close(); // main.ts opens (and migrates) before the writer starts
    await writer.store(window(list));
    await writer.store(window(list, T0 + H));
    await writer.close();
    const got = tables(threaded);
    assert.equal(got.units!.length, 4500);
    assert.deepEqual(got, tables(direct));
  });

  test('the main thread keeps running while a large window is written', async () => {
    const dir = tmp();
    const writer = new WindowWriter(dir);
    let ticks = 0;
    let stored = false;
    const tick = () => {
      ticks++;
      if (!stored) setImmediate(tick);
    };
    setImmediate(tick);
    await writer.store(window(units(20_000)));
    stored = true;
    await writer.close();
    assert.ok(ticks > 1, `main thread ran ${ticks} times while 20,000 units were stored`);
    assert.equal(tables(dir).units!.length, 20_000);
  });

  test('a window that cannot be stored rejects with the reason and leaves nothing behind', async () => {
    const dir = tmp();
    const writer = new WindowWriter(dir);
    const bad = units(3);
    bad[2]!.allocation = { big: 1n } as never; // cannot be serialised to JSON
    await assert.rejects(writer.store(window(bad)), /BigInt/);
    assert.equal(tables(dir).units!.length, 0);
    await writer.store(window(units(3)));
    await writer.close();
    assert.equal(tables(dir).units!.length, 3);
  });

  test('close waits for the window being stored; later windows are refused', async () => {
    const dir = tmp();
    const writer = new WindowWriter(dir);
    const pending = writer.store(window(units(5000)));
    await writer.close();
    await pending;
    assert.equal(tables(dir).units!.length, 5000);
    await assert.rejects(writer.store(window(units(1))), /DB writer is closed/);
  });

  test('a window that grows a table 10-fold refreshes its planner statistics and says so', async () => {
    const dir = tmp();
    let analyzed = 0;
    const writer = new WindowWriter(dir, () => analyzed++);
    await writer.store(window(units(30)));
    assert.equal(analyzed, 1, 'the first rows: never analyzed before');
    await writer.store(window(units(60), T0 + H));
    assert.equal(analyzed, 1, 'twice as many units: statistics kept');
    await writer.store(window(units(3000), T0 + 2 * H));
    assert.equal(analyzed, 2, '100-fold');
    await writer.close();
    const r = openReader(dir);
    const stat = r.prepare("SELECT stat FROM sqlite_stat1 WHERE idx = 'idx_units_username_ended'").get() as {
      stat: string;
    };
    r.close();
    assert.match(stat.stat, /^3000 /);
  });

  test('a writer thread that cannot open the DB fails the window with a clear error, then recovers', async () => {
    const dir = tmp();
    const notDir = join(dir, 'file');
    writeFileSync(notDir, '');
    const broken = new WindowWriter(notDir);
    await assert.rejects(broken.store(window(units(1))), /DB writer thread (failed|exited).*/);
    await broken.close();
    const writer = new WindowWriter(dir);
    await writer.store(window(units(2)));
    await writer.close();
    assert.equal(tables(dir).units!.length, 2);
  });
});
