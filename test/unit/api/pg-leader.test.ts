// Leader election (src/api/db/pg/leader.ts) on a real PostgreSQL: one leader at a time; a leader whose
// session is ended by the server stops its cycle at once and the other replica takes over.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Sql } from 'postgres';
import { openPg } from '../../../src/api/db/pg/connect.js';
import { LeaderElection } from '../../../src/api/db/pg/leader.js';
import { migratePg } from '../../../src/api/db/pg/migrations.js';
import type { BackgroundTask } from '../../../src/api/main.js';
import { createLogger } from '../../../src/common/logger.js';
import { type PostgresServer, startPostgres } from '../../helpers/postgres.js';
import { waitFor } from '../../helpers/wait.js';

let server: PostgresServer;
let sql: Sql;
before(async () => {
  server = await startPostgres({ port: 9404 });
  await server.createDatabase('leader');
  sql = openPg(server.url('leader'));
  await migratePg(sql);
});
after(async () => {
  await sql?.end();
  await server?.stop();
});

/** A cycle that records its runs: started, stopped. */
class FakeCycle implements BackgroundTask {
  running = false;
  starts = 0;
  start() {
    this.running = true;
    this.starts++;
  }
  async stop() {
    this.running = false;
  }
}

function replica(name: string) {
  const cycles: FakeCycle[] = [];
  const make = () => {
    const c = new FakeCycle();
    cycles.push(c);
    return c;
  };
  const election = new LeaderElection({
    url: server.url('leader'),
    logger: createLogger({ level: 'silent' }),
    retryMs: 100,
    cycle: make(),
    rebuild: async () => make(),
  });
  return { name, election, cycles, running: () => cycles.some((c) => c.running) };
}

test('one leader runs the cycle; when its session ends the cycle stops and a new term begins', async () => {
  const a = replica('a');
  const b = replica('b');
  const replicas = [a, b];
  const leaders = () => replicas.filter((r) => r.running());
  const state = () =>
    replicas.map((r) => `${r.name}: ${r.cycles.map((c) => (c.running ? 'running' : 'stopped'))}`);
  const oneLeader = (what: string) =>
    waitFor(what, 10_000, () => {
      const l = leaders();
      if (l.length !== 1) throw new Error(`${l.length} running cycles (${state().join('; ')})`);
      return l[0]!;
    });
  a.election.start();
  b.election.start();
  try {
    const first = await oneLeader('a leader');
    const second = first === a ? b : a;
    // a few more attempts of the other replica change nothing
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(leaders(), [first], 'one leader at a time');
    assert.equal(second.election.isLeader, false);
    await assert.rejects(
      second.election.store({ start: 0, end: 1, timeZone: 'UTC', units: [] }),
      /not the leader/,
    );

    // The server ends the leader's session (as when its connection is lost): the lock goes with it, the
    // term's cycle stops, and a new term begins on whichever replica takes the lock first (the deposed one
    // campaigns again at once, so it may win).
    const term = first.cycles.at(-1)!;
    const [holder] = await sql<{ pid: number }[]>`SELECT pid FROM pg_locks WHERE locktype = 'advisory'`;
    await sql`SELECT pg_terminate_backend(${holder!.pid})`;
    await waitFor('the deposed term to stop its cycle', 10_000, () => {
      if (term.running) throw new Error(state().join('; '));
      return true;
    });
    const next = await oneLeader('the leader of the next term');
    assert.equal(next.cycles.at(-1)!.starts, 1, 'the new term runs a fresh cycle');
    // whoever leads, stopping it hands the lead to the other replica
    const other = next === a ? b : a;
    await next.election.stop();
    const last = await oneLeader('the other replica to lead');
    assert.equal(last, other);
    for (const r of replicas)
      for (const c of r.cycles) assert.ok(c.starts <= 1, `${r.name}: a stopped cycle is not restarted`);
  } finally {
    await Promise.all([a.election.stop(), b.election.stop()]);
  }
  assert.equal(a.running() || b.running(), false, 'stop() stops the cycle');
});

test('a replica that cannot build its next cycle gives the lead up to one that can', async () => {
  const broken = replica('broken');
  const healthy = replica('healthy');
  let rebuilds = 0;
  const failing = new LeaderElection({
    url: server.url('leader'),
    logger: createLogger({ level: 'silent' }),
    retryMs: 100,
    cycle: broken.cycles[0]!,
    rebuild: async () => {
      rebuilds++;
      throw new Error('unknown updater tsdb-9');
    },
  });
  failing.start();
  try {
    await waitFor('the broken replica to lead with its first cycle', 10_000, () => broken.running());
    const [holder] = await sql<{ pid: number }[]>`SELECT pid FROM pg_locks WHERE locktype = 'advisory'`;
    await sql`SELECT pg_terminate_backend(${holder!.pid})`;
    // its next term needs a new cycle, which fails: it lets the lock go instead of leading without a cycle
    await waitFor('a failed rebuild', 10_000, () => rebuilds >= 1);
    healthy.election.start();
    await waitFor('the healthy replica to lead', 10_000, () => healthy.running());
    assert.equal(broken.running(), false);
    assert.equal(failing.isLeader, false);
  } finally {
    await Promise.all([failing.stop(), healthy.election.stop(), broken.election.stop()]);
  }
});
