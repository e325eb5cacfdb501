// Route access levels (spec §5.2, issue 13): the route decides who may call it, whatever the spelling of
// its path. The path-encoding matrix over every registered route (path-matrix.ts), with and without a
// route prefix; undeclared routes refusing to start; preflights, HEAD, 404/405; identity headers.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Fastify from 'fastify';
import { accessOf, authHook, RouteAccessRegistry } from '../../../src/api/auth.js';
import { ADMIN } from '../../fixtures/api/seed.js';
import { type TestServer, testServer } from '../../fixtures/api/server.js';
import { closeAgent, getRoutes, isPattern, rawGet, runMatrix, type Target } from './path-matrix.js';

const USERS = { 'no user': undefined, bob: 'bob', admin: ADMIN, 'ceems-int-svc': 'ceems-int-svc' };
const ADMINS = new Set(['admin', 'ceems-int-svc']);
/** Passes /units/verify for bob (1003 is in acc1), non-empty rows on /units, /users/admin?role=admin… */
const QUERY = '?uuid=1003&cluster_id=slurm-0&role=admin';

const servers: TestServer[] = [];
async function listening(over: Parameters<typeof testServer>[0] = {}) {
  const s = await testServer({ listenAddresses: ['127.0.0.1:0'], ...over });
  servers.push(s);
  const [bound] = await s.api.server.listen();
  const i = bound!.lastIndexOf(':');
  return { s, target: { host: bound!.slice(0, i), port: Number(bound!.slice(i + 1)) } as Target };
}
after(async () => {
  closeAgent();
  for (const s of servers) await s.close();
});

const pathsOf = (s: TestServer, access: string) =>
  new Set(s.api.routes.filter((r) => r.access === access).map((r) => r.url));

describe('declared access levels', () => {
  let s: TestServer;
  before(async () => {
    s = (await listening()).s;
  });

  test('every route declares one; /admin routes are admin, the spec public paths are public', () => {
    assert.ok(s.api.routes.length > 20);
    for (const r of s.api.routes) {
      if (r.url.endsWith('/admin')) assert.equal(r.access, 'admin', r.url);
      if (/^\/(?:$|health|swagger)|^\/api\/v1\/demo\//.test(r.url)) assert.equal(r.access, 'public', r.url);
    }
    const byUrl = new Map(s.api.routes.map((r) => [r.url, r.access]));
    for (const u of ['units', 'units/verify', 'users', 'projects', 'usage/current', 'usage/global'])
      assert.equal(byUrl.get(`/api/v1/${u}`), 'user', u);
    // every path the router serves is covered by a declaration (the trailing-slash twin by its route's)
    for (const path of getRoutes(s.api.app, s.api.routes)) {
      const declared = byUrl.get(path) ?? byUrl.get(path.replace(/\/$/, ''));
      assert.ok(declared !== undefined, `${path} has no declared access`);
    }
    // routes with parameters or wildcards are not spelled out by the matrix: they must stay public
    for (const r of s.api.routes.filter((x) => isPattern(x.url))) assert.equal(r.access, 'public', r.url);
  });

  test('a route without a declaration (or a bogus one) is refused: the server does not start', async () => {
    const t = await testServer();
    servers.push(t);
    assert.throws(
      () => t.api.app.get('/api/v1/secret/admin', async () => 'rows'),
      /declares no access level/,
    );
    assert.throws(
      () => t.api.app.get('/api/v1/other', { config: { access: 'everyone' as never } }, async () => 'rows'),
      /declares no access level/,
    );
    const bare = Fastify();
    new RouteAccessRegistry(bare);
    assert.throws(() => bare.get('/x', async () => 'x'), /route GET \/x declares no access level/);
    await bare.close();
  });

  test('at request time an undeclared route is admin-only (fail closed)', async () => {
    assert.equal(accessOf(undefined), 'admin');
    assert.equal(accessOf({}), 'admin');
    assert.equal(accessOf({ access: 'Public' }), 'admin');
    assert.equal(accessOf({ access: 'user' }), 'user');
    const app = Fastify();
    app.decorateRequest('ceemsUser', '');
    app.decorateRequest('ceemsAdmin', false);
    app.addHook(
      'onRequest',
      authHook({ userHeaders: ['X-Grafana-User'], isAdminUser: async (u) => u === 'root' }),
    );
    app.get('/undeclared', async () => 'secret rows');
    const bob = await app.inject({ url: '/undeclared', headers: { 'x-grafana-user': 'bob' } });
    assert.equal(bob.statusCode, 403);
    const root = await app.inject({ url: '/undeclared', headers: { 'x-grafana-user': 'root' } });
    assert.equal(root.body, 'secret rows');
    await app.close();
  });
});

describe('path-encoding matrix', () => {
  for (const prefix of ['', '/ceems']) {
    test(`every GET route, every spelling, as no user, bob and admins${prefix ? ` (--web.route-prefix=${prefix})` : ''}`, async () => {
      const { s, target } = await listening({ routePrefix: prefix || '/' });
      const routes = getRoutes(s.api.app, s.api.routes);
      const r = await runMatrix({
        target,
        routes,
        users: USERS,
        adminRoutes: pathsOf(s, 'admin'),
        publicRoutes: pathsOf(s, 'public'),
        admins: ADMINS,
        query: QUERY,
        prefix,
      });
      console.log(
        `matrix${prefix ? ` prefix=${prefix}` : ''}: ${r.routes} routes, ${r.variants} variants, ${r.requests} requests, ${r.refused} refused`,
      );
      assert.deepEqual(r.failures.slice(0, 20), []);
      assert.ok(r.routes >= 20, `${r.routes} routes`);
      assert.ok(r.variants > 1000, `${r.variants} variants`);
    });
  }

  test('the reported cases: encoded admin paths answer a non-admin 403, an admin the same as the canonical path', async () => {
    const { target } = await listening();
    for (const [variant, canonical] of [
      ['/api/v1/units/%61dmin', '/api/v1/units/admin'],
      ['/api/v1/users/admi%6E?role=admin', '/api/v1/users/admin?role=admin'],
      ['/api/v1/users/admi%6e?role=admin', '/api/v1/users/admin?role=admin'],
      ['/api/v1/%75sage/global/admin', '/api/v1/usage/global/admin'],
      ['/api/v1/clusters/%61%64%6D%69%6E', '/api/v1/clusters/admin'],
      ['/%61pi/v1/stats/current/admin', '/api/v1/stats/current/admin'],
    ] as const) {
      const bob = await rawGet(target, variant, { 'X-Grafana-User': 'bob' });
      assert.equal(bob.status, 403, variant);
      assert.match(bob.body, /current user does not have admin privileges/);
      const admin = await rawGet(target, variant, { 'X-Grafana-User': ADMIN });
      assert.deepEqual(admin, await rawGet(target, canonical, { 'X-Grafana-User': ADMIN }), variant);
    }
    // encoded public paths stay public; encoded user paths still need a user
    assert.equal((await rawGet(target, '/api/v1/%64emo/units')).status, 200);
    assert.equal((await rawGet(target, '/%68ealth')).status, 200);
    assert.equal((await rawGet(target, '/api/v1/%75nits')).status, 401);
  });
});

describe('/units/verify and the LB service user', () => {
  let target: Target;
  before(async () => {
    target = (await listening()).target;
  });

  test('verify: pass 200 / fail 403 / no user 401, no admin bypass, whatever the spelling', async () => {
    for (const path of ['/api/v1/units/verify', '/api/v1/units/v%65rify', '/api/v1/%75nits/verify']) {
      const get = (q: string, u?: string) =>
        rawGet(target, `${path}?${q}`, u === undefined ? {} : { 'X-Grafana-User': u });
      const pass = await get('uuid=1003&cluster_id=slurm-0', 'bob');
      assert.deepEqual(pass, { status: 200, body: '{"status":"success","data":null}\n' }, path);
      const fail = await get('uuid=1003&uuid=1004&cluster_id=slurm-0', 'bob');
      assert.equal(fail.status, 403);
      assert.match(fail.body, /user do not have permissions on uuids/);
      assert.equal((await get('uuid=1003&cluster_id=slurm-0', ADMIN)).status, 403, 'no admin bypass');
      assert.equal((await get('uuid=1003&cluster_id=slurm-0', 'ceems-int-svc')).status, 403);
      assert.equal((await get('uuid=1003&cluster_id=slurm-0')).status, 401);
      assert.equal((await get('cluster_id=slurm-0', 'bob')).status, 400);
    }
  });

  test('ceems-int-svc is an admin: /users/admin?role=admin and /clusters/admin as the LB calls them', async () => {
    const h = { 'x-grafana-user': 'ceems-int-svc' };
    const admins = await rawGet(target, '/api/v1/users/admin?role=admin', h);
    assert.equal(admins.status, 200);
    assert.deepEqual(
      JSON.parse(admins.body).data.map((u: { name: string }) => u.name),
      ['ceems-int-svc', ADMIN],
    );
    assert.equal((await rawGet(target, '/api/v1/clusters/admin', h)).status, 200);
  });
});

describe('preflights, HEAD, wrong methods, unmatched paths', () => {
  let s: TestServer;
  before(async () => {
    s = await testServer();
    servers.push(s);
  });

  test('OPTIONS on a protected route never runs its handler: 200, empty, with or without Origin', async () => {
    for (const r of s.api.routes.filter((x) => x.access !== 'public' && x.methods.includes('OPTIONS'))) {
      for (const origin of [undefined, 'https://grafana.example.org']) {
        const res = await s.api.app.inject({
          method: 'OPTIONS',
          url: r.url,
          headers: origin ? { origin, 'access-control-request-method': 'GET' } : {},
        });
        assert.equal(res.statusCode, 200, `${r.url} ${origin}`);
        assert.equal(res.body, '', r.url);
        if (origin) assert.equal(res.headers['access-control-allow-origin'], origin);
      }
    }
  });

  test('HEAD gets the decision of GET', async () => {
    for (const r of s.api.routes.filter((x) => x.methods.includes('HEAD') && !isPattern(x.url))) {
      for (const user of ['bob', ADMIN]) {
        const head = await s.api.app.inject({
          method: 'HEAD',
          url: r.url,
          headers: { 'x-grafana-user': user },
        });
        const get = await s.get(r.url, user);
        assert.equal(head.statusCode, get.status, `HEAD ${r.url} as ${user}`);
        assert.equal(head.body, '');
      }
    }
  });

  test('a wrong method is a 405 without data; route patterns in a path are not parsed (404, no 500)', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH'] as const) {
      const r = await s.api.app.inject({
        method,
        url: '/api/v1/units/admin',
        headers: { 'x-grafana-user': 'bob' },
      });
      assert.equal(r.statusCode, 405);
      assert.equal(r.body, '');
      assert.equal(r.headers.allow, 'GET, OPTIONS');
    }
    for (const url of ['/api/v1/:x(', '/api/v1/:x(^[', '/api/v1/*', '/api/v1/units/:id', '/api/v1/units/*']) {
      const r = await s.api.app.inject({ method: 'POST', url, headers: { 'x-grafana-user': ADMIN } });
      assert.equal(r.statusCode, 404, url);
      assert.equal(r.body, '404 page not found\n');
    }
    const get = await s.get('/api/v1/units/admin/extra', ADMIN);
    assert.deepEqual([get.status, get.body], [404, '404 page not found\n']);
  });
});

describe('identity headers', () => {
  let s: TestServer;
  before(async () => {
    s = await testServer({ userHeaders: ['X-Forwarded-User', 'X-Grafana-User'] });
    servers.push(s);
  });
  const call = (headers: Record<string, string | string[]>, url = '/api/v1/users?field=name') =>
    s.api.app.inject({ url, headers });

  test('first configured header present and non-empty wins', async () => {
    const name = async (h: Record<string, string | string[]>) =>
      JSON.parse((await call(h)).body).data[0].name;
    assert.equal(await name({ 'x-forwarded-user': 'bob', 'x-grafana-user': 'alice' }), 'bob');
    assert.equal(await name({ 'x-forwarded-user': '', 'x-grafana-user': 'alice' }), 'alice');
    assert.equal(await name({ 'x-grafana-user': 'alice' }), 'alice');
  });

  test('a malformed header is a 400 naming the header and the reason, never a fallback to the next one', async () => {
    const cases: [Record<string, string | string[]>, string][] = [
      [{ 'x-grafana-user': ['bob', 'bob'] }, 'invalid X-Grafana-User header: header sent 2 times'],
      [{ 'x-grafana-user': ['bob', ADMIN] }, 'invalid X-Grafana-User header: header sent 2 times'],
      [
        { 'x-forwarded-user': ['bob', ''], 'x-grafana-user': 'alice' },
        'invalid X-Forwarded-User header: header sent 2 times',
      ],
      [
        { 'x-forwarded-user': 'bob,root-admin', 'x-grafana-user': 'alice' },
        'invalid X-Forwarded-User header: character U+002C at position 4 is not allowed in a user name (letters, digits and . _ - @ + \\ : only)',
      ],
      [{ 'x-grafana-user': 'a'.repeat(257) }, 'invalid X-Grafana-User header: value longer than 256 bytes'],
      [
        { 'x-grafana-user': 'bob\u00e9' },
        'invalid X-Grafana-User header: character U+00E9 at position 4 is not allowed in a user name (letters, digits and . _ - @ + \\ : only)',
      ],
    ];
    for (const [headers, error] of cases) {
      for (const url of [
        '/api/v1/users',
        '/api/v1/units/admin',
        '/api/v1/units/verify?uuid=1003&cluster_id=slurm-0',
      ]) {
        const r = await call(headers, url);
        assert.equal(r.statusCode, 400, `${url} ${JSON.stringify(headers)}`);
        assert.equal(r.headers['content-type'], 'application/json');
        assert.deepEqual(JSON.parse(r.body), { status: 'error', data: null, errorType: 'bad_data', error });
      }
    }
  });

  test('no usable header: 401 no user identified; public routes ignore identity headers', async () => {
    const headerSets: Record<string, string>[] = [
      {},
      { 'x-forwarded-user': '' },
      { 'x-forwarded-user': '', 'x-grafana-user': '' },
    ];
    for (const h of headerSets) {
      const r = await call(h);
      assert.equal(r.statusCode, 401);
      assert.deepEqual(JSON.parse(r.body), {
        status: 'error',
        data: null,
        errorType: 'unauthorized',
        error: 'no user identified',
      });
    }
    const bad = { 'x-grafana-user': ['a', 'b'] };
    assert.equal((await call(bad, '/health')).statusCode, 200);
    assert.equal((await call(bad, '/api/v1/demo/units')).statusCode, 200);
  });
});
