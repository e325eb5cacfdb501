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
    ? UNITS.map((u) => footprintRecord(u))
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
      assert.deepEqual(
        JSON.parse(r.stdout),
        UNITS.map((u) => footprintRecord(u)),
      );
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
        'schema_version,uuid,cluster_id,project,username,name,state,started_at,ended_at,elapsed,short_unit,sample_interval_seconds,' +
          'host_kwh,host_lower_kwh,host_upper_kwh,host_provenance,host_estimated_fraction,host_pue,host_sources,' +
          'gpu_kwh,gpu_lower_kwh,gpu_upper_kwh,gpu_provenance,gpu_estimated_fraction,gpu_pue,gpu_sources,' +
          'total_kwh,total_lower_kwh,total_upper_kwh,' +
          'owid_factor_g_per_kwh,owid_total_g,owid_lower_g,owid_upper_g,' +
          'rte_factor_g_per_kwh,rte_total_g,rte_lower_g,rte_upper_g,' +
          'embodied_g,embodied_lower_g,embodied_upper_g,embodied_class',
      );
      // every cell is the record's value at full precision (or empty), in the header's order
      const header = lines[0]!.split(',');
      const rows = lines.slice(1).map((l) => {
        const cells = l.match(/("(?:[^"]|"")*"|[^,]*)(,|$)/g)!.map((c) => c.replace(/,$/, ''));
        return Object.fromEntries(header.map((h, i) => [h, cells[i]]));
      });
      const [first, second] = UNITS.map((u) => footprintRecord(u));
      assert.deepEqual(
        [rows[0]!.uuid, rows[0]!.host_provenance, rows[0]!.host_sources, rows[0]!.gpu_provenance],
        ['11', 'estimated', 'estimated=0.5', 'none'],
      );
      assert.deepEqual([rows[0]!.short_unit, rows[0]!.sample_interval_seconds], ['false', '']);
      assert.equal(rows[0]!.host_lower_kwh, String(first!.energy.host.lower_kwh));
      assert.equal(rows[0]!.owid_factor_g_per_kwh, '56');
      assert.equal(rows[0]!.rte_upper_g, String(first!.emissions.operational[1]!.upper_g));
      assert.equal(rows[0]!.embodied_g, String(first!.emissions.embodied.grams));
      assert.equal(rows[0]!.embodied_class, 'default');
      assert.deepEqual(
        [
          rows[1]!.name,
          rows[1]!.host_provenance,
          rows[1]!.host_sources,
          rows[1]!.gpu_sources,
          rows[1]!.owid_total_g,
        ],
        ['"a, ""quoted"" name"', 'partly_unknown', 'ipmi=0.75;unknown=0.25', 'dcgm=1', ''],
      );
      assert.equal(rows[1]!.total_upper_kwh, String(second!.energy.upper_kwh));
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
