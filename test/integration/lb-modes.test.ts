// ceems_lb with ownership from the API server's HTTP API (a fake API server), a Pyroscope listener next
// to the TSDB one, routing-only mode, and start-up errors of bad command lines and configurations.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import bcrypt from 'bcryptjs';
import type { FastifyInstance } from 'fastify';
import { createOwnershipDb, listen, pbString, rawApp, tempDir, writeYaml } from '../fixtures/lb/setup.js';
import { runProgram, type Started, startProgram } from '../helpers/process.js';

/** Fake API server implementing the three endpoints the load balancer calls. */
function fakeApiServer(calls: string[]): FastifyInstance {
  const app = rawApp();
  const svc = (h: unknown) => h === 'ceems-int-svc';
  app.get('/api/v1/clusters/admin', async (req, reply) =>
    svc(req.headers['x-grafana-user'])
      ? { status: 'success', data: [{ id: 'hpc-0', manager: 'slurm' }] }
      : reply.code(403).send({ status: 'error' }),
  );
  app.get('/api/v1/users/admin', async (req, reply) => {
    const role = (req.query as { role?: string }).role;
    if (!svc(req.headers['x-grafana-user']) || role !== 'admin')
      return reply.code(403).send({ status: 'error' });
    return { status: 'success', data: [{ cluster_id: 'all', name: 'boss', tags: ['ceems'] }] };
  });
  app.get('/api/v1/units/verify', async (req, reply) => {
    const url = new URL(req.url, 'http://x');
    calls.push(url.search);
    const uuids = url.searchParams.getAll('uuid');
    const owned =
      req.headers['x-grafana-user'] === 'alice' && url.searchParams.getAll('cluster_id').join() === 'hpc-0';
    if (owned && uuids.length > 0 && uuids.every((u) => u === '1001' || u === '1002'))
      return { status: 'success', data: null };
    return reply.code(403).send({
      status: 'error',
      data: null,
      errorType: 'forbidden',
      error: 'user do not have permissions on uuids',
    });
  });
  return app;
}

function echoBackend(name: string): FastifyInstance {
  const app = rawApp();
  app.all('*', async (req) => ({
    backend: name,
    path: req.url,
    user: req.headers['x-ceems-logged-user'] ?? null,
    authorization: req.headers.authorization ?? null,
  }));
  return app;
}

describe('ceems_lb with the API server, Pyroscope and routing only', { timeout: 60_000 }, () => {
  const tmp = tempDir('ceems-lb-modes-');
  const verifyCalls: string[] = [];
  const api = fakeApiServer(verifyCalls);
  const tsdb = echoBackend('tsdb');
  const pyro = echoBackend('pyroscope');
  let apiUrl = '';
  let tsdbUrl = '';
  let pyroUrl = '';
  let lb: Started;
  let tsdbLb = '';
  let pyroLb = '';

  before(async () => {
    [apiUrl, tsdbUrl, pyroUrl] = await Promise.all([listen(api), listen(tsdb), listen(pyro)]);
    const config = writeYaml(`${tmp.dir}/config.yml`, {
      ceems_api_server: { web: { url: apiUrl, requests_limit: 30 } },
      ceems_lb: {
        strategy: 'least-connection',
        backends: [
          { id: 'hpc-0', pyroscope: [{ web: { url: pyroUrl } }], tsdb: [{ web: { url: tsdbUrl } }] },
        ],
      },
      updaters: [{ id: 'ignored' }],
    });
    lb = await startProgram('ceems_lb', [
      `--config.file=${config}`,
      '--web.listen-address=127.0.0.1:0',
      '--web.listen-address=127.0.0.1:0',
    ]);
    await new Promise((r) => setTimeout(r, 200));
    const addrs = [...lb.stderr().matchAll(/msg="Listening on" address=(\S+)/g)].map((m) => `http://${m[1]}`);
    [tsdbLb, pyroLb] = addrs;
    assert.equal(addrs.length, 2);
  });

  after(async () => {
    await lb?.stop();
    await Promise.all([api.close(), tsdb.close(), pyro.close()]);
    tmp.cleanup();
  });

  const h = (user: string, extra: Record<string, string> = {}) => ({
    'X-Grafana-User': user,
    'X-Ceems-Cluster-Id': 'hpc-0',
    ...extra,
  });
  const query = (user: string, q: string) =>
    fetch(`${tsdbLb}/api/v1/query?query=${encodeURIComponent(q)}`, { headers: h(user) });

  it('serves the first backend type (tsdb) on the first address', async () => {
    const r = await query('alice', 'foo{uuid="1001"}');
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), {
      backend: 'tsdb',
      path: '/api/v1/query?query=foo%7Buuid%3D%221001%22%7D',
      user: 'alice',
      authorization: null,
    });
  });

  it('checks ownership through /units/verify and caches positive answers', async () => {
    assert.equal((await query('alice', 'foo{uuid="2001"}')).status, 403);
    assert.equal((await query('bob', 'foo{uuid="1001"}')).status, 403);
    const before = verifyCalls.length;
    assert.equal((await query('alice', 'foo{uuid=~"1001|1002"}')).status, 200);
    assert.equal((await query('alice', 'foo{uuid="1002"} + foo{uuid="1001"}')).status, 200);
    assert.equal(verifyCalls.length - before, 1, 'second request answered from the cache');
    assert.match(verifyCalls.at(-1)!, /uuid=1002.*cluster_id=hpc-0|cluster_id=hpc-0.*uuid=1002/);
  });

  it('reads admins from /users/admin', async () => {
    assert.equal((await query('boss', 'up')).status, 200);
    assert.equal((await query('alice', 'up')).status, 403);
  });

  it('checks Pyroscope selectors in protobuf, Connect JSON and gzip bodies', async () => {
    const call = (
      rpc: string,
      body: Buffer | string,
      type: string,
      extra: Record<string, string> = {},
      user = 'alice',
    ) =>
      fetch(`${pyroLb}/querier.v1.QuerierService/${rpc}`, {
        method: 'POST',
        headers: { ...h(user), 'Content-Type': type, ...extra },
        body,
      });
    const sel = (uuid: string) => `{service_name="${uuid}"}`;
    const smst = (uuid: string) =>
      Buffer.concat([
        pbString(1, 'process_cpu:cpu:nanoseconds:cpu:nanoseconds'),
        pbString(2, sel(uuid)),
        Buffer.from([0x18, 0x01]),
      ]);
    assert.equal((await call('SelectMergeStacktraces', smst('1001'), 'application/proto')).status, 200);
    assert.equal((await call('SelectMergeStacktraces', smst('2001'), 'application/proto')).status, 403);
    const json = JSON.stringify({ profileTypeID: 'cpu', labelSelector: sel('1001'), start: 1, end: 2 });
    assert.equal((await call('SelectMergeStacktraces', json, 'application/json')).status, 200);
    assert.equal(
      (
        await call(
          'SelectMergeStacktraces',
          JSON.stringify({ label_selector: '{service_name=~".+"}' }),
          'application/json',
        )
      ).status,
      403,
    );
    const gz = gzipSync(JSON.stringify({ matchers: [sel('1001'), sel('1002')] }));
    const ok = await call('LabelNames', gz, 'application/json', { 'Content-Encoding': 'gzip' });
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { backend: string }).backend, 'pyroscope');
    assert.equal(
      (
        await call(
          'LabelValues',
          Buffer.concat([pbString(1, 'service_name'), pbString(2, sel('1001'))]),
          'application/proto',
        )
      ).status,
      200,
    );
    assert.equal(
      (
        await call(
          'LabelValues',
          Buffer.concat([pbString(1, 'service_name'), pbString(2, sel('2001'))]),
          'application/proto',
        )
      ).status,
      403,
    );
    assert.equal(
      (await call('LabelNames', JSON.stringify({ matchers: [] }), 'application/json')).status,
      403,
      'empty matchers',
    );
    assert.equal((await call('LabelNames', '', 'application/grpc')).status, 400, 'unsupported body');
    assert.equal(
      (await call('LabelNames', Buffer.from([0x0a, 0x05, 0x41]), 'application/proto')).status,
      400,
      'truncated protobuf',
    );
    assert.equal((await call('Series', '{}', 'application/json')).status, 403, 'endpoint not allowed');
    assert.equal(
      (await call('SelectMergeStacktraces', smst('2001'), 'application/proto', {}, 'boss')).status,
      200,
      'admin',
    );
  });
});

describe('ceems_lb routing only and start-up errors', { timeout: 60_000 }, () => {
  const tmp = tempDir('ceems-lb-errors-');
  const backend = echoBackend('tsdb');
  let url = '';
  before(async () => {
    url = await listen(backend);
  });
  after(async () => {
    await backend.close();
    tmp.cleanup();
  });

  it('forwards everything when neither DB nor API is configured; unknown keys are warnings', async () => {
    const config = writeYaml(`${tmp.dir}/plain.yml`, {
      ceems_lb: { strategi: 'x', backends: [{ id: 'c1', tsdb: [{ web: { url } }] }] },
      ceems_lbb: {},
    });
    const lb = await startProgram('ceems_lb', [
      `--config.file=${config}`,
      '--web.listen-address=127.0.0.1:0',
    ]);
    try {
      assert.match(lb.stderr(), /no access control/);
      for (const key of ['ceems_lb.strategi', 'ceems_lbb'])
        assert.match(
          lb.stderr(),
          new RegExp(`level=WARN msg="Unknown configuration key ignored" key=${key} file=${config}\n`),
        );
      const r = await fetch(`${lb.url}/api/v1/status/config`, { headers: { 'X-Ceems-Cluster-Id': 'c1' } });
      assert.equal(r.status, 200);
      assert.equal((await fetch(`${lb.url}/api/v1/query?query=up`)).status, 400, 'cluster id still required');
    } finally {
      await lb.stop();
    }
  });

  it('applies the web config to the front end and the client config to the backend', async () => {
    writeFileSync(`${tmp.dir}/web.yml`, `basic_auth_users:\n  grafana: ${bcrypt.hashSync('secret', 4)}\n`);
    const config = writeYaml(`${tmp.dir}/auth.yml`, {
      ceems_lb: {
        backends: [
          { id: 'c1', tsdb: [{ web: { url, basic_auth: { username: 'lb', password_file: 'pw.txt' } } }] },
        ],
      },
    });
    writeFileSync(`${tmp.dir}/pw.txt`, 'backend-pw\n');
    const lb = await startProgram('ceems_lb', [
      `--config.file=${config}`,
      `--web.config.file=${tmp.dir}/web.yml`,
      '--web.listen-address=127.0.0.1:0',
    ]);
    try {
      const path = `${lb.url}/api/v1/query?query=up`;
      const anonymous = await fetch(path, { headers: { 'X-Ceems-Cluster-Id': 'c1' } });
      assert.equal(anonymous.status, 401);
      assert.equal(await anonymous.text(), 'Unauthorized\n');
      const authorized = await fetch(path, {
        headers: {
          'X-Ceems-Cluster-Id': 'c1',
          Authorization: `Basic ${Buffer.from('grafana:secret').toString('base64')}`,
        },
      });
      assert.equal(authorized.status, 200);
      const echo = (await authorized.json()) as { authorization: string };
      assert.equal(echo.authorization, `Basic ${Buffer.from('lb:backend-pw').toString('base64')}`);
    } finally {
      await lb.stop();
    }
  });

  it('retries on another backend when one resets connections, and times out a hanging one', async () => {
    // Accepts TCP (so health checks pass) but drops every request; a second one never answers.
    const resetting = createServer((sock) => sock.once('data', () => sock.destroy()));
    const hanging = createServer(() => {});
    const sockets: Socket[] = [];
    hanging.on('connection', (s) => sockets.push(s));
    await Promise.all(
      [resetting, hanging].map((srv) => new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))),
    );
    const portOf = (srv: Server) => (srv.address() as AddressInfo).port;
    const config = writeYaml(`${tmp.dir}/retry.yml`, {
      ceems_lb: {
        backends: [
          { id: 'c1', tsdb: [{ web: { url: `http://127.0.0.1:${portOf(resetting)}` } }, { web: { url } }] },
          { id: 'c2', tsdb: [{ web: { url: `http://127.0.0.1:${portOf(hanging)}` } }] },
        ],
      },
    });
    const lb = await startProgram('ceems_lb', [
      `--config.file=${config}`,
      '--web.listen-address=127.0.0.1:0',
      '--lb.backend-timeout=500ms',
    ]);
    try {
      for (let i = 0; i < 4; i++) {
        const r = await fetch(`${lb.url}/api/v1/query?query=up`, { headers: { 'X-Ceems-Cluster-Id': 'c1' } });
        assert.equal(r.status, 200);
        assert.equal(((await r.json()) as { backend: string }).backend, 'tsdb');
      }
      assert.match(lb.stderr(), /Backend marked as dead/);
      const t0 = Date.now();
      const r = await fetch(`${lb.url}/api/v1/query?query=up`, {
        headers: { 'X-Ceems-Cluster-Id': 'c2' },
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(r.status, 503);
      assert.ok(Date.now() - t0 < 5000, `answered after ${Date.now() - t0} ms`);
    } finally {
      await lb.stop();
      for (const s of sockets) s.destroy();
      await Promise.all([resetting, hanging].map((srv) => new Promise((r) => srv.close(r))));
    }
  });

  const fails = async (doc: unknown, args: string[], message: RegExp) => {
    const file = writeYaml(`${tmp.dir}/bad.yml`, doc);
    const r = await runProgram('ceems_lb', [
      `--config.file=${file}`,
      '--web.listen-address=127.0.0.1:0',
      ...args,
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, message);
  };
  const tsdbOnly = (extra: object = {}) => ({
    ceems_lb: { backends: [{ id: 'c1', tsdb: [{ web: { url } }] }], ...extra },
  });

  it('requires --config.file', async () => {
    const r = await runProgram('ceems_lb', []);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--config\.file is required/);
  });

  it('names what is wrong in the configuration', async () => {
    await fails(tsdbOnly({ strategy: 'random' }), [], /invalid strategy 'random'/);
    await fails(
      { ceems_lb: { backends: [{ tsdb: [{ web: { url } }] }] } },
      [],
      /missing ID for backend\(s\)/,
    );
    await fails(
      { ceems_lb: { backends: [{ id: 'c1' }] } },
      [],
      /missing TSDB and Pyroscope URL\(s\) for backend\(s\)/,
    );
    await fails(
      { ceems_lb: { backends: [{ id: 'c1', tsdb: [{ web: { url: 'ftp://x' } }] }] } },
      [],
      /ceems_lb\.backends\.0\.tsdb\.0\.web\.url/,
    );
    await fails(
      { ...tsdbOnly(), clusters: [{ id: 'other' }] },
      [],
      /backend id 'c1' is not an id of clusters/,
    );
    await fails(
      { ...tsdbOnly(), ceems_api_server: { data: { path: `${tmp.dir}/nowhere` } } },
      [],
      /ceems\.db not found .* refusing to run without access control/,
    );
    await fails(
      { ceems_lb: { backends: [{ id: 'c1', tsdb: [{ web: { url } }], pyroscope: [{ web: { url } }] }] } },
      [],
      /insufficient --web\.listen-address\. Expected 2 got 1/,
    );
  });

  it('refuses backend ids unknown to the API server DB', async () => {
    const dbDir = tempDir('ceems-lb-db-');
    try {
      createOwnershipDb(dbDir.dir, {
        units: [{ cluster: 'hpc-0', uuid: '1', project: 'p', user: 'u' }],
        projects: [],
        admins: [],
      });
      await fails(
        { ...tsdbOnly(), ceems_api_server: { data: { path: dbDir.dir } } },
        [],
        /unknown cluster ID: c1\. Cluster IDs in CEEMS DB are hpc-0/,
      );
    } finally {
      dbDir.cleanup();
    }
  });

  it('rejects bad flags', async () => {
    const r = await runProgram('ceems_lb', ['--log.level=loud']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /invalid value 'loud' for flag '--log\.level'/);
  });
});
