// ceems_api_server end to end with several clusters of different managers in one config: SLURM (fake
// sacct in the real -P format), OpenStack and Kubernetes (fake APIs with real JSON), plus a SLURM cluster
// whose sacct fails. The working clusters are collected and served; the failing one is logged and
// retried on every update without holding the others back.

import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type FakeKube, startFakeKube } from '../fixtures/api-data/fake-kube.js';
import { startFakeOpenstack } from '../fixtures/api-data/fake-openstack.js';
import { type Started, startProgram } from '../helpers/process.js';

const FAKE_SLURM = resolve(import.meta.dirname, '../fixtures/api-data/bin');

describe('API server collecting several clusters', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ceems-api-clusters-'));
  let openstack: Awaited<ReturnType<typeof startFakeOpenstack>>;
  let kube: FakeKube;
  let server: Started;

  before(async () => {
    openstack = await startFakeOpenstack();
    kube = await startFakeKube();
    kube.live = [
      {
        metadata: {
          name: 'web',
          namespace: 'team-a',
          uid: 'pod-uid-1',
          creationTimestamp: new Date(Date.now() - 600_000).toISOString(),
          annotations: { 'ceems.io/created-by': 'alice' },
        },
        spec: { containers: [{ name: 'c', resources: { limits: { cpu: '1', memory: '1Gi' } } }] },
        status: {
          phase: 'Running',
          qosClass: 'Guaranteed',
          conditions: [
            {
              type: 'PodReadyToStartContainers',
              status: 'True',
              lastTransitionTime: new Date(Date.now() - 590_000).toISOString(),
            },
          ],
        },
      },
    ];
    const broken = join(dir, 'broken-slurm');
    mkdirSync(broken);
    writeFileSync(
      join(broken, 'sacct'),
      '#!/bin/sh\necho "sacct: error: Problem talking to the database: Connection refused" >&2\nexit 1\n',
    );
    writeFileSync(join(broken, 'sacctmgr'), '#!/bin/sh\nexit 1\n');
    chmodSync(join(broken, 'sacct'), 0o755);
    chmodSync(join(broken, 'sacctmgr'), 0o755);
    const config = join(dir, 'config.yml');
    writeFileSync(
      config,
      `ceems_api_server:
  data:
    path: ${join(dir, 'data')}
    update_interval: 2s
    max_update_interval: 1d
    time_zone: UTC
  admin:
    users: [admin]
clusters:
  - id: slurm-ok
    manager: slurm
    cli: {path: ${FAKE_SLURM}}
  - id: slurm-broken
    manager: slurm
    cli: {path: ${broken}}
  - id: os-0
    manager: openstack
    extra_config:
      api_service_endpoints: {compute: ${openstack.base}/compute/v2.1, identity: ${openstack.base}/identity}
      auth: {identity: {methods: [password], password: {user: {name: admin, domain: {id: default}, password: secret}}}}
  - id: k8s-0
    manager: k8s
    extra_config: {kubeconfig_file: ${kube.kubeconfig(dir)}, ns_users_list_file: ${join(dir, 'none.yaml')}}
`,
    );
    server = await startProgram(
      'ceems_api_server',
      ['--config.file', config, '--web.listen-address=127.0.0.1:0', '--storage.data.skip.delete.old.units'],
      {
        env: {
          FAKE_SACCT_T0: String(Date.now() - 1800_000),
          FAKE_SACCT_JOBS: '10',
          FAKE_SACCT_STEP_S: '60',
        },
        timeoutMs: 30_000,
      },
    );
  });

  after(async () => {
    await server?.stop();
    await openstack?.close();
    await kube?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores and serves the units of every working cluster; the failing one is retried and logged', async () => {
    const now = Math.floor(Date.now() / 1000);
    const url = `${server.url}/api/v1/units/admin?running&from=${now - 2 * 86400}&to=${now + 86400}`;
    let units: Array<{ cluster_id: string; resource_manager: string; uuid: string; username: string }> = [];
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const r = await fetch(url, { headers: { 'X-Grafana-User': 'admin' } });
      if (r.status === 200) {
        units = ((await r.json()) as { data: typeof units }).data;
        if (new Set(units.map((u) => u.cluster_id)).size === 3) break;
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    const byCluster = (id: string) => units.filter((u) => u.cluster_id === id);
    assert.equal(byCluster('slurm-ok').length, 10);
    assert.ok(byCluster('slurm-ok').every((u) => u.resource_manager === 'slurm'));
    assert.deepEqual(
      byCluster('os-0')
        .map((u) => u.uuid)
        .sort(),
      ['a1', 'a2', 'a3'],
    );
    assert.deepEqual(
      byCluster('k8s-0').map((u) => [u.uuid, u.username, u.resource_manager]),
      [['pod-uid-1', 'alice', 'k8s']],
    );
    assert.deepEqual(byCluster('slurm-broken'), []);

    // Flat Kubernetes projects (D-API-3) next to the OpenStack and SLURM ones.
    const projects = (await (
      await fetch(`${server.url}/api/v1/projects/admin?cluster_id=k8s-0`, {
        headers: { 'X-Grafana-User': 'admin' },
      })
    ).json()) as { data: Array<{ name: string; users: string[] }> };
    assert.deepEqual(
      projects.data.map((p) => [p.name, p.users]),
      [
        ['team-a', ['alice', 'bob']],
        ['team-b', ['carol']],
      ],
    );

    // The failing cluster is retried on every update (2 s) while the others keep collecting.
    const failures = () =>
      (
        server
          .stderr()
          .match(
            /msg="Collection failed; the window is retried at the next update" cluster_id=slurm-broken/g,
          ) ?? []
      ).length;
    const collected = () =>
      (server.stderr().match(/msg="Collected units" cluster_id=slurm-ok/g) ?? []).length;
    const until = Date.now() + 20_000;
    while ((failures() < 2 || collected() < 2) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 200));
    assert.ok(failures() >= 2, server.stderr());
    assert.match(
      server.stderr(),
      /cluster_id=slurm-broken .*Problem talking to the database: Connection refused/,
    );
    assert.ok(collected() >= 2, `slurm-ok collected ${collected()} times`);
  });
});
