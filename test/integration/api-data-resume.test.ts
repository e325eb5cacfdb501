// Resumability of the collection cycle: a collector process is SIGKILLed at random moments while it
// fetches and commits windows; after the restarts the DB is identical to the one of an uninterrupted
// run (nothing lost, nothing counted twice).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { openDatabase } from '../../src/common/sqlite.js';

const CHILD = resolve(import.meta.dirname, '../fixtures/api-data/collect-child.ts');
const T0 = Date.UTC(2024, 4, 6);
const ENV = {
  ...process.env,
  CEEMS_TEST_NOW: String(T0 + 12 * 3600_000),
  FAKE_SACCT_T0: String(T0),
  FAKE_SACCT_JOBS: '800',
  FAKE_SACCT_STEP_S: '45',
  FAKE_SACCT_DELAY_MS: '40',
};
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function start(dir: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir], {
    env: ENV,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.on('data', (d) => {
    log += d;
  });
  return { child, log: () => log };
}

async function runToEnd(dir: string): Promise<string> {
  const { child, log } = start(dir);
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, log());
  return log();
}

const withoutId = (row: unknown) => {
  const { id: _id, ...rest } = row as Record<string, unknown>;
  return rest;
};

/** Everything a collection writes, without the row ids. */
function dump(dir: string): Record<string, unknown[]> {
  const db = openDatabase(join(dir, 'ceems.db'), { readOnly: true });
  try {
    const q = (sql: string) => db.prepare(sql).all();
    return {
      units: q('SELECT * FROM units ORDER BY cluster_id, uuid, started_at').map(withoutId),
      usage: q('SELECT * FROM usage ORDER BY cluster_id, username, project').map(withoutId),
      daily: q('SELECT * FROM daily_usage ORDER BY cluster_id, username, project, last_updated_at').map(
        withoutId,
      ),
      projects: q('SELECT name, users FROM projects ORDER BY name'),
    };
  } finally {
    db.close();
  }
}

describe('collection cycle survives SIGKILL', { timeout: 240_000 }, () => {
  it('restarts from the last committed window with nothing lost or doubled', async () => {
    const reference = mkdtempSync(join(tmpdir(), 'ceems-resume-ref-'));
    const killed = mkdtempSync(join(tmpdir(), 'ceems-resume-kill-'));
    dirs.push(reference, killed);
    await runToEnd(reference);
    const expected = dump(reference);
    assert.equal((expected.usage as Array<{ num_updates: number }>).length, 15);
    assert.equal(expected.units.length, 800);

    // Kill rounds: once a run has committed a window, SIGKILL it 0–300 ms later, i.e. while it fetches,
    // parses or commits the next one.
    let committedBeforeKill = 0;
    for (let round = 0; round < 3; round++) {
      const { child, log } = start(killed);
      const exited = once(child, 'exit');
      const deadline = Date.now() + 60_000;
      while (!/msg="Collected units"/.test(log()) && child.exitCode === null && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 300)));
      child.kill('SIGKILL');
      const [code, signal] = await exited;
      if (signal === 'SIGKILL') committedBeforeKill += (log().match(/msg="Collected units"/g) ?? []).length;
      else assert.equal(code, 0, log());
    }
    const final = await runToEnd(killed);
    assert.ok(committedBeforeKill > 0, 'some windows were committed before a kill');
    assert.ok(committedBeforeKill < 12, 'the kills interrupted the catch-up');
    assert.match(final, /msg="Collected units"/);
    assert.deepEqual(dump(killed), expected);
  });
});
