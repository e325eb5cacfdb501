// forward() (src/lb/proxy.ts) against a real local backend: a request the HTTP client refuses to send is
// the client's fault and answered 400 — it must not mark the backend dead (which would let any client
// take every backend out of rotation) — and a backend that resets the connection is retried elsewhere.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createHttpClient } from '../../../src/common/httpclient.js';
import { createLogger } from '../../../src/common/logger.js';
import { Backend, BackendPool } from '../../../src/lb/backend.js';
import { forward } from '../../../src/lb/proxy.js';

const log = createLogger({ level: 'error' });

async function listening(srv: Server): Promise<string> {
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

describe('forward', () => {
  let seen = 0;
  const good = createServer((_req, res) => {
    seen++;
    res.end('ok');
  });
  const resetting = createServer((req) => req.socket.destroy());
  const clients: Array<ReturnType<typeof createHttpClient>> = [];
  let pool: BackendPool;
  let extra: IncomingHttpHeaders = {};
  const front = createServer((req, res) => {
    void forward(
      pool,
      'c1',
      {
        method: 'GET',
        url: req.url!,
        headers: { ...req.headers, ...extra },
        body: undefined,
        clientIp: '127.0.0.1',
        retryable: true,
      },
      res,
      { timeoutMs: 5000, log },
    );
  });
  let frontUrl = '';

  before(async () => {
    const urls = await Promise.all([listening(resetting), listening(good)]);
    const backends = urls.map((u) => {
      const client = createHttpClient({ follow_redirects: false });
      clients.push(client);
      return new Backend(new URL(u), client);
    });
    pool = new BackendPool(new Map([['c1', backends]]), 'round-robin', log);
    frontUrl = await listening(front);
  });

  after(async () => {
    for (const s of [front, good, resetting]) s.close();
    await Promise.all(clients.map((c) => c.close()));
  });

  it('answers 400 to a request the HTTP client refuses, and keeps every backend alive', async () => {
    extra = { 'x-odd': 'a\u0001b' };
    const r = await fetch(`${frontUrl}/api/v1/query`);
    assert.equal(r.status, 400);
    assert.match(await r.text(), /"errorType":"bad_request","error":"request cannot be forwarded: /);
    assert.deepEqual(
      [...pool.byCluster.get('c1')!].map((b) => b.alive),
      [true, true],
    );
    assert.equal(seen, 0);
  });

  it('retries on the other backend when one resets the connection, and marks that one dead', async () => {
    extra = {};
    for (let i = 0; i < 2; i++) {
      const r = await fetch(`${frontUrl}/api/v1/query`);
      assert.equal(r.status, 200);
      assert.equal(await r.text(), 'ok');
    }
    assert.deepEqual(
      [...pool.byCluster.get('c1')!].map((b) => b.alive),
      [false, true],
    );
  });
});
