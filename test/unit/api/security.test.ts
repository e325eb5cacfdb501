// Security of the API: SQL injection attempts in every parameter, project isolation across every route
// and parameter combination, spoofed internal headers (spec §5.2, §14, D-API-1, D-API-5, D-API-6).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openDatabase } from '../../../src/common/sqlite.js';
import { ADMIN, NOW, UNITS } from '../../fixtures/api/seed.js';
import { type TestServer, testServer } from '../../fixtures/api/server.js';

let s: TestServer;
before(async () => {
  s = await testServer({ maxPeriodMs: 7 * 24 * 3600_000 });
});
after(() => s.close());

const INJECTIONS = [
  "' OR '1'='1",
  "1' OR 1=1 --",
  "'; DROP TABLE units; --",
  'alice',
  "alice' --",
  '") OR 1=1 --',
  '1) UNION SELECT name, name FROM users --',
  '*',
  '%',
  'uuid, (SELECT group_concat(name) FROM users) AS name',
  'username FROM units --',
  '\u0000',
  'x'.repeat(5000),
  // numeric edge cases for from/to
  '999999999999999',
  '-999999999999999',
  '1e10',
  '0x10',
  ' 1',
  '',
];
const PARAMS = [
  'field',
  'groupby',
  'project',
  'uuid',
  'user',
  'timezone',
  'from',
  'to',
  'cluster_id',
  'role',
  'running',
];
const USER_ROUTES = [
  '/units',
  '/units/footprint',
  '/users',
  '/projects',
  '/usage/current',
  '/usage/global',
  '/units/verify',
];
/** Routes listing units, each row with its uuid and owner. */
const UNIT_LISTS = new Set(['/units', '/units/footprint']);
const ADMIN_ROUTES = [
  '/units/admin',
  '/units/footprint/admin',
  '/users/admin',
  '/projects/admin',
  '/usage/current/admin',
  '/usage/global/admin',
  '/stats/current/admin',
  '/stats/global/admin',
  '/clusters/admin',
];

/** What bob (member of acc1 only) may ever see. */
const BOB = {
  uuids: new Set(['1003']),
  users: new Set(['bob', 'alice', 'acc1:unknown']),
  projects: new Set(['acc1']),
};

function assertBobOnly(route: string, json: { data: Record<string, unknown>[] | null }, what: string) {
  for (const row of json.data ?? []) {
    if (UNIT_LISTS.has(route)) {
      if (row.uuid) assert.ok(BOB.uuids.has(row.uuid as string), `${what}: leaked unit ${row.uuid}`);
      if (row.username) assert.equal(row.username, 'bob', what);
    }
    if (row.project)
      assert.ok(BOB.projects.has(row.project as string), `${what}: leaked project ${row.project}`);
    if (route === '/projects' && row.name) assert.ok(BOB.projects.has(row.name as string), what);
    if (route === '/users' && row.name) assert.ok(['bob', 'acc1:unknown'].includes(row.name as string), what);
    if (row.username)
      assert.ok(BOB.users.has(row.username as string), `${what}: leaked user ${row.username}`);
  }
}

describe('SQL injection', () => {
  test('every parameter of every route: rejected (4xx) or neutralised, never a 500, DB intact', async () => {
    let requests = 0;
    for (const param of PARAMS) {
      for (const payload of INJECTIONS) {
        const q = `${param}=${encodeURIComponent(payload)}`;
        for (const route of USER_ROUTES) {
          const r = await s.get(`/api/v1${route}?${q}&cluster_id=slurm-0`, 'bob');
          requests++;
          assert.ok(
            [200, 400, 403].includes(r.status),
            `${route}?${q} → ${r.status} ${r.body.slice(0, 200)}`,
          );
          assert.equal(typeof r.json, 'object', `${route}?${q}: JSON body`);
          if (r.status === 200) assertBobOnly(route, r.json, `${route}?${q}`);
          else assert.equal(r.json.status, 'error');
        }
        for (const route of ADMIN_ROUTES) {
          const r = await s.get(`/api/v1${route}?${q}`, ADMIN);
          requests++;
          assert.ok([200, 400].includes(r.status), `${route}?${q} → ${r.status} ${r.body.slice(0, 200)}`);
        }
      }
    }
    assert.ok(requests > 2000);
    const db = openDatabase(`${s.dataDir}/ceems.db`, { readOnly: true });
    assert.deepEqual({ ...db.prepare('SELECT COUNT(*) AS n FROM units').get() }, { n: UNITS.length });
    db.close();
  });

  test('injection in the user header is refused as a user name (400), never run', async () => {
    for (const payload of INJECTIONS.slice(0, 7).filter((p) => p !== 'alice')) {
      for (const route of ['/units?running', '/units/admin']) {
        const r = await s.get(`/api/v1${route}`, payload);
        assert.equal(r.status, 400, `${route} ${payload}`);
        assert.equal(r.json.errorType, 'bad_data');
        assert.match(r.json.error, /^invalid X-Grafana-User header: /);
      }
    }
    // a well-formed but unknown name is only a user without units
    const r = await s.get('/api/v1/units?running', 'nobody-here');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.data, []);
    assert.equal((await s.get('/api/v1/units/admin', 'nobody-here')).status, 403);
  });

  test('a time zone cannot inject either: unknown zones fall back to the DB zone', async () => {
    const r = await s.get(`/api/v1/units?uuid=1003&timezone=${encodeURIComponent("UTC'; --")}`, 'bob');
    assert.equal(r.status, 200);
    assert.equal(r.json.data[0].started_at, UNITS.find((u) => u.uuid === '1003')!.started_at);
  });
});

describe('project isolation', () => {
  test('bob never sees another project through any route and parameter combination', async () => {
    const from = NOW / 1000 - 5 * 24 * 3600;
    const to = NOW / 1000 + 3600;
    const clusters = ['', 'slurm-0', 'os-0', 'k8s-0'];
    const projects = ['', 'acc1', 'acc2', 'acc3', 'ns1', 'tenant1', 'acc2:unknown', 'empty'];
    const uuidsList = ['', ...UNITS.map((u) => u.uuid)];
    let checked = 0;
    for (const c of clusters) {
      for (const p of projects) {
        for (const running of [false, true]) {
          const base = new URLSearchParams({ from: String(from), to: String(to) });
          if (c) base.append('cluster_id', c);
          if (p) base.append('project', p);
          if (running) base.append('running', '');
          for (const route of [...UNIT_LISTS, '/users', '/projects', '/usage/current', '/usage/global']) {
            const list = UNIT_LISTS.has(route) ? uuidsList : [''];
            for (const u of list) {
              const q = new URLSearchParams(base);
              if (u) q.append('uuid', u);
              if (route === '/usage/current') q.append('groupby', 'cluster_id');
              const r = await s.get(`/api/v1${route}?${q}`, 'bob');
              assert.equal(r.status, 200, `${route}?${q}: ${r.body}`);
              assertBobOnly(route, r.json, `${route}?${q}`);
              checked++;
            }
          }
        }
      }
    }
    assert.ok(checked > 500);
    // verify: bob can verify acc1 units only
    for (const unit of UNITS) {
      const r = await s.get(`/api/v1/units/verify?uuid=${unit.uuid}&cluster_id=${unit.cluster_id}`, 'bob');
      assert.equal(r.status, unit.project === 'acc1' ? 200 : 403, unit.uuid);
    }
  });
});

describe('spoofed internal headers', () => {
  test('X-Ceems-Admin-User / X-Ceems-Logged-User from the client have no effect', async () => {
    const spoof = { 'x-ceems-admin-user': 'bob', 'x-ceems-logged-user': 'alice' };
    for (const route of ['/units/admin', '/units/footprint/admin'])
      assert.equal((await s.get(`/api/v1${route}`, 'bob', spoof)).status, 403, route);
    for (const route of UNIT_LISTS) {
      const own = await s.get(`/api/v1${route}?running`, 'bob', spoof);
      assert.deepEqual(
        own.json.data.map((u: { uuid: string }) => u.uuid),
        ['1003'],
        route,
      );
    }
    // Without the real user header the internal one does not identify anybody.
    assert.equal((await s.get('/api/v1/units', undefined, { 'x-ceems-logged-user': 'alice' })).status, 401);
    assert.equal(
      (await s.get('/api/v1/units/admin', undefined, { 'x-ceems-admin-user': ADMIN })).status,
      401,
    );
  });

  test('an empty user header does not identify anybody', async () => {
    for (const route of UNIT_LISTS) assert.equal((await s.get(`/api/v1${route}`, '')).status, 401, route);
  });
});

describe('bad input', () => {
  test('oversized windows with --query.max-period → 400 maximum query window exceeded', async () => {
    for (const route of [...UNIT_LISTS, '/usage/current', '/stats/current/admin']) {
      const r = await s.get(
        `/api/v1${route}?from=0&to=${NOW / 1000}`,
        route.endsWith('admin') ? ADMIN : 'bob',
      );
      assert.equal(r.status, 400, route);
      assert.deepEqual(r.json, {
        status: 'error',
        data: null,
        errorType: 'bad_data',
        error: 'maximum query window exceeded',
      });
    }
    // a window inside the limit is fine
    assert.equal(
      (await s.get(`/api/v1/units?from=${NOW / 1000 - 3600}&to=${NOW / 1000}`, 'bob')).status,
      200,
    );
  });

  test('malformed percent-encoding and huge repeated parameters are answered, not crashed', async () => {
    const r1 = await s.get('/api/v1/units?uuid=%E0%A4%A&cluster_id=%', 'bob');
    assert.ok(r1.status < 500, r1.body);
    const many = Array.from({ length: 2000 }, (_, i) => `uuid=${i}`).join('&');
    const r2 = await s.get(`/api/v1/units?${many}`, 'bob');
    assert.ok(r2.status < 500, r2.body.slice(0, 200));
  });
});
