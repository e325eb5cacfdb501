// The web view's routes on the seeded API database (no LB): who is identified how, that a user sees only
// their own units whatever URL they type, the admin pages, sorting/filtering/paging done in SQL, the
// assets and security headers, and that a user with 10,000 units gets any page fast.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import bcrypt from 'bcryptjs';
import { CeemsDb, type UnitRecord } from '../../../src/api/db/index.js';
import { formatDatetimezone } from '../../../src/api/timefmt.js';
import { ADMIN, NOW, TZ } from '../../fixtures/api/seed.js';
import { type TestServer, testServer } from '../../fixtures/api/server.js';

const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});
async function server(over: Parameters<typeof testServer>[0] = {}, dataDir?: string) {
  const s = await testServer(over, dataDir);
  servers.push(s);
  return s;
}
const uuids = (j: { rows: { uuid: string }[] }) => j.rows.map((r) => r.uuid).sort();

describe('web view on the seeded DB', () => {
  let s: TestServer;
  before(async () => {
    s = await server();
  });

  test('pages: 200 for an identified user, a 401 page without a user, a 400 page for a malformed header', async () => {
    const bob = await s.get('/ui/', 'bob');
    assert.equal(bob.status, 200);
    assert.match(String(bob.headers['content-type']), /^text\/html/);
    assert.match(bob.body, /<h1>Units of bob<\/h1>/);
    assert.doesNotMatch(bob.body, /href="cluster"/, 'no admin link for a user');
    const none = await s.get('/ui/');
    assert.equal(none.status, 401);
    assert.match(none.body, /401 Not logged in/);
    const bad = await s.get('/ui/', undefined, { 'x-grafana-user': 'bob,alice' });
    assert.equal(bad.status, 400);
    assert.equal((await s.get('/ui', 'bob')).headers.location, 'ui/');
    const admin = await s.get('/ui/', ADMIN);
    assert.match(admin.body, /href="cluster"/);
    assert.match(admin.body, /Units of every user/);
  });

  test('a user lists only their own units; an admin lists everybody’s, never ignored ones', async () => {
    assert.deepEqual(uuids((await s.get('/ui/api/units', 'bob')).json), ['1003']);
    const alice = (await s.get('/ui/api/units', 'alice')).json;
    assert.deepEqual(uuids(alice), ['1001', '1002', '900', 'vm-aaaa']);
    assert.ok(alice.rows.every((r: { username: string }) => r.username === 'alice'));
    assert.equal(alice.admin, false);
    const all = (await s.get('/ui/api/units', ADMIN)).json;
    assert.deepEqual(uuids(all), ['1001', '1002', '1003', '1004', '900', 'pod-1111', 'pod-2222', 'vm-aaaa']);
    assert.equal(all.admin, true);
    const row = alice.rows.find((r: { uuid: string }) => r.uuid === '1001');
    assert.equal(row.energy_kwh, 0.25);
    assert.equal(row.emissions_g, 10.5);
    assert.equal(row.emissions_provider, 'rte');
    assert.equal(row.energy_source, 'unknown', 'no LB configured: the source is unknown');
    assert.equal(row.avg_cpu_usage, 21.234646591);
  });

  test('guessing URLs: another user’s unit is a 403 page and 403 JSON, as is a unit that does not exist', async () => {
    const own = await s.get('/ui/unit?cluster_id=slurm-0&uuid=1001', 'alice');
    assert.equal(own.status, 200);
    assert.match(own.body, /data-uuid="1001"/);
    for (const [url, user] of [
      ['/ui/unit?cluster_id=slurm-0&uuid=1001', 'bob'],
      ['/ui/unit?cluster_id=slurm-0&uuid=9999', 'bob'],
      ['/ui/unit?cluster_id=os-0&uuid=1003', 'bob'],
      ['/ui/unit?uuid=1003', 'bob'],
      ['/ui/unit?cluster_id=slurm-0&uuid=1005', ADMIN], // ignored units are never shown
    ] as const) {
      const r = await s.get(url, user);
      assert.equal(r.status, 403, `${url} as ${user}`);
      assert.match(r.body, /403 Forbidden/);
      assert.match(r.body, /does not exist or is not yours/);
    }
    for (const path of ['/ui/api/unit', '/ui/api/series']) {
      const r = await s.get(`${path}?cluster_id=slurm-0&uuid=1001&panel=power`, 'bob');
      assert.equal(r.status, 403, path);
      assert.equal(r.json.errorType, 'forbidden');
    }
    // an admin opens anybody's unit
    assert.equal((await s.get('/ui/unit?cluster_id=slurm-0&uuid=1001', ADMIN)).status, 200);
    const unit = (await s.get('/ui/api/unit?cluster_id=slurm-0&uuid=1001', ADMIN)).json;
    assert.equal(unit.unit.username, 'alice');
    // the filter never widens the owner clause
    assert.deepEqual(uuids((await s.get('/ui/api/units?q=alice', 'bob')).json), []);
    assert.deepEqual(uuids((await s.get('/ui/api/units?project=acc1', 'bob')).json), ['1003']);
  });

  test('series need a load balancer; panels are a whitelist', async () => {
    const r = await s.get('/ui/api/series?cluster_id=slurm-0&uuid=1001&panel=power', 'alice');
    assert.equal(r.status, 503);
    assert.match(r.json.error, /no load balancer configured/);
    const bad = await s.get('/ui/api/series?cluster_id=slurm-0&uuid=1001&panel=up', 'alice');
    assert.equal(bad.status, 400);
  });

  test('cluster overview: admins only', async () => {
    assert.equal((await s.get('/ui/cluster', 'bob')).status, 403);
    assert.equal((await s.get('/ui/api/cluster', 'bob')).status, 403);
    assert.equal((await s.get('/ui/api/cluster-power?cluster_id=slurm-0', 'bob')).status, 403);
    assert.equal((await s.get('/ui/cluster', ADMIN)).status, 200);
    const o = (await s.get('/ui/api/cluster', ADMIN)).json;
    assert.deepEqual(
      o.clusters.map((c: { cluster_id: string; units: number; running: number }) => [
        c.cluster_id,
        c.units,
        c.running,
      ]),
      [
        ['k8s-0', 2, 0],
        ['os-0', 1, 1],
        ['slurm-0', 5, 1],
      ],
    );
    assert.equal(o.topUsers[0].name, 'alice');
    assert.ok(o.topProjects.length > 0);
  });

  test('project totals: the user’s projects with every member’s units and the user’s own share', async () => {
    const p = (await s.get('/ui/api/projects', 'bob')).json.projects;
    assert.deepEqual(
      p.map((x: { project: string; units: number; own_units: number }) => [x.project, x.units, x.own_units]),
      [['acc1', 3, 1]],
    );
    const acc1 = p[0];
    assert.equal(acc1.energy_kwh, 0.75);
    assert.equal(acc1.own_energy_kwh, 0.25);
    const carol = (await s.get('/ui/api/projects', 'carol')).json.projects;
    assert.deepEqual(carol.map((x: { project: string }) => x.project).sort(), ['acc3', 'ns1']);
  });

  test('sorting, filtering and paging are done by the server; bad parameters are a 400', async () => {
    const asc = (await s.get('/ui/api/units?sort=uuid&dir=asc', ADMIN)).json;
    assert.deepEqual(
      asc.rows.map((r: { uuid: string }) => r.uuid),
      ['900', '1001', '1002', '1003', '1004', 'vm-aaaa', 'pod-1111', 'pod-2222'],
      'numeric ids in numeric order (shorter first)',
    );
    const page2 = (await s.get('/ui/api/units?sort=uuid&dir=asc&size=3&page=2', ADMIN)).json;
    assert.deepEqual(
      page2.rows.map((r: { uuid: string }) => r.uuid),
      ['1003', '1004', 'vm-aaaa'],
    );
    assert.equal(page2.total, 8);
    const filtered = (await s.get('/ui/api/units?q=acc2', ADMIN)).json;
    assert.deepEqual(uuids(filtered), ['1002']);
    // LIKE wildcards in the text are literal
    assert.equal((await s.get('/ui/api/units?q=%25', ADMIN)).json.total, 0);
    assert.equal((await s.get('/ui/api/units?q=_', ADMIN)).json.total, 0);
    for (const q of [
      'sort=energy;DROP',
      'dir=up',
      'page=0',
      'size=100000',
      'page=x',
      `q=${'a'.repeat(201)}`,
    ]) {
      const r = await s.get(`/ui/api/units?${q}`, 'alice');
      assert.equal(r.status, 400, q);
    }
    const byEnergy = (await s.get('/ui/api/units?sort=energy&dir=desc', 'alice')).json;
    assert.equal(byEnergy.rows.length, 4);
  });

  test('assets are local, with a content security policy that allows nothing else', async () => {
    for (const [path, type] of [
      ['/ui/assets/app.js', /^text\/javascript/],
      ['/ui/assets/app.css', /^text\/css/],
      ['/ui/assets/uPlot.iife.min.js', /^text\/javascript/],
      ['/ui/assets/uPlot.min.css', /^text\/css/],
    ] as const) {
      const r = await s.get(path);
      assert.equal(r.status, 200, path);
      assert.match(String(r.headers['content-type']), type);
      assert.ok(r.body.length > 500, path);
    }
    const page = await s.get('/ui/', 'bob');
    assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.doesNotMatch(page.body, /https?:\/\//, 'no external URL in a page');
    assert.doesNotMatch((await s.get('/ui/assets/app.js')).body, /https?:\/\//);
  });

  test('names are escaped in pages', async () => {
    const r = await s.get('/ui/', 'a<b');
    // the header reader refuses `<`: the name never reaches a page
    assert.equal(r.status, 400);
    assert.doesNotMatch(r.body, /a<b/);
  });
});

describe('web view identity with basic auth (standalone setup)', () => {
  let s: TestServer;
  let dir: string;
  const auth = (login: string, password = 'pw') =>
    `Basic ${Buffer.from(`${login}:${password}`).toString('base64')}`;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ceems-web-'));
    const hash = bcrypt.hashSync('pw', 4);
    writeFileSync(
      join(dir, 'web.yml'),
      `basic_auth_users:\n  alice.s: ${hash}\n  bob: ${hash}\n  grafana: ${hash}\n`,
    );
    s = await server({ webConfigFile: join(dir, 'web.yml'), ui: { basicAuthUsers: 'alice.s=alice' } });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a mapped login is its user, whatever header it sends', async () => {
    const r = await s.get('/ui/api/units', undefined, {
      authorization: auth('alice.s'),
      'x-grafana-user': 'bob',
    });
    assert.equal(r.status, 200);
    assert.deepEqual(uuids(r.json), ['1001', '1002', '900', 'vm-aaaa']);
  });

  test('an unmapped login is its own name, or a trusted client sending the user header', async () => {
    const bob = await s.get('/ui/api/units', undefined, { authorization: auth('bob') });
    assert.deepEqual(uuids(bob.json), ['1003']);
    const viaGrafana = await s.get('/ui/api/units', undefined, {
      authorization: auth('grafana'),
      'x-grafana-user': 'alice',
    });
    assert.deepEqual(uuids(viaGrafana.json), ['1001', '1002', '900', 'vm-aaaa']);
  });

  test('a wrong password never reaches the view', async () => {
    const r = await s.get('/ui/', undefined, { authorization: auth('alice.s', 'nope') });
    assert.equal(r.status, 401);
    assert.equal(r.body, 'Unauthorized\n');
  });
});

describe('a user with 10,000 units', () => {
  let s: TestServer;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ceems-web-big-'));
    const db = CeemsDb.open(dir);
    const units: UnitRecord[] = [];
    for (let i = 0; i < 20_000; i++) {
      const started = NOW - (20_000 - i) * 60_000;
      const ended = started + 30 * 60_000;
      units.push({
        cluster_id: 'slurm-0',
        resource_manager: 'slurm',
        uuid: String(100_000 + i),
        name: `job-${i}`,
        project: i % 2 ? 'acc1' : 'acc2',
        groupname: 'grp',
        username: i % 2 ? 'heavy' : 'other',
        created_at: formatDatetimezone(started, TZ),
        started_at: formatDatetimezone(started, TZ),
        ended_at: formatDatetimezone(ended, TZ),
        created_at_ts: started,
        started_at_ts: started,
        ended_at_ts: ended,
        elapsed: '00:30:00',
        state: 'COMPLETED',
        allocation: { cpus: 1 },
        tags: { nodelistexp: `n${i % 50}` },
        total_time_seconds: { walltime: 1800, alloc_cputime: 1800 },
        avg_cpu_usage: { global: i % 100 },
        total_cpu_energy_usage_kwh: { total: (i % 997) / 1000 },
        total_cpu_emissions_gms: { owid_total: (i % 991) / 10 },
      });
    }
    db.storeCollection({
      start: NOW - 400 * 3600_000,
      end: NOW,
      timeZone: TZ,
      units,
      projects: [{ cluster_id: 'slurm-0', resource_manager: 'slurm', name: 'acc1', users: ['heavy'] }],
    });
    db.close();
    s = await server({}, dir);
  });

  test('every page answers in well under a second (sorted by any column, filtered, last page)', async (t) => {
    const timings: string[] = [];
    for (const q of [
      'sort=start&dir=desc',
      'sort=energy&dir=desc',
      'sort=emissions&dir=asc',
      'sort=uuid&dir=asc&page=200',
      'sort=cpu&dir=desc&q=job-1',
      'sort=end&dir=asc&page=400',
    ]) {
      await s.get(`/ui/api/units?${q}`, 'heavy'); // warm the statement cache
      const t0 = performance.now();
      const r = await s.get(`/ui/api/units?${q}&size=25`, 'heavy');
      const ms = performance.now() - t0;
      timings.push(`${q}: ${ms.toFixed(1)} ms`);
      assert.equal(r.status, 200);
      assert.ok(r.json.rows.every((u: { username: string }) => u.username === 'heavy'));
      if (!q.includes('q=')) assert.equal(r.json.total, 10_000);
      assert.ok(ms < 500, `${q}: ${ms} ms`);
    }
    const sorted = (await s.get('/ui/api/units?sort=energy&dir=desc&size=5', 'heavy')).json.rows;
    assert.deepEqual(
      sorted.map((u: { energy_kwh: number }) => u.energy_kwh),
      [0.996, 0.996, 0.996, 0.996, 0.996].slice(0, sorted.length),
    );
    const projects = (await s.get('/ui/api/projects', 'heavy')).json.projects;
    assert.deepEqual(
      projects.map((p: { project: string; units: number }) => [p.project, p.units]),
      [['acc1', 10_000]],
    );
    t.diagnostic(timings.join('; '));
  });
});
