// The API server in-process with `data.backend: postgres` (issue 21): two replicas on one database; the
// collection cycle runs on the leader only and moves to the other replica when the leader stops; both
// serve reads from PostgreSQL; admin users are synced into it.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Sql } from 'postgres';
import { openPg } from '../../../src/api/db/pg/connect.js';
import { type CollectorFactory, FLAGS, type Running, startApiServer } from '../../../src/api/main.js';
import { parseFlags } from '../../../src/common/flags.js';
import { createLogger } from '../../../src/common/logger.js';
import { type PostgresServer, startPostgres } from '../../helpers/postgres.js';
import { waitFor } from '../../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'ceems-life-pg-'));
const log = createLogger({ level: 'error' });
let server: PostgresServer;
let sql: Sql;
before(async () => {
  server = await startPostgres({ port: 9406 });
  await server.createDatabase('life');
  sql = openPg(server.url('life'));
});
after(async () => {
  await sql?.end();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function flags() {
  const cfg = join(dir, 'config.yml');
  writeFileSync(
    cfg,
    `ceems_api_server:
  data:
    backend: postgres
    url: ${server.url('life')}
    path: ${join(dir, 'unused')}
    time_zone: UTC
  admin:
    users: [alice]
`,
  );
  return parseFlags(FLAGS, [
    '--config.file',
    cfg,
    '--web.listen-address=127.0.0.1:0',
    '--no-security.drop-privileges',
  ]).flags;
}

/** A cycle that stores one window of one unit named after the replica when it starts. */
function collector(name: string, runs: string[]): CollectorFactory {
  return async (_loaded, ctx) => ({
    start() {
      runs.push(name);
      const end = Date.UTC(2024, 4, 6, runs.length);
      void ctx.store({
        start: end - 3600_000,
        end,
        timeZone: 'UTC',
        units: [{ uuid: `${name}-${runs.length}`, cluster_id: 'c', resource_manager: 'slurm' }],
      });
    },
    async stop() {},
  });
}

test('two replicas: the cycle runs on the leader only, then on the other when the leader stops', async () => {
  const runs: string[] = [];
  let a: Running | undefined = await startApiServer(flags(), log, { collector: collector('a', runs) });
  let b: Running | undefined;
  try {
    await waitFor('replica a to lead', 10_000, () => runs.includes('a'));
    b = await startApiServer(flags(), log, { collector: collector('b', runs) });
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(runs, ['a'], 'b follows while a leads');
    for (const r of [a, b]) {
      const health = await fetch(`http://${r.addresses[0]}/health`);
      assert.equal(health.status, 200);
    }
    await waitFor('the window of a in PostgreSQL', 5_000, async () => {
      const [row] = await sql`SELECT count(*)::int AS n FROM units WHERE uuid = 'a-1'`;
      return row!.n === 1;
    });
    // b reads what a wrote
    const clusters = await fetch(`http://${b.addresses[0]}/api/v1/clusters/admin`, {
      headers: { 'X-Grafana-User': 'alice' },
    });
    assert.equal(clusters.status, 200);
    assert.match(await clusters.text(), /"id":"c"/);
    const admins = await sql`SELECT name FROM admin_users ORDER BY name`;
    assert.deepEqual(
      admins.map((r) => r.name),
      ['alice', 'ceems-int-svc'],
    );

    await a.stop();
    a = undefined;
    await waitFor('replica b to take over', 15_000, () => runs.includes('b'));
    await waitFor('the window of b in PostgreSQL', 5_000, async () => {
      const [row] = await sql`SELECT count(*)::int AS n FROM units WHERE uuid = 'b-2'`;
      return row!.n === 1;
    });
  } finally {
    await a?.stop();
    await b?.stop();
  }
});

test('a PostgreSQL that cannot be reached stops the start-up with an error naming data.url', async () => {
  const cfg = join(dir, 'down.yml');
  writeFileSync(
    cfg,
    'ceems_api_server:\n  data:\n    backend: postgres\n    url: postgres://ceems:secret@127.0.0.1:9407/ceems\n',
  );
  const down = parseFlags(FLAGS, ['--config.file', cfg, '--web.listen-address=127.0.0.1:0']).flags;
  await assert.rejects(startApiServer(down, log), (e: Error) => {
    assert.match(
      e.message,
      /cannot use the PostgreSQL database postgres:\/\/ceems:\*\*\*@127\.0\.0\.1:9407\/ceems \(ceems_api_server\.data\.url\)/,
    );
    assert.doesNotMatch(e.message, /secret/);
    return true;
  });
});
