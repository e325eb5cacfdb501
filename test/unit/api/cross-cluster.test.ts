// Project names repeat across clusters (`default` namespaces, `acc1` accounts): membership of a project in
// one cluster must grant nothing in another, in the API server and in the load balancer's DB check.

import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CeemsDb, type UnitRecord } from '../../../src/api/db/index.js';
import { DbAuthzSource } from '../../../src/lb/authz.js';
import { NOW, TZ } from '../../fixtures/api/seed.js';
import { type TestServer, testServer } from '../../fixtures/api/server.js';

const H = 3600_000;

const unit = (cluster: string, uuid: string, username: string): UnitRecord => ({
  cluster_id: cluster,
  resource_manager: 'k8s',
  uuid,
  project: 'default',
  username,
  started_at: '2024-05-06T08:00:00+0200',
  started_at_ts: NOW - 4 * H,
  ended_at: '2024-05-06T10:00:00+0200',
  ended_at_ts: NOW - 2 * H,
  total_time_seconds: { walltime: 7200 },
  total_cpu_energy_usage_kwh: { total: 0.5 },
});

function twoClusters(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ceems-xcluster-'));
  const db = CeemsDb.open(dir);
  db.storeCollection({
    start: NOW - 10 * H,
    end: NOW - H,
    timeZone: TZ,
    units: [
      unit('k8s-a', 'pod-a1', 'alice'),
      unit('k8s-b', 'pod-b1', 'mallory'),
      // service-account pods of the namespace in each cluster (D-API-6 pseudo-user)
      unit('k8s-a', 'pod-a2', 'default:unknown'),
      unit('k8s-b', 'pod-b2', 'default:unknown'),
    ],
    users: [
      { cluster_id: 'k8s-a', resource_manager: 'k8s', name: 'alice', projects: ['default'] },
      { cluster_id: 'k8s-b', resource_manager: 'k8s', name: 'mallory', projects: ['default'] },
    ],
    projects: [
      { cluster_id: 'k8s-a', resource_manager: 'k8s', name: 'default', users: ['alice'] },
      { cluster_id: 'k8s-b', resource_manager: 'k8s', name: 'default', users: ['mallory'] },
    ],
  });
  db.close();
  return dir;
}

describe('a project name shared by two clusters', () => {
  let s: TestServer;
  before(async () => {
    s = await testServer({}, twoClusters());
  });
  after(() => s.close());

  test('/units/verify grants a member only the units of their own cluster', async () => {
    assert.equal((await s.get('/api/v1/units/verify?uuid=pod-a1&cluster_id=k8s-a', 'alice')).status, 200);
    assert.equal((await s.get('/api/v1/units/verify?uuid=pod-b1&cluster_id=k8s-b', 'alice')).status, 403);
    assert.equal(
      (await s.get('/api/v1/units/verify?uuid=pod-b1&cluster_id=k8s-a&cluster_id=k8s-b', 'alice')).status,
      403,
    );
    assert.equal((await s.get('/api/v1/units/verify?uuid=pod-b1&cluster_id=k8s-b', 'mallory')).status, 200);
  });

  test('/units?project= lists the service-account pods of the member cluster only', async () => {
    const uuids = async (user: string) =>
      ((await s.get('/api/v1/units?project=default', user)).json.data as { uuid: string }[]).map(
        (u) => u.uuid,
      );
    assert.deepEqual(await uuids('alice'), ['pod-a1', 'pod-a2']);
    assert.deepEqual(await uuids('mallory'), ['pod-b1', 'pod-b2']);
    assert.deepEqual(await uuids('eve'), [], 'not a member anywhere');
  });

  test('/projects and /usage show only the member cluster', async () => {
    const projects = (await s.get('/api/v1/projects', 'alice')).json.data as { cluster_id: string }[];
    assert.deepEqual(
      projects.map((p) => p.cluster_id),
      ['k8s-a'],
    );
    const usage = (await s.get('/api/v1/usage/global', 'alice')).json.data as {
      cluster_id: string;
      username: string;
    }[];
    assert.deepEqual(
      usage.map((u) => `${u.cluster_id}/${u.username}`),
      ['k8s-a/alice', 'k8s-a/default:unknown'],
    );
    const current = (
      await s.get(`/api/v1/usage/current?from=${(NOW - 20 * H) / 1000}&to=${NOW / 1000}`, 'alice')
    ).json.data as { cluster_id: string }[];
    assert.ok(current.length > 0, 'current usage of the own cluster is listed');
    assert.ok(
      current.every((u) => u.cluster_id === 'k8s-a'),
      JSON.stringify(current),
    );
  });

  test('the load balancer DB check grants a member only the units of their own cluster', async () => {
    const authz = new DbAuthzSource(join(s.dataDir, 'ceems.db'));
    try {
      assert.equal(await authz.owns('alice', 'k8s-a', ['pod-a1']), true);
      assert.equal(await authz.owns('alice', 'k8s-b', ['pod-b1']), false);
      assert.equal(await authz.owns('mallory', 'k8s-b', ['pod-b1']), true);
    } finally {
      await authz.close();
    }
  });
});
