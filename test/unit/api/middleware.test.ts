// HTTP layer of the API server: user headers, CORS, rate limit, compression, route prefix, basic auth
// from the web config (spec §5.2–§5.4).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gunzipSync, inflateSync } from 'node:zlib';
import bcrypt from 'bcryptjs';
import { ADMIN } from '../../fixtures/api/seed.js';
import { type TestServer, testServer } from '../../fixtures/api/server.js';

const servers: TestServer[] = [];
async function server(opts: Parameters<typeof testServer>[0] = {}) {
  const s = await testServer(opts);
  servers.push(s);
  return s;
}
after(async () => {
  for (const s of servers) await s.close();
});

describe('user headers', () => {
  test('the first non-empty configured header wins', async () => {
    const s = await server({ userHeaders: ['X-Forwarded-User', 'X-Grafana-User'] });
    const r = await s.get('/api/v1/users?field=name', undefined, {
      'x-forwarded-user': 'bob',
      'x-grafana-user': 'alice',
    });
    assert.deepEqual(r.json.data, [{ cluster_id: '', name: 'bob' }]);
    const r2 = await s.get('/api/v1/users?field=name', undefined, {
      'x-forwarded-user': '',
      'x-grafana-user': 'alice',
    });
    assert.equal(r2.json.data[0].name, 'alice');
    assert.equal((await s.get('/api/v1/users', undefined, { 'x-other': 'alice' })).status, 401);
  });
});

describe('CORS', () => {
  test('echoes a matching Origin with the spec headers; nothing without Origin', async () => {
    const s = await server();
    const r = await s.get('/api/v1/units', 'alice', { origin: 'https://grafana.example.org' });
    assert.equal(r.headers['access-control-allow-origin'], 'https://grafana.example.org');
    assert.equal(r.headers['access-control-allow-methods'], 'GET');
    assert.equal(
      r.headers['access-control-allow-headers'],
      'Accept, Authorization, Content-Type, Origin, X-Grafana-User',
    );
    assert.equal(r.headers['access-control-expose-headers'], 'Date');
    assert.match(String(r.headers.vary), /Origin/);
    const none = await s.get('/api/v1/units', 'alice');
    assert.equal(none.headers['access-control-allow-origin'], undefined);
    assert.equal(none.headers['access-control-allow-methods'], undefined);
  });

  test('the origin regex is anchored; a preflight gets 200 with an empty body', async () => {
    const s = await server({ corsOrigin: 'https://grafana\\.example\\.org' });
    const ok = await s.get('/health', undefined, { origin: 'https://grafana.example.org' });
    assert.equal(ok.headers['access-control-allow-origin'], 'https://grafana.example.org');
    const bad = await s.get('/health', undefined, { origin: 'https://grafana.example.org.evil.com' });
    assert.equal(bad.headers['access-control-allow-origin'], undefined);
    const pre = await s.api.app.inject({
      method: 'OPTIONS',
      url: '/api/v1/units',
      headers: { origin: 'https://grafana.example.org', 'access-control-request-method': 'GET' },
    });
    assert.equal(pre.statusCode, 200);
    assert.equal(pre.body, '');
    assert.equal(pre.headers['content-length'], '0');
    assert.equal(pre.headers['access-control-allow-origin'], 'https://grafana.example.org');
  });
});

describe('rate limit', () => {
  test('N requests per minute per client IP, then 429 with Retry-After; forwarded IPs are separate clients', async () => {
    const s = await server({ maxRequests: 2 });
    const h = { 'x-forwarded-for': '192.0.2.1, 10.0.0.1' };
    assert.equal((await s.get('/api/v1/units', 'alice', h)).status, 200);
    const second = await s.get('/api/v1/units', 'alice', h);
    assert.equal(second.status, 200);
    assert.equal(second.headers['x-ratelimit-limit'], '2');
    assert.equal(second.headers['x-ratelimit-remaining'], '0');
    const third = await s.get('/api/v1/units', 'alice', h);
    assert.equal(third.status, 429);
    assert.equal(third.body, 'Too Many Requests');
    assert.ok(Number(third.headers['retry-after']) > 0);
    assert.ok(third.headers['x-ratelimit-reset'] !== undefined);
    // True-Client-IP takes precedence, X-Real-IP next: both are other clients here
    assert.equal(
      (await s.get('/api/v1/units', 'alice', { ...h, 'true-client-ip': '192.0.2.7' })).status,
      200,
    );
    assert.equal((await s.get('/api/v1/units', 'alice', { 'x-real-ip': '192.0.2.8' })).status, 200);
  });
});

describe('compression', () => {
  test('gzip preferred, deflate otherwise, identity when not asked', async () => {
    const s = await server({ compression: true, compressionLevel: 9 });
    const plain = await s.get('/api/v1/units?running', 'alice');
    const gz = await s.api.app.inject({
      url: '/api/v1/units?running',
      headers: { 'x-grafana-user': 'alice', 'accept-encoding': 'deflate, gzip' },
    });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.match(String(gz.headers.vary), /accept-encoding/i);
    assert.equal(gunzipSync(gz.rawPayload).toString(), plain.body);
    const df = await s.api.app.inject({
      url: '/api/v1/units?running',
      headers: { 'x-grafana-user': 'alice', 'accept-encoding': 'deflate' },
    });
    assert.equal(df.headers['content-encoding'], 'deflate');
    assert.equal(inflateSync(df.rawPayload).toString(), plain.body);
    assert.equal(plain.headers['content-encoding'], undefined);
  });
});

describe('route prefix', () => {
  test('API under <prefix>/api/v1; /, /health and /swagger at the root; demo stays public', async () => {
    const s = await server({ routePrefix: '/ceems/' });
    assert.equal((await s.get('/ceems/api/v1/units', 'alice')).status, 200);
    assert.equal((await s.get('/api/v1/units', 'alice')).status, 404);
    assert.equal((await s.get('/health')).status, 200);
    assert.equal((await s.get('/ceems/api/v1/demo/usage')).status, 200);
    assert.equal((await s.get('/ceems/api/v1/units/admin', 'alice')).status, 403);
    assert.equal((await s.get('/ceems/api/v1/units/admin', ADMIN)).status, 200);
    assert.equal((await s.get('/swagger/doc.json')).json.basePath, '/ceems/api/v1');
    const bare = await server({ routePrefix: 'ceems' });
    assert.equal((await bare.get('/ceems/api/v1/units', 'alice')).status, 200);
  });
});

describe('web config', () => {
  test('basic auth applies to every path, including /health and /demo', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ceems-webcfg-'));
    const file = join(dir, 'web.yml');
    writeFileSync(file, `basic_auth_users:\n  grafana: ${bcrypt.hashSync('s3cret', 4)}\n`);
    try {
      const s = await server({ webConfigFile: file });
      const auth = { authorization: `Basic ${Buffer.from('grafana:s3cret').toString('base64')}` };
      for (const path of ['/health', '/api/v1/demo/units', '/api/v1/units', '/swagger/doc.json']) {
        const r = await s.get(path, 'alice');
        assert.equal(r.status, 401, path);
        assert.match(r.body, /Unauthorized/);
      }
      assert.equal((await s.get('/api/v1/units', 'alice', auth)).status, 200);
      const wrong = { authorization: `Basic ${Buffer.from('grafana:nope').toString('base64')}` };
      assert.equal((await s.get('/health', undefined, wrong)).status, 401);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('health', () => {
  test('503 KO when the DB cannot be opened', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ceems-nodb-'));
    const s = await testServer({}, dir);
    servers.push(s);
    const r = await s.get('/health');
    assert.equal(r.status, 503);
    assert.equal(r.body, 'KO');
    // an API call gets a 500 envelope with the DB error text, not a crash
    const u = await s.get('/api/v1/units', 'alice');
    assert.equal(u.status, 500);
    assert.equal(u.json.errorType, 'internal');
    assert.match(u.json.error, /unable to open|directory does not exist|no such file/i);
  });
});
