import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import type { ClusterConfig } from '../../../../src/api/config.js';
import { OpenstackManager, serverActivity } from '../../../../src/api/resource/openstack.js';
import { formatElapsed } from '../../../../src/api/resource/types.js';
import { createLogger } from '../../../../src/common/logger.js';

const logger = createLogger({ level: 'fatal' });
const TZ = 'Europe/Paris';
const T = (s: string) => Date.parse(s);

// Real Keystone/Nova JSON shapes (trimmed to the fields the manager reads plus some it must ignore).
const USERS = [
  { id: 'u-alice', name: 'alice', domain_id: 'default', enabled: true, links: { self: 'x' } },
  { id: 'u-bob', name: 'bob', domain_id: 'default', enabled: true, links: { self: 'x' } },
  { id: 'u-carol', name: 'carol', domain_id: 'default', enabled: true, links: { self: 'x' } },
];
const MEMBERSHIP: Record<string, Array<{ id: string; name: string }>> = {
  'u-alice': [
    { id: 'p-phys', name: 'physics' },
    { id: 'p-chem', name: 'chemistry' },
  ],
  'u-bob': [{ id: 'p-phys', name: 'physics' }],
  'u-carol': [],
};
const flavor = (vcpus: number, ram: number, extra: Record<string, string> = {}) => ({
  vcpus,
  ram,
  disk: 20,
  ephemeral: 0,
  swap: 0,
  original_name: `m1.${vcpus}`,
  extra_specs: extra,
});
const server = (id: string, status: string, o: Record<string, unknown>) => ({
  id,
  name: `vm-${id}`,
  status,
  tenant_id: 'p-phys',
  user_id: 'u-alice',
  created: '2024-05-06T08:00:00Z',
  updated: '2024-05-06T08:01:00Z',
  'OS-SRV-USG:launched_at': '2024-05-06T08:00:30.000000',
  'OS-SRV-USG:terminated_at': null,
  'OS-EXT-STS:power_state': 1,
  'OS-EXT-AZ:availability_zone': 'nova',
  'OS-EXT-SRV-ATTR:reservation_id': `r-${id}`,
  'OS-EXT-SRV-ATTR:host': 'compute-1',
  hostId: 'abc',
  metadata: { purpose: 'test' },
  tags: ['t1'],
  flavor: flavor(2, 4096),
  links: [],
  ...o,
});

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
  let app: FastifyInstance;
  let base: string;
  let tokens = 0;
  let valid = new Set<string>();
  let authBodies: unknown[] = [];
  const seen: Array<{ url: string; token?: string; version?: string }> = [];
  let revokeAfter = -1;
  let novaStatus = 200;

  before(async () => {
    app = Fastify();
    app.post('/identity/v3/auth/tokens', async (req, reply) => {
      authBodies.push(req.body);
      const body = req.body as { auth?: { identity?: { password?: { user?: { password?: string } } } } };
      if (body.auth?.identity?.password?.user?.password !== 'secret')
        return reply
          .code(401)
          .send({ error: { code: 401, message: 'The request you have made requires authentication.' } });
      const t = `tok-${++tokens}`;
      valid.add(t);
      return reply
        .code(201)
        .header('X-Subject-Token', t)
        .send({ token: { expires_at: '2099-01-01T00:00:00.000000Z' } });
    });
    app.addHook('onRequest', async (req, reply) => {
      if (req.url.startsWith('/identity/v3/auth')) return;
      const token = req.headers['x-auth-token'] as string | undefined;
      seen.push({
        url: req.url,
        token,
        version: req.headers['x-openstack-nova-api-version'] as string | undefined,
      });
      if (revokeAfter >= 0 && seen.length > revokeAfter) {
        valid = new Set();
        revokeAfter = -1;
      }
      if (!token || !valid.has(token))
        return reply.code(401).send({ error: { code: 401, message: 'Unauthorized' } });
    });
    app.get('/identity/v3/users', async (req) => {
      const page = (req.query as { page?: string }).page === '2';
      return {
        users: page ? USERS.slice(2) : USERS.slice(0, 2),
        links: {
          self: `${base}/identity/v3/users`,
          previous: null,
          next: page ? null : `${base}/identity/v3/users?page=2`,
        },
      };
    });
    app.get('/identity/v3/users/:id/projects', async (req) => ({
      projects: MEMBERSHIP[(req.params as { id: string }).id]!.map((p) => ({
        ...p,
        domain_id: 'default',
        enabled: true,
      })),
      links: { self: 'x', previous: null, next: null },
    }));
    app.get('/compute/v2.1/servers/detail', async (req, reply) => {
      if (novaStatus !== 200)
        return reply.code(novaStatus).send({ computeFault: { code: novaStatus, message: 'boom' } });
      const q = req.query as Record<string, string>;
      if (q.deleted === 'true') {
        assert.equal(q.all_tenants, 'true');
        assert.match(q['changes-since']!, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4}$/);
        return {
          servers: [
            server('d1', 'DELETED', {
              user_id: 'u-bob',
              'OS-SRV-USG:terminated_at': '2024-05-06T10:30:00.000000',
              'OS-EXT-STS:power_state': 0,
              flavor: flavor(4, 8192, { 'resources:VGPU': '1' }),
            }),
          ],
        };
      }
      if (q.marker === 'a2')
        return {
          servers: [
            server('a3', 'SHUTOFF', {
              tenant_id: 'p-chem',
              updated: '2024-05-06T10:15:00Z',
              'OS-EXT-STS:power_state': 4,
            }),
          ],
        };
      return {
        servers: [server('a1', 'ACTIVE', {}), server('a2', 'ACTIVE', { flavor: { id: '42', links: [] } })],
        servers_links: [
          { rel: 'next', href: `${base}/compute/v2.1/servers/detail?all_tenants=true&marker=a2` },
        ],
      };
    });
    app.get('/compute/v2.1/flavors/detail', async () => ({
      flavors: [
        {
          id: '42',
          name: 'm1.large',
          vcpus: 8,
          ram: 16384,
          disk: 80,
          swap: '',
          'OS-FLV-EXT-DATA:ephemeral': 0,
        },
      ],
    }));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(() => app.close());

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
    authBodies = [];
    const m = await OpenstackManager.create(cluster(), ctx);
    assert.deepEqual(
      authBodies[0],
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
    seen.length = 0;
    revokeAfter = 1;
    const tokensBefore = tokens;
    const start = T('2024-05-06T10:00:00Z');
    const end = T('2024-05-06T11:00:00Z');
    const units = await m.fetchUnits(start, end);
    assert.equal(tokens, tokensBefore + 1);
    assert.ok(seen.some((s) => s.token === `tok-${tokens}`));
    assert.ok(seen.filter((s) => s.url.includes('/compute/')).every((s) => s.version === 'latest'));
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

  it('reports Nova errors (the window is retried)', async () => {
    const m = await OpenstackManager.create(cluster(), ctx);
    novaStatus = 500;
    try {
      await assert.rejects(m.fetchUnits(0, 1000), /servers\/detail.* returned HTTP 500/);
    } finally {
      novaStatus = 200;
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
