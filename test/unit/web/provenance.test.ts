// The web view's measured/estimated flag from the stored provenance of a unit's energy (issue 20), without
// any LB; units stored without provenance stay unknown when no LB can tell.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { CeemsDb } from '../../../src/api/db/index.js';
import { seedDb } from '../../fixtures/api/seed.js';
import { type TestServer, testServer } from '../../fixtures/api/server.js';

describe('web view energy source from the stored provenance', () => {
  let s: TestServer;
  before(async () => {
    const dir = seedDb();
    const db = CeemsDb.open(dir);
    // every seeded unit has 0.25 kWh of host energy; give some of them the provenance of issue 20
    const set = (uuid: string, columns: string) =>
      db.db.prepare(`UPDATE units SET ${columns} WHERE uuid = ?`).run(uuid);
    set('1003', `total_cpu_energy_by_source_kwh = '{"estimated":0.25}'`);
    set('900', `total_cpu_energy_by_source_kwh = '{"rapl":0.25}'`);
    set(
      '1001',
      `total_cpu_energy_by_source_kwh = '{"estimated":0.25}', total_gpu_energy_usage_kwh = '{"total":1}', total_gpu_energy_by_source_kwh = '{"dcgm":1}'`,
    );
    db.close();
    s = await testServer({}, dir);
  });
  after(async () => {
    await s.close();
    rmSync(s.dataDir, { recursive: true, force: true });
  });

  test('estimated, measured, mixed, or unknown without provenance and without an LB', async () => {
    const sources = async (user: string) =>
      Object.fromEntries(
        (await s.get('/ui/api/units', user)).json.rows.map((r: { uuid: string; energy_source: string }) => [
          r.uuid,
          r.energy_source,
        ]),
      );
    assert.deepEqual(await sources('bob'), { '1003': 'estimated' });
    assert.deepEqual(await sources('alice'), {
      '1001': 'mixed',
      '1002': 'unknown',
      '900': 'measured',
      'vm-aaaa': 'unknown',
    });
    const unit = await s.get('/ui/api/unit?cluster_id=slurm-0&uuid=1003', 'bob');
    assert.equal(unit.json.unit.energy_source, 'estimated', unit.body);
  });
});
