// ceems_lb under load and abuse: concurrent clients while a backend dies, huge and malformed requests,
// spoofed identity headers, endpoint and path checks, retries, filter_labels — with fake backends that
// echo what they received so every response can be matched to its client.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createOwnershipDb, listen, rawApp, tempDir, writeYaml } from '../fixtures/lb/setup.js';
import { type Started, startProgram } from '../helpers/process.js';

interface Echo {
  backend: string;
  tag: string | null;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A fake Prometheus that answers after a short delay with what it received. */
function echoBackend(name: string): FastifyInstance {
  const app = rawApp();
  app.all('*', async (req, reply) => {
    const url = new URL(req.url, 'http://x');
    await new Promise((r) => setTimeout(r, Math.random() * 15));
    const echo: Echo = {
      backend: name,
      tag: url.searchParams.get('tag'),
      path: url.pathname,
      headers: req.headers,
      body: req.body ? (req.body as Buffer).toString('utf8') : '',
    };
    return reply.type('application/json').send({
      status: 'success',
      data: {
        resultType: 'vector',
        result: [{ metric: { uuid: '1001', instance: 'node:9010', job: 'x' }, value: [1, '1'] }],
      },
      echo,
    });
  });
  return app;
}

/** GET with the path sent byte for byte (fetch would normalise dot segments) and repeatable headers. */
function rawGet(
  base: string,
  path: string,
  headers: Record<string, string | string[]>,
): Promise<{ status: number; text: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, headers, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1]);
}

describe('ceems_lb robustness', { timeout: 120_000 }, () => {
  const tmp = tempDir('ceems-lb-robust-');
  const backends = [echoBackend('b1'), echoBackend('b2'), echoBackend('filtered')];
  let urls: string[] = [];
  let lb: Started;
  const headers = (user = 'alice', extra: Record<string, string> = {}) => ({
    'X-Grafana-User': user,
    'X-Ceems-Cluster-Id': 'hpc-0',
    ...extra,
  });
  const get = (path: string, h: Record<string, string> = headers()) =>
    fetch(`${lb.url}${path}`, { headers: h, signal: AbortSignal.timeout(10_000) });
  const q = (query: string, extra = '') => `/api/v1/query?query=${encodeURIComponent(query)}${extra}`;

  before(async () => {
    urls = await Promise.all(backends.map(listen));
    createOwnershipDb(tmp.dir, {
      units: [
        { cluster: 'hpc-0', uuid: '1001', project: 'acc1', user: 'alice' },
        { cluster: 'hpc-0', uuid: '2001', project: 'acc2', user: 'bob' },
        { cluster: 'hpc-f', uuid: '1001', project: 'acc1', user: 'alice' },
        { cluster: 'hpc-down', uuid: '1001', project: 'acc1', user: 'alice' },
      ],
      projects: [
        { cluster: 'hpc-0', name: 'acc1', users: ['alice'] },
        { cluster: 'hpc-0', name: 'acc2', users: ['bob'] },
        // membership counts per cluster
        { cluster: 'hpc-f', name: 'acc1', users: ['alice'] },
        { cluster: 'hpc-down', name: 'acc1', users: ['alice'] },
      ],
      admins: ['boss'],
    });
    const config = writeYaml(`${tmp.dir}/config.yml`, {
      ceems_api_server: { data: { path: tmp.dir } },
      ceems_lb: {
        backends: [
          { id: 'hpc-0', tsdb: [{ web: { url: urls[0] } }, { web: { url: urls[1] } }] },
          { id: 'hpc-f', tsdb: [{ web: { url: `${urls[2]}/prefix` }, filter_labels: ['instance'] }] },
          { id: 'hpc-down', tsdb: [{ web: { url: 'http://127.0.0.1:1' } }] },
        ],
      },
    });
    lb = await startProgram('ceems_lb', [`--config.file=${config}`, '--web.listen-address=127.0.0.1:0']);
  });

  after(async () => {
    await lb?.stop();
    await Promise.all(backends.map((b) => b.close()));
    tmp.cleanup();
  });

  it('answers /health without any header', async () => {
    const r = await fetch(`${lb.url}/health`);
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'CEEMS LB Server is healthy');
  });

  it('rejects a missing or unknown cluster id and a missing user with the spec bodies', async () => {
    const noCluster = await get(q('up'), { 'X-Grafana-User': 'alice' });
    assert.equal(noCluster.status, 400);
    assert.equal(noCluster.headers.get('content-type'), 'application/json');
    assert.equal(
      await noCluster.text(),
      '{"status":"error","data":null,"errorType":"bad_request","error":"invalid cluster ID. Set cluster ID using X-Ceems-Cluster-Id header in Prometheus datasource."}\n',
    );
    assert.equal((await get(q('up'), headers('alice', { 'X-Ceems-Cluster-Id': 'nope' }))).status, 400);
    const noUser = await get(q('up'), { 'X-Ceems-Cluster-Id': 'hpc-0' });
    assert.equal(noUser.status, 401);
    assert.match(await noUser.text(), /"errorType":"unauthorized","error":"no user header found/);
  });

  it('refuses endpoints outside the allowed list and ambiguous paths', async () => {
    for (const path of [
      '/api/v1/admin/tsdb/delete_series?match[]=up',
      '/api/v1/status/config',
      '/api/v1/query/../admin/tsdb/snapshot',
      '/api/v1/./query?query=up',
      '//api/v1/query?query=x%7Buuid%3D%221001%22%7D',
      '/api/v1%2fquery?query=x%7Buuid%3D%221001%22%7D',
      '/api/v1/%71uery?query=x%7Buuid%3D%221001%22%7D',
      '/federate?match[]=up',
    ]) {
      const r = await rawGet(lb.url, path, headers());
      assert.equal(r.status, 403, path);
      assert.match(r.text, /user do not have permissions to this resource/, path);
    }
  });

  it('forwards allowed endpoints under a path prefix unchanged', async () => {
    const r = await get(`/some/prefix${q('x{uuid="1001"}')}`);
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as { echo: Echo }).echo.path, '/some/prefix/api/v1/query');
  });

  it('denies series/labels/values without match[] and queries without a query', async () => {
    for (const path of ['/api/v1/series', '/api/v1/labels', '/api/v1/label/uuid/values', '/api/v1/query']) {
      const r = await get(path);
      assert.equal(r.status, 403, path);
      assert.match(await r.text(), /permissions to view unit metrics/);
    }
  });

  it('cannot be tricked by spoofed identity headers', async () => {
    const spoof = {
      'X-Ceems-Admin-User': 'alice',
      'X-Ceems-Logged-User': 'boss',
      Authorization: 'Basic Ym9zczpib3Nz',
    };
    assert.equal((await get(q('up'), headers('alice', spoof))).status, 403);
    const ok = await get(q('x{uuid="1001"}'), headers('alice', spoof));
    assert.equal(ok.status, 200);
    const { echo } = (await ok.json()) as { echo: Echo };
    assert.equal(echo.headers['x-ceems-logged-user'], 'alice');
    assert.equal(echo.headers['x-ceems-admin-user'], undefined);
    assert.equal(echo.headers.authorization, undefined);
    assert.equal(echo.headers['x-grafana-user'], 'alice');
  });

  it('refuses malformed identity and cluster headers like the API server (common/identity.ts)', async () => {
    const own = q('x{uuid="1001"}');
    const cases: Array<[string, Record<string, string | string[]>, number, RegExp]> = [
      // Two user headers could be read differently by another hop: refused, even when equal.
      ['two users', { 'X-Grafana-User': ['boss', 'alice'] }, 400, /header sent 2 times/],
      ['same user twice', { 'X-Grafana-User': ['alice', 'alice'] }, 400, /header sent 2 times/],
      ['empty user', { 'X-Grafana-User': '' }, 401, /no user header found/],
      ['oversized user', { 'X-Grafana-User': 'a'.repeat(257) }, 400, /longer than 256 bytes/],
      ['non-ASCII user', { 'X-Grafana-User': 'alic\u00e9' }, 400, /U\+00E9/],
      ['comma-joined users', { 'X-Grafana-User': 'alice,boss' }, 400, /U\+002C/],
      [
        'two clusters',
        { 'X-Grafana-User': 'alice', 'X-Ceems-Cluster-Id': ['hpc-0', 'hpc-0'] },
        400,
        /X-Ceems-Cluster-Id header: header sent 2 times/,
      ],
    ];
    for (const [what, hdrs, status, body] of cases) {
      const r = await rawGet(lb.url, own, { 'X-Ceems-Cluster-Id': 'hpc-0', ...hdrs });
      assert.equal(r.status, status, what);
      assert.match(r.text, body, what);
    }
    assert.equal((await rawGet(lb.url, own, headers('alice'))).status, 200, 'well-formed headers still pass');
  });

  it('lets admins through without the selector rule', async () => {
    const r = await get(q('up'), headers('boss'));
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as { echo: Echo }).echo.headers['x-ceems-logged-user'], 'boss');
    assert.equal((await get('/api/v1/status/config', headers('boss'))).status, 200);
  });

  it('rejects malformed forms, invalid UTF-8 and unsupported bodies with 400', async () => {
    const post = (body: string | Buffer, type: string, extra: Record<string, string> = {}) =>
      fetch(`${lb.url}/api/v1/query`, {
        method: 'POST',
        headers: { ...headers(), 'Content-Type': type, ...extra },
        body,
        signal: AbortSignal.timeout(10_000),
      });
    const cases: Array<[string, Promise<Response>]> = [
      ['bad escape', get('/api/v1/query?query=%zz')],
      ['invalid UTF-8 in URL', get('/api/v1/query?query=x%7Buuid%3D%22%ff%fe%22%7D')],
      [
        'invalid UTF-8 in body',
        post(
          Buffer.from([0x71, 0x75, 0x65, 0x72, 0x79, 0x3d, 0xc3, 0x28]),
          'application/x-www-form-urlencoded',
        ),
      ],
      ['semicolon separator', get('/api/v1/query?x;query=up')],
      ['JSON body', post('{"query":"up"}', 'application/json')],
      ['gzip body', post('query=up', 'application/x-www-form-urlencoded', { 'Content-Encoding': 'gzip' })],
      ['multipart without boundary', post('--x\r\n', 'multipart/form-data')],
      [
        'truncated multipart',
        post(
          '--b\r\nContent-Disposition: form-data; name="query"\r\n\r\nup',
          'multipart/form-data; boundary=b',
        ),
      ],
      [
        'quoted-printable part',
        post(
          '--b\r\nContent-Disposition: form-data; name="query"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nx{uuid=3D"1001"}\r\n--b--\r\n',
          'multipart/form-data; boundary=b',
        ),
      ],
      ['unparseable query', get(q('x{uuid="1001"'))],
    ];
    for (const [name, p] of cases) {
      const r = await p;
      assert.equal(r.status, 400, name);
      assert.match(await r.text(), /"errorType":"bad_data"/, name);
    }
  });

  it('copes with huge queries: large allowed bodies pass, oversized ones are refused', async () => {
    const post = (query: string) =>
      fetch(`${lb.url}/api/v1/query`, {
        method: 'POST',
        headers: { ...headers(), 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ query }),
        signal: AbortSignal.timeout(20_000),
      });
    const wide = Array.from({ length: 20_000 }, (_, i) => `m${i}{uuid="1001"}`).join(',');
    assert.equal((await post(`count(group(${wide}))`)).status, 200, '20 000 selectors, all pinned');
    assert.equal(
      (await post(`count(group(${wide},up))`)).status,
      403,
      'the 20 001st selector is checked too',
    );
    const long = `sum(m{uuid="1001", a=~"${'x|'.repeat(300_000)}y"})`;
    assert.equal((await post(long)).status, 200, '600 kB query');
    const chain = Array.from({ length: 20_000 }, (_, i) => `m${i}{uuid="1001"}`).join(' + ');
    const r = await post(chain);
    assert.equal(r.status, 400, 'operator chains beyond the parser limit are refused');
    assert.match(await r.text(), /invalid query: 1:\d+: parse error/);
    // The LB answers 413 from Content-Length alone and closes; a client still streaming the body may then
    // see EPIPE instead of the answer, so only the headers are sent here.
    const hugeStatus = await new Promise<number | undefined>((resolve, reject) => {
      const req = request(`${lb.url}/api/v1/query`, {
        method: 'POST',
        headers: {
          ...headers(),
          'Content-Type': 'application/x-www-form-urlencoded',
          'Content-Length': String(17 * 1024 * 1024),
        },
        timeout: 20_000,
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode);
        req.destroy();
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    assert.equal(hugeStatus, 413);
    const longUrl = await get(q(`x{uuid="1001"}${' '.repeat(100_000)}`));
    assert.ok(longUrl.status >= 400 && longUrl.status < 500, `long URL → ${longUrl.status}`);
    assert.equal((await fetch(`${lb.url}/health`)).status, 200, 'still alive');
  });

  it('removes filter_labels from responses and keeps everything else', async () => {
    const r = await get(q('x{uuid="1001"}'), headers('alice', { 'X-Ceems-Cluster-Id': 'hpc-f' }));
    assert.equal(r.status, 200);
    const body = (await r.json()) as {
      data: { result: Array<{ metric: Record<string, string> }> };
      echo: Echo;
    };
    assert.deepEqual(body.data.result[0]!.metric, { uuid: '1001', job: 'x' });
    assert.equal(body.echo.path, '/prefix/api/v1/query');
  });

  it('answers 503 when no backend of the cluster is reachable', async () => {
    const r = await get(q('x{uuid="1001"}'), headers('alice', { 'X-Ceems-Cluster-Id': 'hpc-down' }));
    assert.equal(r.status, 503);
    assert.equal(await r.text(), 'Service not available\n');
  });

  it('serves many concurrent clients correctly while a backend dies', async () => {
    const rssBefore = rssKiB(lb.pid);
    const total = 600;
    let next = 0;
    let done = 0;
    const results: Array<{ status: number | 'error'; ok: boolean; backend?: string }> = [];
    const worker = async () => {
      while (next < total) {
        const tag = `t${next++}`;
        try {
          const r = await get(q('x{uuid="1001"}', `&tag=${tag}`));
          const text = await r.text();
          if (r.status === 200) {
            const { echo } = JSON.parse(text) as { echo: Echo };
            results.push({ status: 200, ok: echo.tag === tag, backend: echo.backend });
          } else {
            results.push({ status: r.status, ok: r.status === 503 });
          }
        } catch (e) {
          results.push({ status: 'error', ok: (e as Error).name !== 'TimeoutError' });
        }
        if (++done === total / 3) await backends[0]!.close();
      }
    };
    await Promise.all(Array.from({ length: 40 }, worker));
    assert.equal(results.length, total);
    assert.deepEqual(
      results.filter((r) => !r.ok),
      [],
      'no mismatched tag, no timeout, only 200/503',
    );
    const served = results.filter((r) => r.status === 200);
    assert.ok(served.length >= total * 0.97, `${served.length} of ${total} served`);
    assert.ok(served.some((r) => r.backend === 'b1') && served.some((r) => r.backend === 'b2'));
    const growth = rssKiB(lb.pid) - rssBefore;
    assert.ok(growth < 150 * 1024, `RSS grew by ${growth} KiB`);
  });
});
