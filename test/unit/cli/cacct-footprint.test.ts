// cacct and energy provenance (issue 20): the provenance field keys, and the footprint formats that print
// the API's footprint records (requests checked on a fake API server, records made by the API's own code).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

process.env.TZ = 'UTC';

import { footprintRecord } from '../../../src/api/footprint.js';
import type { Unit } from '../../../src/api/models.js';
import { main } from '../../../src/cli/cacct/main.js';
import { type Handler, runCacct, withFakeApi } from './fake-api.js';

const WINDOW = ['--starttime=2024-05-06', '--endtime=2024-05-07T12:00'];

const UNITS: Unit[] = [
  {
    uuid: '11',
    project: 'acc1',
    username: 'usr1',
    state: 'COMPLETED',
    total_cpu_energy_usage_kwh: { total: 0.5 },
    total_cpu_energy_by_source_kwh: { estimated: 0.5 },
    total_cpu_energy_by_pue_kwh: { '1.2': 0.5 },
    total_cpu_emissions_gms: { owid_total: 28, rte_total: 20 },
  },
  {
    uuid: '12',
    project: 'acc1',
    username: 'usr1',
    name: 'a, "quoted" name',
    total_cpu_energy_usage_kwh: { total: 1 },
    total_cpu_energy_by_source_kwh: { ipmi: 0.75 },
    total_gpu_energy_usage_kwh: { total: 1 },
    total_gpu_energy_by_source_kwh: { dcgm: 1 },
    total_cpu_emissions_gms: { rte_total: 50 },
  },
];

const api: Handler = (req) => {
  const data = req.path.includes('/units/footprint')
    ? UNITS.map(footprintRecord)
    : req.path.endsWith('/units') || req.path.endsWith('/units/admin')
      ? UNITS
      : null;
  return { status: 200, body: JSON.stringify({ status: 'success', data }) };
};

describe('cacct provenance field keys', () => {
  it('name every source and PUE key of the units, even a single one', async () => {
    await withFakeApi(api, async (dir) => {
      const r = await runCacct(
        main,
        [...WINDOW, '--format=jobid,hostenergy,hostenergysource,hostenergypue,gpuenergysource', '--csv'],
        { configDirs: [dir] },
      );
      assert.equal(r.code, 0, r.stderr);
      const [header, first, second] = r.stdout.split('\n');
      assert.equal(
        header,
        'Job ID,Host Energy(kWh),Host Energy by Source(kWh):estimated,Host Energy by Source(kWh):ipmi,Host Energy by PUE(kWh):1.2,GPU Energy by Source(kWh):dcgm',
      );
      assert.equal(first, '11,0.500000,0.500000,,0.500000,');
      assert.equal(second, '12,1.000000,,0.750000,,1.000000');
    });
  });

  it('are listed by --helpformat but not added to --long (the original 18 fields)', async () => {
    const help = await runCacct(main, ['--helpformat'], { configDirs: [] });
    assert.match(help.stdout, /^hostenergysource +Host Energy by Source\(kWh\)$/m);
    await withFakeApi(api, async (dir, fake) => {
      const r = await runCacct(main, [...WINDOW, '--long', '--csv'], { configDirs: [dir] });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!r.stdout.includes('by Source'), r.stdout.split('\n')[0]);
      const fields = fake.requests[0]!.query.filter(([k]) => k === 'field').map(([, v]) => v);
      assert.ok(!fields.includes('total_cpu_energy_by_source_kwh'));
    });
  });
});

describe('cacct --format=footprint-json|footprint-csv', () => {
  it('footprint-json prints the records of /units/footprint for the window, no field list', async () => {
    await withFakeApi(api, async (dir, fake) => {
      const r = await runCacct(main, [...WINDOW, '--format=footprint-json', '--account=acc1'], {
        configDirs: [dir],
      });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), UNITS.map(footprintRecord));
      assert.equal(fake.requests.length, 1);
      const req = fake.requests[0]!;
      assert.equal(req.path, '/api/v1/units/footprint');
      assert.deepEqual(
        req.query.filter(([k]) => k !== 'from' && k !== 'to'),
        [
          ['cluster_id', ''],
          ['project', 'acc1'],
          ['running', 'true'],
        ],
      );
    });
  });

  it('footprint-csv flattens each record; other users go through the admin route', async () => {
    await withFakeApi(api, async (dir, fake) => {
      const r = await runCacct(
        main,
        [...WINDOW, '--format=footprint-csv', '--user=usr1,usr2', '--job=11,12'],
        {
          configDirs: [dir],
        },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(fake.requests[0]!.path, '/api/v1/units/footprint/admin');
      const lines = r.stdout.trimEnd().split('\n');
      assert.equal(
        lines[0],
        'schema_version,uuid,cluster_id,project,username,name,state,started_at,ended_at,elapsed,' +
          'host_kwh,host_provenance,host_estimated_fraction,host_pue,host_sources,' +
          'gpu_kwh,gpu_provenance,gpu_estimated_fraction,gpu_pue,gpu_sources,total_kwh,' +
          'owid_factor_g_per_kwh,owid_total_g,rte_factor_g_per_kwh,rte_total_g',
      );
      assert.equal(
        lines[1],
        '1.0.0,11,,acc1,usr1,,COMPLETED,,,,0.5,estimated,1,1.2,estimated=0.5,0,none,,,,0.5,56,28,40,20',
      );
      assert.equal(
        lines[2],
        '1.0.0,12,,acc1,usr1,"a, ""quoted"" name",,,,,1,partly_unknown,0,,ipmi=0.75;unknown=0.25,1,measured,0,,dcgm=1,2,,,25,50',
      );
    });
  });

  it('refuses to be combined with another output or --long/--ts, naming both', async () => {
    for (const [flag, name] of [
      ['--csv', 'csv'],
      ['--json', 'json'],
      ['--long', 'long'],
    ]) {
      const r = await runCacct(main, ['--format=footprint-csv', flag!], { configDirs: [] });
      assert.equal(r.code, 1);
      assert.equal(
        r.stderr,
        `cacct: error: failed to parse CLI flags: --format=footprint-csv cannot be used with --${name}\n`,
      );
    }
  });
});
