// When the load balancer reads admin_users (spec lb.md §5 step 6, §7.6 as amended in docs/spec-changes.md):
// only when the answer can change the outcome, and then from the DB itself, so that a change to
// admin_users holds from the next request on.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createHttpClient } from '../../../src/common/httpclient.js';
import { createLogger } from '../../../src/common/logger.js';
import { openDatabase } from '../../../src/common/sqlite.js';
import { Authorizer, type AuthzSource, DbAuthzSource } from '../../../src/lb/authz.js';
import { Backend, BackendPool } from '../../../src/lb/backend.js';
import { ParseCache } from '../../../src/lb/promql.js';
import { loadBalancerHandler } from '../../../src/lb/server.js';
import { createOwnershipDb, tempDir } from '../../fixtures/lb/setup.js';

const log = createLogger({ level: 'error' });

async function listening(srv: Server): Promise<string> {
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

describe('admin check of the load balancer', () => {
  const tmp = tempDir('ceems-lb-admin-');
  const calls = { isAdmin: 0, owns: 0 };
  /** The request targets the backend received, in order. */
  const seen: string[] = [];
  const backend = createServer((req, res) => {
    seen.push(req.url!);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"status":"success","data":{"resultType":"vector","result":[]}}');
  });
  let front: Server;
  let url: string;
  let source: DbAuthzSource;
  const writer = () => openDatabase(`${tmp.dir}/ceems.db`);

  before(async () => {
    createOwnershipDb(tmp.dir, {
      units: [
        { cluster: 'hpc-0', uuid: '1001', project: 'acc1', user: 'alice' },
        { cluster: 'hpc-0', uuid: '2001', project: 'acc2', user: 'bob' },
      ],
      projects: [
        { cluster: 'hpc-0', name: 'acc1', users: ['alice'] },
        { cluster: 'hpc-0', name: 'acc2', users: ['bob'] },
      ],
      admins: ['boss'],
    });
    source = new DbAuthzSource(`${tmp.dir}/ceems.db`);
    const counting: AuthzSource = {
      kind: 'db',
      isAdmin: (user) => {
        calls.isAdmin++;
        return source.isAdmin(user);
      },
      owns: (user, cluster, ids) => {
        calls.owns++;
        return source.owns(user, cluster, ids);
      },
      clusters: () => source.clusters(),
      close: () => source.close(),
    };
    const client = createHttpClient({ follow_redirects: false });
    const pool = new BackendPool(
      new Map([['hpc-0', [new Backend(new URL(await listening(backend)), client)]]]),
      'round-robin',
      log,
    );
    front = createServer(
      loadBalancerHandler({
        type: 'tsdb',
        pool,
        authz: new Authorizer(counting),
        policy: { restrictingLabel: 'uuid', unrestrictedMetrics: new Set() },
        parse: new ParseCache().parse,
        timeoutMs: 10_000,
        log,
      }),
    );
    url = await listening(front);
  });

  after(async () => {
    front.closeAllConnections();
    backend.closeAllConnections();
    await new Promise((r) => front.close(r));
    await new Promise((r) => backend.close(r));
    await source.close();
    tmp.cleanup();
  });

  /** GET `query` as `user`: status and the call counts it took; what the backend saw is in `seen`. */
  const query = async (user: string, q: string, path = '/api/v1/query') => {
    const before = { ...calls };
    const r = await fetch(`${url}${path}?query=${encodeURIComponent(q)}`, {
      headers: { 'x-grafana-user': user, 'x-ceems-cluster-id': 'hpc-0' },
      signal: AbortSignal.timeout(10_000),
    });
    await r.text();
    return { status: r.status, isAdmin: calls.isAdmin - before.isAdmin, owns: calls.owns - before.owns };
  };

  it('forwards what the rules for users allow without reading admin_users once ownership is known', async () => {
    assert.deepEqual(await query('alice', 'foo{uuid="1001"}  # mine'), { status: 200, isAdmin: 1, owns: 1 });
    assert.equal(seen.at(-1), `/api/v1/query?query=${encodeURIComponent('foo{uuid="1001"}')}`, 'canonical');
    assert.deepEqual(await query('alice', 'rate(foo{uuid="1001"}[5m])'), {
      status: 200,
      isAdmin: 0,
      owns: 0,
    });
    assert.deepEqual(await query('alice', '1 + 1'), { status: 200, isAdmin: 0, owns: 0 });
  });

  it('asks admin_users before the ownership source, and forwards an admin request as sent', async () => {
    assert.deepEqual(await query('boss', 'foo{uuid="1001"}  # not mine'), {
      status: 200,
      isAdmin: 1,
      owns: 0,
    });
    assert.equal(seen.at(-1), `/api/v1/query?query=${encodeURIComponent('foo{uuid="1001"}  # not mine')}`);
    assert.deepEqual(await query('boss', 'up'), { status: 200, isAdmin: 1, owns: 0 });
    const status = await fetch(`${url}/api/v1/status/config`, {
      headers: { 'x-grafana-user': 'boss', 'x-ceems-cluster-id': 'hpc-0' },
    });
    assert.equal(status.status, 200);
  });

  it('reads every refusal again from admin_users: a change holds from the next request on', async () => {
    assert.deepEqual(await query('alice', 'foo{uuid="2001"}'), { status: 403, isAdmin: 1, owns: 1 });
    assert.deepEqual(await query('alice', 'up'), { status: 403, isAdmin: 1, owns: 0 });
    const db = writer();
    try {
      db.prepare("INSERT INTO admin_users (name) VALUES ('alice')").run();
      assert.deepEqual(await query('alice', 'up'), { status: 200, isAdmin: 1, owns: 0 }, 'promoted');
      assert.deepEqual(await query('alice', 'foo{uuid="2001"}'), { status: 200, isAdmin: 1, owns: 0 });
      db.prepare("DELETE FROM admin_users WHERE name IN ('alice', 'boss')").run();
      assert.deepEqual(await query('alice', 'up'), { status: 403, isAdmin: 1, owns: 0 }, 'demoted');
      assert.deepEqual(await query('boss', 'foo{uuid="1001"}'), { status: 403, isAdmin: 1, owns: 1 });
      assert.deepEqual(await query('boss', 'up'), { status: 403, isAdmin: 1, owns: 0 });
    } finally {
      db.close();
    }
  });
});
