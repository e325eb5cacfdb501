// The energy of each cluster's nodes and the share no unit got (issue 20, B4): stored per day by the real
// write path, summed by the admin stats routes, omitted where none was measured.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { CeemsDb } from '../../../src/api/db/index.js';
import { ADMIN, NOW, seedDb, TZ } from '../../fixtures/api/seed.js';
import { type TestServer, testServer } from '../../fixtures/api/server.js';

const H = 3600_000;

describe('node energy in /stats/{current,global}/admin', () => {
  let s: TestServer;
  before(async () => {
    const dir = seedDb();
    const db = CeemsDb.open(dir);
    const window = (end: number, node: number, unattributed: number, cluster_id = 'slurm-0') =>
      db.storeCollection({
        start: end - H,
        end,
        timeZone: TZ,
        units: [],
        clusterEnergy: { cluster_id, resource_manager: 'slurm', kwh: { node, unattributed } },
      });
    // two windows today, one three days ago
    window(NOW - 2 * H, 4, 1);
    window(NOW - H, 6, 0.5);
    window(NOW - 72 * H, 10, 3);
    // a cluster without any unit: its idle nodes' power is all unattributed
    window(NOW - H, 2, 2, 'idle-0');
    db.close();
    s = await testServer({}, dir);
  });
  after(async () => {
    await s.close();
    rmSync(s.dataDir, { recursive: true, force: true });
  });

  const stats = async (path: string) => {
    const r = await s.get(path, ADMIN);
    assert.equal(r.status, 200, r.body);
    return new Map<string, Record<string, unknown>>(
      r.json.data.map((x: { cluster_id: string }) => [x.cluster_id, x]),
    );
  };

  test("current: the days of the window, summed; clusters without a measurement don't have the field", async () => {
    const today = await stats(`/api/v1/stats/current/admin?from=${(NOW - 6 * H) / 1000}&to=${NOW / 1000}`);
    assert.deepEqual(today.get('slurm-0')!.total_node_energy_kwh, { node: 10, unattributed: 1.5 });
    assert.ok(!('total_node_energy_kwh' in today.get('os-0')!));
    // the unit counts are unchanged
    assert.equal(typeof today.get('slurm-0')!.num_units, 'number');
  });

  test('a cluster whose nodes drew power without any unit is listed with no units and its energy', async () => {
    const today = await stats(`/api/v1/stats/current/admin?from=${(NOW - 6 * H) / 1000}&to=${NOW / 1000}`);
    assert.deepEqual(today.get('idle-0'), {
      cluster_id: 'idle-0',
      resource_manager: 'slurm',
      num_units: 0,
      num_inactive_units: 0,
      num_active_units: 0,
      num_projects: 0,
      num_users: 0,
      total_node_energy_kwh: { node: 2, unattributed: 2 },
    });
    const ids = [...today.keys()];
    assert.deepEqual(ids, [...ids].sort(), 'ordered by cluster id');
    const one = await stats('/api/v1/stats/global/admin?cluster_id=slurm-0');
    assert.ok(!one.has('idle-0'), 'the cluster_id filter holds for energy-only rows');
  });

  test('global: every day', async () => {
    const all = await stats('/api/v1/stats/global/admin?cluster_id=slurm-0');
    assert.deepEqual([...all.keys()], ['slurm-0']);
    assert.deepEqual(all.get('slurm-0')!.total_node_energy_kwh, { node: 20, unattributed: 4.5 });
  });
});
