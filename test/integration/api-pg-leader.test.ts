// Two API server replicas on one PostgreSQL (issue 21): one leads the collection cycle; killed with
// SIGKILL in the middle of a window's transaction, the other takes over, and the database ends up with
// exactly the rows of one uninterrupted run (the killed window rolled back and collected again, nothing
// lost or counted twice).

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { after, before, test } from 'node:test';
import type { Sql } from 'postgres';
import { openPg } from '../../src/api/db/pg/connect.js';
import { migratePg } from '../../src/api/db/pg/migrations.js';
import { PgStore } from '../../src/api/db/pg/store.js';
import { createLogger } from '../../src/common/logger.js';
import { syntheticCollector } from '../fixtures/api/synthetic-cluster.js';
import { type PostgresServer, startPostgres } from '../helpers/postgres.js';
import { ROOT } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';

const CHILD = resolve(ROOT, 'test/fixtures/api/leader-child.ts');
let server: PostgresServer;
const pools: Sql[] = [];
const children: ChildProcess[] = [];

before(async () => {
  server = await startPostgres({ port: 9403 });
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(pools.map((p) => p.end()));
  await server?.stop();
});

interface Replica {
  name: string;
  proc: ChildProcess;
  log(): string;
}

function replica(url: string, name: string): Replica {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, url, name], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(proc);
  let log = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
  return { name, proc, log: () => log };
}

const leads = (r: Replica) => r.log().includes('msg="Leader: this replica runs the collection cycle"');

/** Every table's rows without their ids (a rolled-back window used up identity values). */
async function contents(sql: Sql): Promise<Record<string, unknown[]>> {
  const order: Record<string, string> = {
    units: 'cluster_id, uuid, started_at',
    usage: 'cluster_id, username, project',
    daily_usage: 'cluster_id, username, project, last_updated_at',
    users: 'cluster_id, name',
    projects: 'cluster_id, name',
  };
  const out: Record<string, unknown[]> = {};
  for (const [table, key] of Object.entries(order)) {
    const rows = await sql.unsafe(`SELECT * FROM ${table} ORDER BY ${key}`);
    out[table] = rows.map(({ id: _id, ...r }) => r);
  }
  return out;
}

test('the follower takes over from a leader killed mid-window; the rows equal one uninterrupted run', async () => {
  await server.createDatabase('replicas');
  await server.createDatabase('reference');
  const url = server.url('replicas');
  const sql = openPg(url);
  pools.push(sql);
  await migratePg(sql); // the children migrate too: both at once, under the advisory lock

  const a = replica(url, 'a');
  const b = replica(url, 'b');
  const leader = await waitFor('a replica to lead', 60_000, () =>
    leads(a) ? a : leads(b) ? b : undefined,
  ).catch((e) => {
    throw new Error(`${(e as Error).message}\na:\n${a.log()}\nb:\n${b.log()}`);
  });
  const follower = leader === a ? b : a;

  // Kill it when it has committed a few windows and is inside the transaction of the next one.
  await waitFor('the leader in a window transaction after 4 committed windows', 60_000, async () => {
    const [r] = await sql<{ done: string | null; in_tx: boolean }[]>`
      SELECT (SELECT MAX(last_updated_at) FROM usage) AS done,
        EXISTS (SELECT 1 FROM pg_stat_activity s JOIN pg_locks l ON l.pid = s.pid
                WHERE l.locktype = 'advisory' AND s.xact_start IS NOT NULL AND s.state <> 'idle') AS in_tx`;
    return r!.done !== null && r!.done >= '2024-05-06T01:00:00' && r!.in_tx;
  });
  leader.proc.kill('SIGKILL');
  await once(leader.proc, 'exit');
  const committedAtKill = (await new PgStore(sql).lastUpdatedAt())!;
  assert.ok(committedAtKill < '2024-05-06T12:00:00', `killed before the end (at ${committedAtKill})`);

  await waitFor('the follower to take over', 30_000, () => leads(follower)).catch((e) => {
    throw new Error(`${(e as Error).message}\n${follower.log()}`);
  });
  const [code] = (await once(follower.proc, 'exit')) as [number | null];
  assert.equal(code, 0, `follower finished the cycle:\n${follower.log()}`);

  const refSql = openPg(server.url('reference'));
  pools.push(refSql);
  await migratePg(refSql);
  const results = await syntheticCollector(new PgStore(refSql), createLogger({ level: 'silent' })).runOnce();
  assert.equal(results.length, 48);
  assert.ok(results.every((r) => !r.error));

  const [got, want] = [await contents(sql), await contents(refSql)];
  for (const table of Object.keys(want)) {
    assert.equal(got[table]!.length, want[table]!.length, `${table}: row count`);
    assert.deepEqual(got[table], want[table], table);
  }
  // 2000 units running through all 48 windows, 500 short ones per window: each counted once
  assert.equal(want.units!.length, 2000 + 48 * 500);
  const [counted] = await sql`SELECT sum(num_units)::bigint AS n FROM usage`;
  assert.equal(counted!.n, 2000 + 48 * 500);
});
