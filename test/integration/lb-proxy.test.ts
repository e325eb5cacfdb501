// How ceems_lb forwards once a request is allowed: responses streamed to the client as the backend sends
// them (never buffered), a client that leaves cancels the backend request, redirects handed to the client,
// and what the front end refuses before the pipeline (unknown methods, non-path targets, large bodies).

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createOwnershipDb, tempDir, writeYaml } from '../fixtures/lb/setup.js';
import { http2Get } from '../helpers/http2.js';
import { type Started, startProgram } from '../helpers/process.js';
import { makePki } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

/** A backend whose answers the tests drive: a held stream, a request that never ends, a redirect. */
function scriptedBackend() {
  const state = { release: () => {}, hangingClosed: false, hanging: false, lastBody: '' };
  const srv = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url!, 'http://x').searchParams.get('do');
    if (path === 'stream') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"status":"success","data":');
      state.release = () => res.end('null}\n');
    } else if (path === 'hang') {
      state.hanging = true;
      req.once('close', () => {
        state.hangingClosed = true;
      });
    } else if (path === 'hints') {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"success","data":"after hints"}');
    } else if (path === 'redirect') {
      res.writeHead(302, { location: '/api/v1/query?query=elsewhere' });
      res.end();
    } else {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        state.lastBody = body;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: 'success', data: { method: req.method, url: req.url } }));
      });
    }
  });
  return { srv, state };
}

describe('ceems_lb proxying', { timeout: 60_000 }, () => {
  const tmp = tempDir('ceems-lb-proxy-');
  const backend = scriptedBackend();
  let lb: Started;
  let config = '';
  const headers = { 'X-Grafana-User': 'alice', 'X-Ceems-Cluster-Id': 'hpc-0' };
  const q = (what: string) => `/api/v1/query?query=${encodeURIComponent('x{uuid="1001"}')}&do=${what}`;

  before(async () => {
    backend.srv.listen(0, '127.0.0.1');
    await once(backend.srv, 'listening');
    const url = `http://127.0.0.1:${(backend.srv.address() as AddressInfo).port}`;
    createOwnershipDb(tmp.dir, {
      units: [{ cluster: 'hpc-0', uuid: '1001', project: 'acc1', user: 'alice' }],
      projects: [{ cluster: 'hpc-0', name: 'acc1', users: ['alice'] }],
      admins: ['boss'],
    });
    config = writeYaml(`${tmp.dir}/config.yml`, {
      ceems_api_server: { data: { path: tmp.dir } },
      ceems_lb: { backends: [{ id: 'hpc-0', tsdb: [{ web: { url } }] }] },
    });
    lb = await startProgram('ceems_lb', [`--config.file=${config}`, '--web.listen-address=127.0.0.1:0']);
  });

  after(async () => {
    await lb?.stop();
    backend.srv.closeAllConnections();
    await new Promise((r) => (backend.srv as Server).close(r));
    tmp.cleanup();
  });

  it('streams the response: the first bytes reach the client while the backend is still sending', async () => {
    const res = await fetch(`${lb.url}${q('stream')}`, { headers, signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.equal(new TextDecoder().decode(first.value), '{"status":"success","data":');
    backend.state.release();
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read())
      rest += new TextDecoder().decode(r.value);
    assert.equal(rest, 'null}\n');
  });

  it('cancels the backend request when the client leaves', async () => {
    const client = new AbortController();
    const pending = fetch(`${lb.url}${q('hang')}`, { headers, signal: client.signal }).catch(() => 'aborted');
    await waitFor('the backend to receive the request', 5000, () => backend.state.hanging);
    client.abort();
    assert.equal(await pending, 'aborted');
    await waitFor('the backend request to close', 5000, () => backend.state.hangingClosed);
  });

  it('hands a backend redirect to the client instead of following it', async () => {
    const res = await fetch(`${lb.url}${q('redirect')}`, { headers, redirect: 'manual' });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), '/api/v1/query?query=elsewhere');
  });

  it('answers with the final response after informational (1xx) ones', async () => {
    const res = await fetch(`${lb.url}${q('hints')}`, { headers });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'success', data: 'after hints' });
  });

  it('forwards a checked POST form body rewritten to its canonical query', async () => {
    const res = await fetch(`${lb.url}/api/v1/query`, {
      method: 'POST',
      headers: { ...headers, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'query=x%7Buuid%3D%221001%22%7D',
    });
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as { data: unknown }).data, {
      method: 'POST',
      url: '/api/v1/query',
    });
    assert.equal(backend.state.lastBody, 'query=x%7Buuid%3D%221001%22%7D');
  });

  it('drops a client that leaves in the middle of its body without an error', async () => {
    const sock = connect(Number(lb.address.split(':')[1]), '127.0.0.1');
    await once(sock, 'connect');
    sock.write(
      'POST /api/v1/query HTTP/1.1\r\nHost: x\r\nX-Grafana-User: alice\r\nX-Ceems-Cluster-Id: hpc-0\r\n' +
        'Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nquery=x',
    );
    await new Promise((r) => setTimeout(r, 100));
    sock.destroy();
    await new Promise((r) => setTimeout(r, 300));
    assert.doesNotMatch(lb.stderr(), /request failed|level=ERROR/);
    assert.equal((await fetch(`${lb.url}/health`)).status, 200);
  });

  it('serves HTTP/2 clients over TLS through the same pipeline', async () => {
    const pki = makePki();
    writeFileSync(
      `${tmp.dir}/web.yml`,
      `tls_server_config:\n  cert_file: ${pki.serverCert}\n  key_file: ${pki.serverKey}\n`,
    );
    const tls = await startProgram(
      'ceems_lb',
      [`--config.file=${config}`, `--web.config.file=${tmp.dir}/web.yml`, '--web.listen-address=127.0.0.1:0'],
      { scheme: 'https' },
    );
    const session = http2Connect(tls.url, { ca: pki.caPem });
    try {
      const ask = (path: string, user: string) =>
        http2Get(session, { ':path': path, 'x-grafana-user': user, 'x-ceems-cluster-id': 'hpc-0' });
      const ok = await ask(q('plain'), 'alice');
      assert.equal(ok.status, 200);
      assert.match(ok.body, /"method":"GET"/);
      assert.equal((await ask(q('plain'), 'mallory')).status, 403);
    } finally {
      session.close();
      await tls.stop();
    }
  });

  it('refuses unknown methods and request targets that are not paths', async () => {
    const raw = async (line: string) => {
      const sock = connect(Number(lb.address.split(':')[1]), '127.0.0.1');
      let text = '';
      sock.setEncoding('utf8');
      sock.on('data', (d) => {
        text += d;
      });
      sock.write(
        `${line}\r\nHost: x\r\nX-Grafana-User: boss\r\nX-Ceems-Cluster-Id: hpc-0\r\nConnection: close\r\n\r\n`,
      );
      await once(sock, 'close');
      return text;
    };
    const propfind = await raw('PROPFIND /api/v1/query HTTP/1.1');
    assert.match(propfind, /^HTTP\/1\.1 405 /);
    assert.match(propfind, /allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS/i);
    assert.match(await raw('GET http://example.org/api/v1/status/config HTTP/1.1'), /^HTTP\/1\.1 400 /);
    assert.match(await raw('OPTIONS * HTTP/1.1'), /^HTTP\/1\.1 400 /);
  });

  it('refuses a chunked body that grows beyond 16 MiB with 413 and closes the connection', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${lb.url}/api/v1/query`, {
        method: 'POST',
        headers: { ...headers, 'Content-Type': 'application/x-www-form-urlencoded' },
      });
      req.on('response', (res) => {
        assert.equal(res.headers.connection, 'close');
        res.resume();
        resolve(res.statusCode!);
        req.destroy();
      });
      req.on('error', (e) => (req.destroyed ? undefined : reject(e)));
      const chunk = Buffer.alloc(1024 * 1024, 'a');
      const send = (n: number) => {
        if (n === 0 || req.destroyed) return;
        req.write(chunk, () => send(n - 1));
      };
      req.write('query=');
      send(17);
    });
    assert.equal(status, 413);
    assert.equal((await fetch(`${lb.url}/health`)).status, 200, 'still serving');
  });
});
