// ceems_api_server end to end: the real binary on a seeded DB, start-up errors, graceful shutdown, and
// crash safety of the DB writes (SIGKILL in the middle of a large transaction).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { CeemsDb } from '../../src/api/db/index.js';
import { openDatabase, pragma } from '../../src/common/sqlite.js';
import { ADMIN, seedDb } from '../fixtures/api/seed.js';
import { ROOT, runProgram, startProgram } from '../helpers/process.js';

const cleanup: string[] = [];
after(() => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

function configFor(dataDir: string, extra = ''): string {
  const dir = mkdtempSync(join(tmpdir(), 'ceems-apicfg-'));
  cleanup.push(dir);
  const file = join(dir, 'config.yml');
  writeFileSync(
    file,
    `ceems_api_server:\n  data:\n    path: ${dataDir}\n    time_zone: Europe/Paris\n  admin:\n    users: [${ADMIN}]\n${extra}`,
  );
  return file;
}

async function getJson(url: string, user?: string) {
  const r = await fetch(url, { headers: user ? { 'X-Grafana-User': user } : {} });
  return { status: r.status, body: await r.text() };
}

describe('ceems_api_server binary', () => {
  test('serves a seeded DB, honours admins from the config, shuts down cleanly on SIGTERM', async () => {
    const data = seedDb();
    cleanup.push(data);
    const p = await startProgram('ceems_api_server', [
      '--config.file',
      configFor(data, '    colour: blue\n'),
      '--web.listen-address=127.0.0.1:0',
      '--query.max-period=2d',
      // the seeded units are from 2024: keep them from the retention purge of the collection cycle
      '--storage.data.skip.delete.old.units',
    ]);
    try {
      assert.equal((await getJson(`${p.url}/health`)).body, 'CEEMS API Server is healthy');
      const units = JSON.parse(
        (await getJson(`${p.url}/api/v1/units?uuid=1001&uuid=1003&uuid=vm-aaaa`, 'alice')).body,
      );
      assert.deepEqual(
        units.data.map((u: { uuid: string }) => u.uuid),
        ['vm-aaaa', '1001'],
      );
      // admin rows are refreshed from the config at start-up: poll until present
      let status = 0;
      for (let i = 0; i < 50 && status !== 200; i++) {
        status = (await getJson(`${p.url}/api/v1/units/admin`, ADMIN)).status;
        if (status !== 200) await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(status, 200);
      const tooLong = await getJson(`${p.url}/api/v1/units?from=0&to=999999`, 'alice');
      assert.equal(tooLong.status, 400);
      assert.match(tooLong.body, /maximum query window exceeded/);
    } finally {
      assert.equal(await p.stop('SIGTERM'), 0);
    }
    assert.match(p.stderr(), /Shutting down/);
    assert.match(p.stderr(), /msg="Unknown configuration key ignored" key=ceems_api_server\.admin\.colour/);
  });

  test('start-up errors are clear and exit 1', async () => {
    const missing = await runProgram('ceems_api_server', ['--web.listen-address=127.0.0.1:0']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /--config\.file is required/);
    const data = mkdtempSync(join(tmpdir(), 'ceems-apidata-'));
    cleanup.push(data);
    const bad = await runProgram('ceems_api_server', [
      '--config.file',
      configFor(data, 'clusters:\n  - id: x\n    manager: lsf\n'),
      '--web.listen-address=127.0.0.1:0',
    ]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /clusters\.0\.manager: unknown resource manager \(got "lsf"\)/);
    const grafana = await runProgram('ceems_api_server', [
      '--config.file',
      configFor(data, '    grafana:\n      url: http://127.0.0.1:1\n      teams_ids: ["1"]\n'),
      '--web.listen-address=127.0.0.1:0',
    ]);
    assert.equal(grafana.code, 1);
    assert.match(grafana.stderr, /Grafana at http:\/\/127\.0\.0\.1:1 is unreachable/);
    const level = await runProgram('ceems_api_server', [
      '--config.file',
      configFor(data),
      '--web.compression.level=12',
    ]);
    assert.equal(level.code, 1);
    assert.match(level.stderr, /--web\.compression\.level must be between 1 and 9 \(got 12\)/);
    const flag = await runProgram('ceems_api_server', ['--query.max-period=forever']);
    assert.equal(flag.code, 1);
    assert.match(flag.stderr, /invalid value 'forever' for flag '--query\.max-period'/);
    const cors = await runProgram('ceems_api_server', [
      '--config.file',
      configFor(data),
      '--web.cors.origin=(',
    ]);
    assert.equal(cors.code, 1);
    assert.match(cors.stderr, /invalid value '\(' for flag '--web\.cors\.origin'/);
    const help = await runProgram('ceems_api_server', ['--help']);
    assert.equal(help.code, 0);
    for (const f of [
      '--config.file',
      '--web.route-prefix',
      '--web.max-requests',
      '--web.cors.origin',
      '--query.max-period',
    ])
      assert.ok(help.stdout.includes(f), f);
    assert.ok(!help.stdout.includes('--web.user-header-name'), 'hidden flag listed');
  });

  test('a SIGKILLed server restarts on the same DB', async () => {
    const data = seedDb();
    cleanup.push(data);
    const cfg = configFor(data);
    const first = await startProgram('ceems_api_server', [
      '--config.file',
      cfg,
      '--web.listen-address=127.0.0.1:0',
    ]);
    await first.stop('SIGKILL');
    const second = await startProgram('ceems_api_server', [
      '--config.file',
      cfg,
      '--web.listen-address=127.0.0.1:0',
    ]);
    try {
      assert.equal((await getJson(`${second.url}/health`)).status, 200);
    } finally {
      await second.stop();
    }
  });
});

describe('backups', () => {
  test('periodic online backups land in backup_path as readable copies', async () => {
    const data = seedDb();
    const backups = mkdtempSync(join(tmpdir(), 'ceems-backups-'));
    cleanup.push(data, backups);
    const cfg = configFor(data, '');
    writeFileSync(
      cfg,
      `ceems_api_server:\n  data:\n    path: ${data}\n    time_zone: UTC\n    backup_path: ${backups}\n    backup_interval: 1s\n`,
    );
    const refused = await runProgram('ceems_api_server', [
      '--config.file',
      cfg,
      '--web.listen-address=127.0.0.1:0',
    ]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /backup_interval of less than 1 day is not supported/);
    const p = await startProgram('ceems_api_server', [
      '--config.file',
      cfg,
      '--web.listen-address=127.0.0.1:0',
      '--test.disable.checks',
      '--storage.data.skip.delete.old.units',
    ]);
    try {
      let files: string[] = [];
      for (let i = 0; i < 100 && files.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        files = readdirSync(backups).filter((f) => /^ceems-\d{12}\.db$/.test(f));
      }
      assert.ok(files.length > 0, `no backup in ${backups}: ${p.stderr()}`);
      const copy = openDatabase(join(backups, files[0]!), { readOnly: true });
      assert.ok((copy.prepare('SELECT COUNT(*) AS n FROM units').get() as { n: number }).n > 0);
      copy.close();
      assert.match(p.stderr(), /msg="DB backed up"/);
    } finally {
      await p.stop();
    }
  });
});

describe('crash safety of DB writes', () => {
  test('SIGKILL in the middle of a large batch: DB opens, committed batches intact, no partial batch', async () => {
    const data = mkdtempSync(join(tmpdir(), 'ceems-crash-'));
    cleanup.push(data);
    const SIZE = 20_000;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', resolve(ROOT, 'test/fixtures/api/batch-writer.ts'), data, String(SIZE)],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stderr!.on('data', (d) => {
      err += d;
    });
    const exited = new Promise<NodeJS.Signals | null>((res) => child.once('exit', (_c, sig) => res(sig)));
    // Wait until batch 2 is being written (two batches committed), let it run a moment, then kill.
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`writer too slow:\n${out}\n${err}`)), 120_000);
      child.stdout!.on('data', (d) => {
        out += d;
        if (out.includes('writing 2\n')) {
          clearTimeout(timer);
          setTimeout(res, 30);
        }
      });
    });
    process.kill(child.pid!, 'SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    const committed = [...out.matchAll(/committed (\d+)/g)].map((m) => Number(m[1]));
    const lastAnnounced = Math.max(...[...out.matchAll(/writing (\d+)/g)].map((m) => Number(m[1])));
    assert.ok(committed.length >= 2);

    // Reopen through the normal path (migrations, WAL recovery).
    const db = CeemsDb.open(data);
    assert.equal(pragma(db.db, 'integrity_check'), 'ok');
    const perBatch = db.db
      .prepare(
        "SELECT json_extract(tags, '$.batch') AS batch, COUNT(*) AS n FROM units GROUP BY batch ORDER BY batch",
      )
      .all() as { batch: number; n: number }[];
    for (const b of committed)
      assert.ok(
        perBatch.some((r) => r.batch === b && r.n === SIZE),
        `batch ${b} lost`,
      );
    // every visible batch is complete: the killed one is either fully there (commit won the race) or absent
    for (const r of perBatch) assert.equal(r.n, SIZE, `partial batch ${r.batch}`);
    assert.ok(perBatch.length === committed.length || perBatch.length === lastAnnounced + 1);
    // usage is consistent with the units of the same transactions
    const usage = db.db.prepare('SELECT SUM(num_updates) AS n FROM usage').get() as { n: number };
    assert.equal(usage.n, perBatch.length * SIZE);
    db.close();
    const ro = openDatabase(join(data, 'ceems.db'), { readOnly: true });
    assert.equal(
      (ro.prepare('SELECT COUNT(*) AS n FROM units').get() as { n: number }).n,
      perBatch.length * SIZE,
    );
    ro.close();
  });
});
