// Lifecycle of the API server in-process (spec §4): the collection-cycle hook gets the open DB and the
// retention setting, is started after the DB is open, and on shutdown its last write completes before
// the DB is closed.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { CeemsDb, UnitRecord } from '../../../src/api/db/index.js';
import { type CollectorContext, FLAGS, startApiServer } from '../../../src/api/main.js';
import { parseFlags } from '../../../src/common/flags.js';
import { createLogger } from '../../../src/common/logger.js';
import { openDatabase } from '../../../src/common/sqlite.js';

const dir = mkdtempSync(join(tmpdir(), 'ceems-life-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const log = createLogger({ level: 'error' });

function flags(extra: string[] = [], data = 'data') {
  const cfg = join(dir, 'config.yml');
  writeFileSync(
    cfg,
    `ceems_api_server:\n  data:\n    path: ${join(dir, data)}\n    retention_period: 10d\n    time_zone: UTC\n`,
  );
  // never drop privileges inside the test runner
  return parseFlags(FLAGS, [
    '--config.file',
    cfg,
    '--web.listen-address=127.0.0.1:0',
    '--no-security.drop-privileges',
    ...extra,
  ]).flags;
}

const units = (n: number): UnitRecord[] =>
  Array.from({ length: n }, (_, i) => ({
    cluster_id: 'c',
    resource_manager: 'slurm',
    uuid: String(i),
    started_at: 's',
  }));

test('the collector hook runs on the open DB and its final write completes before the DB closes', async () => {
  const seen: { ctx?: CollectorContext; started: boolean; dbOpenAtStop?: boolean } = { started: false };
  let db: CeemsDb | undefined;
  const running = await startApiServer(flags(), log, {
    collector: async (loaded, ctx) => {
      seen.ctx = ctx;
      db = ctx.db as CeemsDb; // backend sqlite
      assert.equal(loaded.config.ceems_api_server.data.retention_period, 10 * 24 * 3600e3);
      return {
        start() {
          seen.started = true;
        },
        async stop() {
          // a write still in progress when the signal arrives
          await new Promise((r) => setTimeout(r, 50));
          seen.dbOpenAtStop = db!.db.isOpen;
          db!.storeCollection({
            start: 0,
            end: 60_000,
            timeZone: 'UTC',
            units: units(5000),
          });
        },
      };
    },
  });
  assert.equal(seen.started, true);
  assert.equal(seen.ctx?.retentionDays, 10);
  assert.equal(seen.ctx?.timeZone, 'UTC');
  const health = await fetch(`http://${running.addresses[0]}/health`);
  assert.equal(health.status, 200);
  await running.stop();
  assert.equal(seen.dbOpenAtStop, true);
  assert.equal(db?.db.isOpen, false, 'DB closed after the tasks stopped');
  const check = openDatabase(join(dir, 'data', 'ceems.db'), { readOnly: true });
  assert.deepEqual({ ...check.prepare('SELECT COUNT(*) AS n FROM units').get() }, { n: 5000 });
  check.close();
});

test('a window that refreshes the planner statistics makes the HTTP server reopen its reader', async () => {
  let store: CollectorContext['store'] | undefined;
  const running = await startApiServer(flags([], 'data-stats'), log, {
    collector: async (_l, ctx) => {
      store = ctx.store;
      return { start() {}, async stop() {} };
    },
  });
  try {
    let reopened = 0;
    const reopen = running.api.reopenReader.bind(running.api);
    running.api.reopenReader = () => {
      reopened++;
      reopen();
    };
    const window = (n: number, end: number) => ({
      start: end - 60_000,
      end,
      timeZone: 'UTC',
      units: units(n),
    });
    await store!(window(50, 60_000));
    assert.equal(reopened, 1, 'units analyzed for the first time');
    await store!(window(60, 120_000));
    assert.equal(reopened, 1, 'statistics still hold');
  } finally {
    await running.stop();
  }
});

test('--storage.data.skip.delete.old.units disables the retention purge of the cycle', async () => {
  let retention: number | undefined = -1;
  const running = await startApiServer(flags(['--storage.data.skip.delete.old.units']), log, {
    collector: async (_l, ctx) => {
      retention = ctx.retentionDays;
      return { start() {}, async stop() {} };
    },
  });
  await running.stop();
  assert.equal(retention, undefined);
});

test('a collector that fails to build aborts start-up and releases the DB and the port', async () => {
  await assert.rejects(
    startApiServer(flags(), log, {
      collector: async () => {
        throw new Error('unknown updater tsdb-9');
      },
    }),
    /unknown updater tsdb-9/,
  );
  // the DB can be opened for writing again
  const again = await startApiServer(flags(), log, {
    collector: async () => ({ start() {}, async stop() {} }),
  });
  await again.stop();
});
