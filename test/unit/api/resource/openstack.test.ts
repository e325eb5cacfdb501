import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ClusterConfig } from '../../../../src/api/config.js';
import { OpenstackManager, serverActivity } from '../../../../src/api/resource/openstack.js';
import { formatElapsed } from '../../../../src/api/resource/types.js';
import { createLogger } from '../../../../src/common/logger.js';
import { startFakeOpenstack } from '../../../fixtures/api-data/fake-openstack.js';

const logger = createLogger({ level: 'silent' });
const TZ = 'Europe/Paris';
const T = (s: string) => Date.parse(s);

describe('OpenStack activity rules', () => {
  const start = T('2024-05-06T10:00:00Z');
  const end = T('2024-05-06T11:00:00Z');
  it('deleted, stopped and active servers', () => {
    assert.deepEqual(
      serverActivity(
        { status: 'DELETED', updated: 0, terminated: start + 600_000, launched: start - 3_600_000 },
        start,
        end,
      ),
      { active: 600, ended: start + 600_000, elapsed: 4200 },
    );
    assert.equal(
      serverActivity({ status: 'SHUTOFF', updated: start + 60_000, terminated: 0, launched: 1 }, start, end)
        .active,
      60,
    );
    assert.equal(
      serverActivity({ status: 'SHUTOFF', updated: start - 1, terminated: 0, launched: 1 }, start, end)
        .active,
      0,
    );
    assert.equal(
      serverActivity({ status: 'ACTIVE', updated: start + 60_000, terminated: 0, launched: 1 }, start, end)
        .active,
      3540,
    );
    assert.equal(
      serverActivity({ status: 'ACTIVE', updated: start - 1, terminated: 0, launched: 1 }, start, end).active,
      3600,
    );
  });
  it('elapsed strings', () => {
    assert.equal(formatElapsed(3725), '01:02:05');
    assert.equal(formatElapsed(2 * 86400 + 3 * 3600 + 4 * 60 + 5), '2-03:04:05');
  });
});

describe('OpenStack manager against a fake Keystone and Nova', () => {
  let fake: Awaited<ReturnType<typeof startFakeOpenstack>>;
  let base: string;
  before(async () => {
    fake = await startFakeOpenstack();
    base = fake.base;
  });
  after(() => fake.close());

  const cluster = (password = 'secret'): ClusterConfig => ({
    id: 'os-0',
    manager: 'openstack',
    updaters: [],
    web: { url: '' },
    extra_config: {
      api_service_endpoints: { compute: `${base}/compute/v2.1`, identity: `${base}/identity` },
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'admin', domain: { id: 'default' }, password } },
        },
      },
    },
  });
  const ctx = { logger, timeZone: TZ, configDir: '.', updateIntervalMs: 60_000 };

  it('fails at start-up when Keystone rejects the credentials', async () => {
    await assert.rejects(
      OpenstackManager.create(cluster('wrong'), ctx),
      /Keystone authentication .* failed: HTTP 401/,
    );
  });

  it('rejects extra_config without a /v2.1 compute endpoint', async () => {
    const c = cluster();
    (c.extra_config as { api_service_endpoints: { compute: string } }).api_service_endpoints.compute =
      `${base}/compute`;
    await assert.rejects(
      OpenstackManager.create(c, ctx),
      /api_service_endpoints.compute: Nova endpoint must include \/v2.1/,
    );
  });

  it('fetches servers, users and projects across pages; re-authenticates after a 401 mid-cycle', async () => {
    fake.state.authBodies = [];
    const m = await OpenstackManager.create(cluster(), ctx);
    assert.deepEqual(
      fake.state.authBodies[0],
      (cluster().extra_config as { auth: unknown }) && {
        auth: (cluster().extra_config as { auth: unknown }).auth,
      },
    );
    const up = await m.fetchUsersProjects(Date.now());
    assert.deepEqual(
      up.users.map((u) => [u.uid, u.name, u.projects]),
      [
        ['u-alice', 'alice', ['chemistry', 'physics']],
        ['u-bob', 'bob', ['physics']],
        ['u-carol', 'carol', []],
      ],
    );
    assert.deepEqual(up.projects.map((p) => [p.uid, p.name, p.users]).sort(), [
      ['p-chem', 'chemistry', ['alice']],
      ['p-phys', 'physics', ['alice', 'bob']],
    ]);
    // The token is revoked while the servers are being listed.
    fake.state.seen.length = 0;
    fake.state.revokeAfter = 1;
    const tokensBefore = fake.state.tokens;
    const start = T('2024-05-06T10:00:00Z');
    const end = T('2024-05-06T11:00:00Z');
    const units = await m.fetchUnits(start, end);
    assert.equal(fake.state.tokens, tokensBefore + 1);
    assert.ok(fake.state.seen.some((s) => s.token === `tok-${fake.state.tokens}`));
    assert.ok(
      fake.state.seen.filter((s) => s.url.includes('/compute/')).every((s) => s.version === 'latest'),
    );
    const byId = Object.fromEntries(units.map((u) => [u.uuid, u]));
    assert.deepEqual(Object.keys(byId).sort(), ['a1', 'a2', 'a3', 'd1']);
    const a1 = byId.a1!;
    assert.equal(a1.cluster_id, 'os-0');
    assert.equal(a1.resource_manager, 'openstack');
    assert.equal(a1.name, 'vm-a1');
    assert.equal(a1.project, 'physics');
    assert.equal(a1.username, 'alice');
    assert.equal(a1.created_at, '2024-05-06T10:00:00+0200');
    assert.equal(a1.started_at, '2024-05-06T10:00:30+0200');
    assert.equal(a1.started_at_ts, T('2024-05-06T08:00:30Z'));
    assert.equal(a1.ended_at, 'N/A');
    assert.equal(a1.ended_at_ts, 0);
    assert.equal(a1.state, 'ACTIVE');
    assert.equal(a1.elapsed, '02:59:30');
    assert.deepEqual(a1.allocation, {
      vcpus: 2,
      mem: 4096,
      disk: 20,
      swap: 0,
      name: 'm1.2',
      extra_specs: {},
    });
    assert.deepEqual(a1.total_time_seconds, {
      walltime: 3600,
      alloc_cputime: 7200,
      alloc_cpumemtime: 4096 * 3600,
      alloc_gputime: 0,
      alloc_gpumemtime: 0,
    });
    assert.deepEqual(a1.tags, {
      metadata: { purpose: 'test' },
      tags: ['t1'],
      reservation_id: 'r-a1',
      power_state: 'RUNNING',
      az: 'nova',
    });
    // flavor looked up in /flavors/detail (old microversion shape)
    assert.deepEqual(byId.a2!.allocation, {
      vcpus: 8,
      mem: 16384,
      disk: 80,
      swap: 0,
      name: 'm1.large',
      extra_specs: {},
    });
    // stopped at 10:15 → 900 s in the window
    assert.equal(byId.a3!.project, 'chemistry');
    assert.equal(byId.a3!.total_time_seconds!.walltime, 900);
    assert.equal((byId.a3!.tags as { power_state: string }).power_state, 'SHUTDOWN');
    // deleted at 10:30 → 1800 s; vGPU counted
    const d1 = byId.d1!;
    assert.equal(d1.username, 'bob');
    assert.equal(d1.ended_at, '2024-05-06T12:30:00+0200');
    assert.equal(d1.elapsed, '02:29:30');
    assert.equal(d1.allocation!.vgpus, 1);
    assert.equal(d1.total_time_seconds!.alloc_gputime, 1800);
    assert.equal((d1.tags as { power_state: string }).power_state, 'NOSTATE');
    await m.close();
  });

  it('renews the token before its assumed 1 h lifetime ends (after 55 min)', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    const m = await OpenstackManager.create(cluster(), ctx);
    try {
      const before = fake.state.tokens;
      await m.fetchUsersProjects(Date.now());
      t.mock.timers.tick(54 * 60_000);
      await m.fetchUnits(0, 1000);
      assert.equal(fake.state.tokens, before, 'token reused within 55 min');
      t.mock.timers.tick(2 * 60_000);
      await m.fetchUnits(0, 1000);
      assert.equal(fake.state.tokens, before + 1, 'token renewed after 55 min');
    } finally {
      await m.close();
    }
  });

  it('reports Nova errors (the window is retried)', async () => {
    const m = await OpenstackManager.create(cluster(), ctx);
    fake.state.novaStatus = 500;
    try {
      await assert.rejects(m.fetchUnits(0, 1000), /servers\/detail.* returned HTTP 500/);
    } finally {
      fake.state.novaStatus = 200;
      await m.close();
    }
  });

  it('reports an unreachable compute endpoint', async () => {
    const c = cluster();
    (c.extra_config as { api_service_endpoints: { compute: string } }).api_service_endpoints.compute =
      'http://127.0.0.1:1/v2.1';
    const m = await OpenstackManager.create(c, ctx);
    await assert.rejects(m.fetchUnits(0, 1000), /compute API 127.0.0.1:1 is unreachable: ECONNREFUSED/);
    await m.close();
  });
});
