import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ClusterConfig } from '../../../../src/api/config.js';
import { K8sManager, type K8sPod, parseQuantity, podToUnit } from '../../../../src/api/resource/k8s.js';
import { createLogger } from '../../../../src/common/logger.js';
import { type FakeKube, startFakeKube } from '../../../fixtures/api-data/fake-kube.js';

const logger = createLogger({ level: 'silent' });
const T = (s: string) => Date.parse(s);
const CFG = {
  gpu_resource_names: ['nvidia.com/gpu', 'amd.com/gpu'],
  username_annotations: ['ceems.io/created-by'],
  project_annotations: ['example.org/project'],
};
const start = T('2024-05-06T10:00:00Z');
const end = T('2024-05-06T11:00:00Z');
const opts = { clusterId: 'k8s-0', timeZone: 'UTC', start, end };

// Real Pod object JSON (trimmed).
function pod(
  name: string,
  o: {
    phase: string;
    ready?: string;
    readyStatus?: string;
    deleted?: string;
    annotations?: Record<string, string>;
    ns?: string;
    limits?: Record<string, string>[];
    podLimits?: Record<string, string>;
  },
): K8sPod {
  return {
    metadata: {
      name,
      namespace: o.ns ?? 'team-a',
      uid: `uid-${name}`,
      creationTimestamp: '2024-05-06T09:30:00Z',
      ...(o.deleted ? { deletionTimestamp: o.deleted } : {}),
      ...(o.annotations ? { annotations: o.annotations } : {}),
      labels: { app: name },
      resourceVersion: '100',
    } as K8sPod['metadata'],
    spec: {
      ...(o.podLimits ? { resources: { limits: o.podLimits } } : {}),
      containers: (o.limits ?? [{ cpu: '500m', memory: '128Mi' }]).map((l, i) => ({
        name: `c${i}`,
        image: 'busybox',
        resources: { limits: l, requests: l },
      })),
    },
    status: {
      phase: o.phase,
      qosClass: 'Guaranteed',
      conditions: o.ready
        ? [
            {
              type: 'PodReadyToStartContainers',
              status: o.readyStatus ?? 'True',
              lastTransitionTime: o.ready,
              ...(o.readyStatus === 'False' ? { reason: 'ContainersNotReady' } : {}),
            },
            { type: 'Ready', status: 'True', lastTransitionTime: o.ready },
          ]
        : [],
    },
  };
}

describe('Kubernetes pods → units', () => {
  it('quantities', () => {
    assert.equal(parseQuantity('500m'), 0.5);
    assert.equal(parseQuantity('2'), 2);
    assert.equal(parseQuantity('128Mi'), 128 * 2 ** 20);
    assert.equal(parseQuantity('1G'), 1e9);
    assert.equal(parseQuantity('1e3'), 1000);
    assert.ok(Number.isNaN(parseQuantity('lots')));
  });

  it('running pod started inside the window: active = end − started (D-API-7)', () => {
    const u = podToUnit(
      pod('web', {
        phase: 'Running',
        ready: '2024-05-06T10:20:00Z',
        annotations: { 'ceems.io/created-by': 'alice' },
        limits: [
          { cpu: '500m', memory: '128Mi', 'nvidia.com/gpu': '1' },
          { cpu: '1', memory: '64Mi' },
        ],
      }),
      CFG,
      opts,
    );
    assert.equal(u.uuid, 'uid-web');
    assert.equal(u.resource_manager, 'k8s');
    assert.equal(u.project, 'team-a');
    assert.equal(u.username, 'alice');
    assert.equal(u.state, 'Running/Ready');
    assert.equal(u.created_at, '2024-05-06T09:30:00+0000');
    assert.equal(u.started_at, '2024-05-06T10:20:00+0000');
    assert.equal(u.ended_at, 'N/A');
    assert.equal(u.elapsed, '01:30:00');
    assert.deepEqual(u.allocation, { vcpus: 1.5, mem: 192 * 2 ** 20, 'nvidia.com/gpu': 1 });
    assert.deepEqual(u.total_time_seconds, {
      walltime: 2400,
      alloc_cputime: 3600,
      alloc_cpumemtime: 192 * 2 ** 20 * 2400,
      alloc_gputime: 2400,
      alloc_gpumemtime: 2400,
    });
    assert.deepEqual(u.tags, {
      qos: 'Guaranteed',
      annotations: { 'ceems.io/created-by': 'alice' },
      labels: { app: 'web' },
    });
  });

  it('running pod not ready, service-account owner, pod-level limits, project annotation', () => {
    const u = podToUnit(
      pod('job', {
        phase: 'Running',
        ready: '2024-05-06T09:40:00Z',
        readyStatus: 'False',
        annotations: {
          'ceems.io/created-by': 'system:serviceaccount:ci:builder',
          'example.org/project': 'proj-x',
        },
        podLimits: { cpu: '2', memory: '1Gi' },
      }),
      CFG,
      opts,
    );
    assert.equal(u.state, 'Running/ContainersNotReady');
    assert.equal(u.project, 'proj-x');
    assert.equal(u.username, 'proj-x:unknown');
    assert.equal(u.total_time_seconds!.walltime, 3600);
    assert.deepEqual(u.allocation, { vcpus: 2, mem: 2 ** 30 });
  });

  it('control-plane identities are no owner either: system:node, system:kube-controller-manager', () => {
    for (const creator of ['system:node:worker-3', 'system:kube-controller-manager', 'system:admin'])
      assert.equal(
        podToUnit(pod('x', { phase: 'Running', annotations: { 'ceems.io/created-by': creator } }), CFG, opts)
          .username,
        'team-a:unknown',
        creator,
      );
    const person = pod('x', { phase: 'Running', annotations: { 'ceems.io/created-by': 'alice' } });
    assert.equal(podToUnit(person, CFG, opts).username, 'alice');
  });

  it('succeeded pod deleted in the window; pending pod; minimum resources', () => {
    const done = podToUnit(
      pod('done', { phase: 'Succeeded', ready: '2024-05-06T09:31:00Z', deleted: '2024-05-06T10:10:00Z' }),
      CFG,
      opts,
    );
    assert.equal(done.state, 'Succeeded');
    assert.equal(done.ended_at_ts, T('2024-05-06T10:10:00Z'));
    assert.equal(done.elapsed, '00:40:00');
    assert.equal(done.total_time_seconds!.walltime, 600);
    assert.equal(done.username, 'team-a:unknown');
    const pending = podToUnit(pod('wait', { phase: 'Pending', limits: [{}] }), CFG, opts);
    assert.equal(pending.started_at, 'N/A');
    assert.equal(pending.elapsed, 'N/A');
    assert.equal(pending.total_time_seconds!.walltime, 0);
    assert.deepEqual(pending.allocation, { vcpus: 0.001, mem: 1 });
  });
});

describe('Kubernetes manager against a fake API server', () => {
  let kube: FakeKube;
  const dir = mkdtempSync(join(tmpdir(), 'ceems-k8s-'));
  before(async () => {
    kube = await startFakeKube();
  });
  after(() => kube.close());

  const kubeconfig = () => kube.kubeconfig(dir);
  const cluster = (extra: Record<string, unknown>): ClusterConfig => ({
    id: 'k8s-0',
    manager: 'k8s',
    updaters: [],
    extra_config: extra,
  });
  const ctx = { logger, timeZone: 'UTC', configDir: dir, updateIntervalMs: 60_000 };

  it('lists live pods, keeps pods deleted between fetches (watch), and builds flat users/projects', async () => {
    const usersFile = join(dir, 'users.yaml');
    writeFileSync(usersFile, 'users:\n  team-a: [alice, dave]\n  team-c: [erin]\n');
    kube.live = [
      pod('web', {
        phase: 'Running',
        ready: '2024-05-06T10:20:00Z',
        annotations: { 'ceems.io/created-by': 'alice' },
      }),
    ];
    const m = await K8sManager.create(
      cluster({ kubeconfig_file: kubeconfig(), ns_users_list_file: usersFile }),
      ctx,
    );
    try {
      const deadline = Date.now() + 5000;
      while (!kube.watchEvent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok(kube.watchEvent, 'the manager watches pods');
      const gone = pod('batch', {
        phase: 'Succeeded',
        ready: '2024-05-06T09:31:00Z',
        deleted: '2024-05-06T10:10:00Z',
        ns: 'team-b',
        annotations: { 'ceems.io/created-by': 'frank' },
      });
      kube.watchEvent!(JSON.stringify({ type: 'DELETED', object: gone }));
      await new Promise((r) => setTimeout(r, 200));
      const units = await m.fetchUnits(start, end);
      assert.deepEqual(units.map((u) => u.uuid).sort(), ['uid-batch', 'uid-web']);
      assert.equal(units.find((u) => u.uuid === 'uid-batch')!.total_time_seconds!.walltime, 600);
      // the next fetch only sees live pods
      const again = await m.fetchUnits(end, end + 60_000);
      assert.deepEqual(
        again.map((u) => u.uuid),
        ['uid-web'],
      );

      const up = await m.fetchUsersProjects(end);
      assert.deepEqual(
        up.projects.map((p) => [p.name, p.users]),
        [
          ['team-a', ['alice', 'bob', 'dave']],
          ['team-b', ['carol', 'frank']],
          ['team-c', ['erin']],
        ],
      );
      assert.deepEqual(
        up.users.map((u) => [u.name, u.projects]),
        [
          ['alice', ['team-a']],
          ['bob', ['team-a']],
          ['carol', ['team-b']],
          ['dave', ['team-a']],
          ['erin', ['team-c']],
          ['frank', ['team-b']],
        ],
      );
      assert.ok(kube.auth.every((a) => a === 'Bearer k8s-token'));
    } finally {
      await m.close();
    }
  });

  it('watches again after the API server ends the watch stream', async () => {
    const m = await K8sManager.create(cluster({ kubeconfig_file: kubeconfig() }), ctx);
    try {
      const waitWatch = async () => {
        const deadline = Date.now() + 5000;
        while (!kube.watchEvent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        assert.ok(kube.watchEvent, 'watch open');
      };
      await waitWatch();
      // 410 Gone as the API server sends it, then the stream ends: the manager re-lists and re-watches.
      kube.watchEvent!(
        JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } }),
      );
      kube.endWatch!();
      kube.watchEvent = undefined;
      await waitWatch();
      const gone = pod('late', {
        phase: 'Failed',
        deleted: '2024-05-06T10:20:00Z',
        ready: '2024-05-06T10:00:00Z',
      });
      kube.watchEvent!(JSON.stringify({ type: 'DELETED', object: gone }));
      await new Promise((r) => setTimeout(r, 200));
      const units = await m.fetchUnits(start, end);
      assert.ok(units.some((u) => u.uuid === 'uid-late'));
    } finally {
      await m.close();
    }
  });

  it('reports API errors with the status message', async () => {
    const p = kube.kubeconfig(dir, 'bad');
    const m = await K8sManager.create(cluster({ kubeconfig_file: p }), ctx);
    try {
      await assert.rejects(
        m.fetchUnits(start, end),
        /Kubernetes API \/api\/v1\/pods returned HTTP 401: Unauthorized/,
      );
    } finally {
      await m.close();
    }
  });

  it('fails clearly without kubeconfig outside a cluster', async () => {
    await assert.rejects(
      K8sManager.create(cluster({}), ctx),
      /extra_config.kubeconfig_file is not set and the server does not run in a Kubernetes cluster/,
    );
  });
});
