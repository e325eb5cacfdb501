// Route-by-route behaviour of the API server on a seeded DB, for a normal user, another user, an admin
// and no user (spec §5, §7).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openReader } from '../../../src/api/db/index.js';
import { type Database, openDatabase } from '../../../src/common/sqlite.js';
import { ADMIN, NOW, seedDb } from '../../fixtures/api/seed.js';
import { type TestServer, testServer } from '../../fixtures/api/server.js';

let s: TestServer;
before(async () => {
  s = await testServer();
});
after(() => s.close());

const uuids = (json: { data: { uuid: string }[] }) => json.data.map((u) => u.uuid);
const ERR = (type: string, error: string) => ({ status: 'error', data: null, errorType: type, error });

describe('/api/v1/units', () => {
  test('a user sees own units ended in the default 24 h window; running ones only with `running`', async () => {
    assert.deepEqual(uuids((await s.get('/api/v1/units', 'alice')).json), ['1001']);
    assert.deepEqual(uuids((await s.get('/api/v1/units?running', 'alice')).json), [
      'vm-aaaa',
      '1001',
      '1002',
    ]);
    // presence flag: `running=false` still means running (kept quirk)
    assert.deepEqual(uuids((await s.get('/api/v1/units?running=false', 'alice')).json), [
      'vm-aaaa',
      '1001',
      '1002',
    ]);
  });

  test('another user sees only theirs; ignored units never appear', async () => {
    assert.deepEqual(uuids((await s.get('/api/v1/units?running', 'bob')).json), ['1003']);
    assert.deepEqual(uuids((await s.get('/api/v1/units', 'carol')).json), ['pod-1111', '1004']);
    assert.deepEqual(uuids((await s.get('/api/v1/units?uuid=1005', 'carol')).json), []);
  });

  test('project pseudo-user <p>:unknown only for member projects (D-API-6)', async () => {
    assert.deepEqual(uuids((await s.get('/api/v1/units?project=ns1', 'carol')).json), [
      'pod-1111',
      'pod-2222',
    ]);
    assert.deepEqual(uuids((await s.get('/api/v1/units?project=ns1', 'alice')).json), []);
  });

  test('an admin sees only own units here; no user → 401', async () => {
    assert.deepEqual((await s.get('/api/v1/units', ADMIN)).json, { status: 'success', data: [] });
    const r = await s.get('/api/v1/units');
    assert.equal(r.status, 401);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.body, `${JSON.stringify(ERR('unauthorized', 'no user identified'))}\n`);
  });

  test('exact wire JSON of a unit (field order, omitempty, sorted maps, 8 decimals, HTML escapes)', async () => {
    const r = await s.get('/api/v1/units?uuid=1001', 'alice');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(
      r.body,
      '{"status":"success","data":[{"cluster_id":"slurm-0","resource_manager":"slurm","uuid":"1001","name":"1001-name","project":"acc1","groupname":"grp","username":"alice","created_at":"2024-05-06T08:59:00+0200","started_at":"2024-05-06T09:00:00+0200","ended_at":"2024-05-06T11:00:00+0200","created_at_ts":1714978740000,"started_at_ts":1714978800000,"ended_at_ts":1714986000000,"elapsed":"01:00:00","state":"COMPLETED","allocation":{"cpus":2,"mem":4294967296,"name":"a\\u003cb\\u003e\\u0026c"},"total_time_seconds":{"alloc_cputime":14400,"alloc_gputime":0,"walltime":7200},"avg_cpu_usage":{"global":21.23464659},"total_cpu_energy_usage_kwh":{"total":0.25000000},"total_cpu_emissions_gms":{"rte_total":10.50000000},"tags":{"qos":"normal","uid":1000}}]}\n',
    );
  });

  test('uuid disables the window; other users’ uuids give nothing', async () => {
    assert.deepEqual(uuids((await s.get('/api/v1/units?uuid=900', 'alice')).json), ['900']);
    assert.deepEqual(uuids((await s.get('/api/v1/units?uuid=1003', 'alice')).json), []);
  });

  test('from/to in Unix seconds select by ended_at', async () => {
    const from = NOW / 1000 - 80 * 3600;
    const to = NOW / 1000 - 60 * 3600;
    assert.deepEqual(uuids((await s.get(`/api/v1/units?from=${from}&to=${to}`, 'alice')).json), ['900']);
    // only `from`: to = from + 24 h
    assert.deepEqual(uuids((await s.get(`/api/v1/units?from=${from}`, 'alice')).json), ['900']);
    // only `to`: from = to − 24 h
    assert.deepEqual(uuids((await s.get(`/api/v1/units?to=${to}`, 'alice')).json), ['900']);
  });

  test('cluster_id and project filters', async () => {
    assert.deepEqual(uuids((await s.get('/api/v1/units?running&cluster_id=os-0', 'alice')).json), [
      'vm-aaaa',
    ]);
    assert.deepEqual(uuids((await s.get('/api/v1/units?running&project=acc2', 'alice')).json), ['1002']);
  });

  test('timezone converts returned times; an invalid zone falls back to the DB zone', async () => {
    const utc = (await s.get('/api/v1/units?uuid=1001&timezone=UTC&field=uuid&field=started_at', 'alice'))
      .json;
    assert.deepEqual(utc.data, [{ uuid: '1001', started_at: '2024-05-06T07:00:00+0000' }]);
    const bad = await s.get('/api/v1/units?uuid=1001&timezone=Not/AZone&field=started_at', 'alice');
    assert.equal(bad.status, 200);
    // uuid is not omitempty: present even when not selected
    assert.deepEqual(bad.json.data, [{ uuid: '', started_at: '2024-05-06T09:00:00+0200' }]);
  });

  test('field selection: valid subset in wire order, unknown dropped, none valid → 400', async () => {
    const r = await s.get('/api/v1/units?uuid=1001&field=state&field=bogus&field=uuid', 'alice');
    assert.equal(r.body, '{"status":"success","data":[{"uuid":"1001","state":"COMPLETED"}]}\n');
    for (const f of ['bogus', 'id', 'ignore', 'num_updates', 'last_updated_at']) {
      const e = await s.get(`/api/v1/units?field=${f}`, 'alice');
      assert.equal(e.status, 400, f);
      assert.deepEqual(e.json, ERR('bad_data', 'invalid query fields'));
    }
  });

  test('malformed timestamps → 400 naming the parameter', async () => {
    for (const [q, name] of [
      ['from=abc', 'from'],
      ['to=1.5', 'to'],
      ['from=2024-05-06', 'from'],
      ['from=1&to=', 'to'],
      ['from=99999999999999999999', 'from'],
      ['from=0&to=999999999999999', 'to'],
      ['to=-8600000000001', 'to'],
    ]) {
      const r = await s.get(`/api/v1/units?${q}`, 'alice');
      assert.equal(r.status, 400, q);
      assert.deepEqual(r.json, ERR('bad_data', `query parameter '${name}': malformed timestamp`));
    }
  });
});

describe('/api/v1/units/admin', () => {
  test('admin sees every user’s units, filterable by user', async () => {
    assert.deepEqual(uuids((await s.get('/api/v1/units/admin?running', ADMIN)).json), [
      'pod-1111',
      'pod-2222',
      'vm-aaaa',
      '1001',
      '1002',
      '1003',
      '1004',
    ]);
    assert.deepEqual(uuids((await s.get('/api/v1/units/admin?user=bob&user=carol', ADMIN)).json), [
      'pod-1111',
      '1003',
      '1004',
    ]);
  });

  test('non-admins get 403, no user 401', async () => {
    for (const user of ['alice', 'bob']) {
      const r = await s.get('/api/v1/units/admin', user);
      assert.equal(r.status, 403);
      assert.deepEqual(r.json, ERR('forbidden', 'current user does not have admin privileges'));
    }
    assert.equal((await s.get('/api/v1/units/admin')).status, 401);
  });
});

describe('/api/v1/units/verify', () => {
  const verify = (q: string, user?: string) => s.get(`/api/v1/units/verify?${q}`, user);
  test('passes for units of the user’s projects (even another member’s)', async () => {
    const r = await verify('uuid=1001&uuid=1003&cluster_id=slurm-0', 'alice');
    assert.equal(r.status, 200);
    assert.equal(r.body, '{"status":"success","data":null}\n');
  });

  test('fails when any uuid is foreign (D-API-5) or the user lacks membership', async () => {
    const forbidden = ERR('forbidden', 'user do not have permissions on uuids');
    for (const [q, user] of [
      ['uuid=1001&uuid=1004&cluster_id=slurm-0', 'alice'],
      ['uuid=1001&uuid=1001&uuid=1004&cluster_id=slurm-0', 'alice'],
      ['uuid=1003&cluster_id=slurm-0', 'carol'],
      ['uuid=1001&cluster_id=os-0', 'alice'],
      ['uuid=1001&cluster_id=slurm-0', ADMIN],
    ]) {
      const r = await verify(q, user);
      assert.equal(r.status, 403, `${q} ${user}`);
      assert.deepEqual(r.json, forbidden);
    }
  });

  test('missing uuid or cluster_id → 400 naming it (D-API-19); no user → 401', async () => {
    for (const q of ['cluster_id=slurm-0', 'uuid=&cluster_id=slurm-0']) {
      const r = await verify(q, 'alice');
      assert.equal(r.status, 400, q);
      assert.deepEqual(r.json, ERR('bad_data', 'uuids missing in the request'), q);
    }
    for (const q of ['uuid=1001', 'uuid=1001&cluster_id=']) {
      const noCluster = await verify(q, 'alice');
      assert.equal(noCluster.status, 400, q);
      assert.deepEqual(noCluster.json, ERR('bad_data', 'cluster_id missing in the request'), q);
    }
    assert.equal((await verify('uuid=1001&cluster_id=slurm-0')).status, 401);
  });
});

describe('/api/v1/users and /users/admin', () => {
  test('a user gets own records in every cluster', async () => {
    const r = await s.get('/api/v1/users', 'alice');
    assert.equal(
      r.body,
      '{"status":"success","data":[{"uid":"u-1","cluster_id":"os-0","resource_manager":"openstack","name":"alice","projects":["tenant1"]},{"cluster_id":"slurm-0","resource_manager":"slurm","name":"alice","projects":["acc1","acc2"]}]}\n',
    );
    assert.deepEqual((await s.get('/api/v1/users?cluster_id=os-0&field=name', 'alice')).json.data, [
      { cluster_id: '', name: 'alice' },
    ]);
    assert.deepEqual((await s.get('/api/v1/users', ADMIN)).json.data, []);
    assert.equal((await s.get('/api/v1/users')).status, 401);
  });

  test('admin lists any users or the admin users', async () => {
    const all = (await s.get('/api/v1/users/admin', ADMIN)).json.data;
    assert.equal(all.length, 5);
    assert.deepEqual(
      (await s.get('/api/v1/users/admin?user=bob', ADMIN)).json.data.map((u: { name: string }) => u.name),
      ['bob'],
    );
    const admins = await s.get('/api/v1/users/admin?role=admin&cluster_id=nope', ADMIN);
    assert.equal(
      admins.body,
      '{"status":"success","data":[{"cluster_id":"all","name":"ceems-int-svc","tags":["ceems"]},{"cluster_id":"all","name":"root-admin","tags":["ceems"]}]}\n',
    );
    assert.equal((await s.get('/api/v1/users/admin', 'bob')).status, 403);
  });
});

describe('/api/v1/projects and /projects/admin', () => {
  const names = (json: { data: { name: string }[] }) => json.data.map((p) => p.name);
  test('a user sees projects they are a member of', async () => {
    assert.deepEqual(names((await s.get('/api/v1/projects', 'alice')).json), ['tenant1', 'acc1', 'acc2']);
    assert.deepEqual(names((await s.get('/api/v1/projects', 'bob')).json), ['acc1']);
    assert.deepEqual(names((await s.get('/api/v1/projects?project=acc3', 'alice')).json), []);
    assert.deepEqual(names((await s.get('/api/v1/projects?project=acc2', 'alice')).json), ['acc2']);
    assert.deepEqual((await s.get('/api/v1/projects', ADMIN)).json.data, []);
  });

  test('admin sees every project having members; wire shape keeps users', async () => {
    const r = await s.get('/api/v1/projects/admin?cluster_id=slurm-0', ADMIN);
    assert.equal(
      r.body,
      '{"status":"success","data":[{"cluster_id":"slurm-0","resource_manager":"slurm","name":"acc1","users":["alice","bob"]},{"cluster_id":"slurm-0","resource_manager":"slurm","name":"acc2","users":["alice"]},{"cluster_id":"slurm-0","resource_manager":"slurm","name":"acc3","users":["carol"]}]}\n',
    );
    assert.equal((await s.get('/api/v1/projects/admin', 'alice')).status, 403);
  });
});

describe('/api/v1/clusters/admin', () => {
  test('clusters known from units', async () => {
    const r = await s.get('/api/v1/clusters/admin', ADMIN);
    assert.equal(
      r.body,
      '{"status":"success","data":[{"id":"k8s-0","manager":"k8s"},{"id":"os-0","manager":"openstack"},{"id":"slurm-0","manager":"slurm"}]}\n',
    );
    assert.equal((await s.get('/api/v1/clusters/admin', 'alice')).status, 403);
  });
});

describe('/api/v1/usage', () => {
  const rows = (json: { data: { username: string; project: string }[] }) =>
    json.data.map((r) => `${r.username}/${r.project}`);

  test('global: a user sees the usage of every member of their projects', async () => {
    assert.deepEqual(rows((await s.get('/api/v1/usage/global', 'alice')).json), [
      'alice/tenant1',
      'alice/acc1',
      'alice/acc2',
      'bob/acc1',
    ]);
    assert.deepEqual(rows((await s.get('/api/v1/usage/global', 'bob')).json), ['alice/acc1', 'bob/acc1']);
    assert.deepEqual(rows((await s.get('/api/v1/usage/global?project=ns1', 'carol')).json), [
      'carol/ns1',
      'ns1:unknown/ns1',
    ]);
    assert.deepEqual((await s.get('/api/v1/usage/global', ADMIN)).json.data, []);
    assert.equal((await s.get('/api/v1/usage/global')).status, 401);
  });

  test('global wire shape: six fields always emitted', async () => {
    const r = await s.get('/api/v1/usage/global?field=num_units&cluster_id=os-0', 'alice');
    assert.equal(
      r.body,
      '{"status":"success","data":[{"cluster_id":"","resource_manager":"","num_units":1,"project":"","groupname":"","username":""}]}\n',
    );
  });

  test('global admin: all, or projects of the given users', async () => {
    assert.equal((await s.get('/api/v1/usage/global/admin', ADMIN)).json.data.length, 7);
    assert.deepEqual(rows((await s.get('/api/v1/usage/global/admin?user=bob', ADMIN)).json), [
      'alice/acc1',
      'bob/acc1',
    ]);
    assert.equal((await s.get('/api/v1/usage/global/admin', 'alice')).status, 403);
  });

  test('current: sums and weighted averages per user and project', async () => {
    const r = await s.get(
      '/api/v1/usage/current?field=username&field=project&field=num_units&field=avg_cpu_usage&field=total_cpu_energy_usage_kwh&cluster_id=slurm-0',
      'alice',
    );
    assert.equal(r.status, 200);
    // alice/acc1 = units 1001 (21.234646591) and 900 (50), equal alloc_cputime weights
    assert.equal(
      r.body,
      '{"status":"success","data":[{"cluster_id":"","resource_manager":"","num_units":2,"project":"acc1","groupname":"","username":"alice","avg_cpu_usage":{"global":35.6173233},"total_cpu_energy_usage_kwh":{"total":0.50000000}},{"cluster_id":"","resource_manager":"","num_units":1,"project":"acc2","groupname":"","username":"alice","avg_cpu_usage":{"global":50},"total_cpu_energy_usage_kwh":{"total":0.25000000}},{"cluster_id":"","resource_manager":"","num_units":1,"project":"acc1","groupname":"","username":"bob","avg_cpu_usage":{"global":80},"total_cpu_energy_usage_kwh":{"total":0.25000000}}]}\n'.replace(
        '35.6173233}',
        '35.61732330}',
      ),
    );
  });

  test('current: groupby whitelisted (D-API-1), experimental reads daily_usage, __terminated drops running', async () => {
    const g = await s.get(
      '/api/v1/usage/current/admin?groupby=cluster_id&field=cluster_id&field=num_units&field=total_time_seconds&user=carol',
      ADMIN,
    );
    assert.deepEqual(
      g.json.data.map((r: { cluster_id: string; username: string; num_units: number }) => [
        r.cluster_id,
        r.num_units,
      ]),
      [
        ['k8s-0', 1],
        ['k8s-0', 1],
        ['slurm-0', 2],
      ],
    );
    for (const bad of ['id', 'username;DROP TABLE units', '1', 'username)--']) {
      const r = await s.get(
        `/api/v1/usage/current?groupby=${encodeURIComponent(bad)}&field=avg_cpu_usage`,
        'alice',
      );
      assert.equal(r.status, 400, bad);
      assert.deepEqual(r.json, ERR('bad_data', 'invalid groupby fields'));
    }
    const exp = await s.get(
      '/api/v1/usage/current?experimental&field=num_units&field=total_time_seconds&project=acc2',
      'alice',
    );
    assert.deepEqual(exp.json.data[0].num_units, 1);
    const term = await s.get(
      '/api/v1/usage/current?__terminated&field=username&field=project&field=num_units&field=total_time_seconds',
      'alice',
    );
    assert.deepEqual(rows(term.json), ['alice/acc1', 'bob/acc1']);
  });

  test('current: only plain fields → data null; empty window → []', async () => {
    const r = await s.get('/api/v1/usage/current?field=username&field=num_units', 'alice');
    assert.equal(r.body, '{"status":"success","data":null}\n');
    const empty = await s.get('/api/v1/usage/current?from=1000000000&to=1000003600', 'alice');
    assert.equal(empty.body, '{"status":"success","data":null}\n');
  });

  test('current: results cached per user with an Expires header', async () => {
    const q = '/api/v1/usage/current?field=total_time_seconds&project=acc2';
    const first = await s.get(q, 'alice');
    assert.equal(first.headers.expires, undefined);
    const second = await s.get(q, 'alice');
    assert.equal(second.body, first.body);
    assert.match(String(second.headers.expires), /GMT$/);
    // another user's identical URL is a different cache key
    const bob = await s.get(q, 'bob');
    assert.equal(bob.headers.expires, undefined);
    assert.equal(bob.body, '{"status":"success","data":[]}\n');
  });
});

describe('/api/v1/stats', () => {
  test('per-cluster counts (ignored units counted, user ignored)', async () => {
    const r = await s.get('/api/v1/stats/global/admin?cluster_id=slurm-0&user=alice', ADMIN);
    assert.equal(
      r.body,
      '{"status":"success","data":[{"cluster_id":"slurm-0","resource_manager":"slurm","num_units":6,"num_inactive_units":5,"num_active_units":1,"num_projects":3,"num_users":3}]}\n',
    );
    const cur = (await s.get('/api/v1/stats/current/admin?cluster_id=slurm-0', ADMIN)).json.data[0];
    assert.equal(cur.num_units, 5);
    assert.equal((await s.get('/api/v1/stats/current/admin', 'alice')).status, 403);
  });
});

describe('demo, health, landing, API description, errors', () => {
  test('demo routes need no user and return random but well-formed data', async () => {
    const u = await s.get('/api/v1/demo/units');
    assert.equal(u.status, 200);
    assert.equal(u.json.data.length, 100);
    assert.ok(u.json.data.slice(0, 20).every((x: { ended_at: string }) => x.ended_at === 'Unknown'));
    assert.match(u.json.data[0].created_at, /GMT$/);
    const g = await s.get('/api/v1/demo/usage');
    assert.ok(
      g.json.data.every(
        (x: { cluster_id: string; username: string }) =>
          x.cluster_id === '' && /^user[1-7]$/.test(x.username),
      ),
    );
  });

  test('health, landing page, swagger document and UI', async () => {
    const h = await s.get('/health');
    assert.equal(h.status, 200);
    assert.equal(h.body, 'CEEMS API Server is healthy');
    const l = await s.get('/');
    assert.match(String(l.headers['content-type']), /text\/html/);
    assert.match(l.body, /ceems_api_server/);
    assert.match(l.body, /href="swagger\/index.html"/);
    const doc = (await s.get('/swagger/doc.json')).json;
    assert.equal(doc.basePath, '/api/v1');
    for (const p of [
      '/units',
      '/units/admin',
      '/units/verify',
      '/usage/current',
      '/usage/global/admin',
      '/stats/current/admin',
    ])
      assert.ok(doc.paths[p]?.get, p);
    assert.ok(doc.paths['/units'].get.parameters.some((x: { name: string }) => x.name === 'field'));
    // response models come from the wire structs
    const unit = doc.paths['/units'].get.responses['200'].schema.properties.data.items;
    assert.deepEqual(unit.required, ['uuid']);
    assert.deepEqual(Object.keys(unit.properties).slice(0, 3), ['cluster_id', 'resource_manager', 'uuid']);
    assert.equal(doc.paths['/units/verify'].get.responses['200'].schema.properties.data.type, 'null');
    assert.ok(doc.paths['/units'].get.responses['401']);
    const ui = await s.api.app.inject({ url: '/swagger/index.html' });
    assert.equal(ui.statusCode, 302);
    assert.equal((await s.get('/swagger/')).status, 200);
  });

  test('unknown path → 404 text; wrong method → 405; OPTIONS → 200 empty without running the handler', async () => {
    const nf = await s.get('/api/v1/nope', 'alice');
    assert.equal(nf.status, 404);
    assert.equal(nf.body, '404 page not found\n');
    const post = await s.api.app.inject({
      method: 'POST',
      url: '/api/v1/units',
      headers: { 'x-grafana-user': 'alice' },
    });
    assert.equal(post.statusCode, 405);
    for (const url of ['/api/v1/units/admin', '/health']) {
      const opt = await s.api.app.inject({ method: 'OPTIONS', url });
      assert.equal(opt.statusCode, 200, url);
      assert.equal(opt.body, '', url);
    }
  });
});

describe('partial failures', () => {
  test('rows whose JSON cannot be decoded are skipped and reported in warnings', async () => {
    const dir = seedDb();
    const raw = openDatabase(`${dir}/ceems.db`);
    raw.prepare("UPDATE units SET tags = '{not json' WHERE uuid = '1002'").run();
    raw.close();
    const t = await testServer({}, dir);
    try {
      const r = await t.get('/api/v1/units?running&cluster_id=slurm-0', 'alice');
      assert.equal(r.status, 200);
      assert.deepEqual(uuids(r.json), ['1001']);
      assert.deepEqual(r.json.warnings, ['failed to scan 1 rows']);
    } finally {
      await t.close();
    }
  });
});

describe('odd metric keys', () => {
  test('keys that cannot be quoted in a JSON path are left out of current usage, not a 500', async () => {
    const dir = seedDb();
    const raw = openDatabase(`${dir}/ceems.db`);
    raw
      .prepare('UPDATE units SET avg_cpu_usage = ? WHERE uuid = ?')
      .run(JSON.stringify({ 'glo"bal': 1, 'a\\b': 2, 'per node': 3, global: 50 }), '1002');
    raw.close();
    const t = await testServer({}, dir);
    try {
      const r = await t.get('/api/v1/usage/current?field=avg_cpu_usage&project=acc2', 'alice');
      assert.equal(r.status, 200, r.body);
      assert.deepEqual(r.json.data, [
        {
          cluster_id: '',
          resource_manager: '',
          num_units: 0,
          project: '',
          groupname: '',
          username: '',
          avg_cpu_usage: { global: 50, 'per node': 3 },
        },
      ]);
    } finally {
      await t.close();
    }
  });
});

describe('API description host', () => {
  test('--web.external-url sets host and scheme of the document', async () => {
    const t = await testServer({ externalUrl: 'https://ceems.example.org:8443/ceems' });
    try {
      const doc = (await t.get('/swagger/doc.json')).json;
      assert.equal(doc.host, 'ceems.example.org:8443');
      assert.deepEqual(doc.schemes, ['https']);
    } finally {
      await t.close();
    }
  });
});

describe('read connection', () => {
  test('opened on first use and kept; reopenReader makes the next request open a new one', async () => {
    const dir = seedDb();
    const opened: Database[] = [];
    const t = await testServer(
      {
        openDb: () => {
          opened.push(openReader(dir));
          return opened.at(-1)!;
        },
      },
      dir,
    );
    try {
      t.api.reopenReader();
      assert.equal(opened.length, 0, 'nothing to reopen before the first request');
      assert.equal((await t.get('/api/v1/units', 'alice')).status, 200);
      assert.equal((await t.get('/api/v1/users', 'alice')).status, 200);
      assert.equal(opened.length, 1);
      t.api.reopenReader();
      assert.equal(opened.length, 1, 'reopened when next needed, not at once');
      assert.deepEqual(uuids((await t.get('/api/v1/units', 'alice')).json), ['1001']);
      assert.equal(opened.length, 2);
      assert.equal(opened[0]!.isOpen, false, 'the stale connection is closed');
      assert.equal(opened[1]!.isOpen, true);
    } finally {
      await t.close();
    }
    assert.equal(opened[1]!.isOpen, false);
  });
});

describe('NUL in a query parameter', () => {
  test('refused with 400 on every route (PostgreSQL text cannot hold it) [D-API-30]', async () => {
    for (const url of [
      '/api/v1/units?project=%00',
      '/api/v1/users?cluster_id=a%00b',
      '/ui/api/units?q=%00',
    ]) {
      const r = await s.get(url, 'alice');
      assert.equal(r.status, 400, url);
      assert.deepEqual(r.json, ERR('bad_data', 'invalid query parameter: NUL character'), url);
    }
    // `%2500` is the text `%00`, not a NUL
    assert.equal((await s.get('/api/v1/units?project=%2500', 'alice')).status, 200);
  });
});
