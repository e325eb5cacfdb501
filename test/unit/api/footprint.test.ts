// The footprint record (issue 20): provenance arithmetic, the versioned JSON Schema in docs/ (validated
// with a real validator), and `/units/footprint` against `/units` on a DB written by the real write path.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { loadConfig } from '../../../src/api/config.js';
import { CeemsDb } from '../../../src/api/db/index.js';
import { ClusterEmbodied, DEFAULT_EMBODIED, embodiedEmissions } from '../../../src/api/embodied.js';
import {
  energyPart,
  FOOTPRINT_SCHEMA_VERSION,
  type FootprintRecord,
  footprintRecord,
  operationalEmissions,
  provenanceOf,
  weightedPue,
} from '../../../src/api/footprint.js';
import { FOOTPRINT_SCHEMA } from '../../../src/api/footprint-schema.js';
import { quadrature } from '../../../src/api/uncertainty.js';
import { ADMIN, NOW, seedDb, TZ, UNITS } from '../../fixtures/api/seed.js';
import { type TestServer, testServer } from '../../fixtures/api/server.js';

/** A unit of one hour sampled every 30 s. */
const LONG = { intervalS: 30, durationS: 3600 };
const SCHEMA_FILE = join(import.meta.dirname, '../../../docs/footprint-schema.json');
const validate = new Ajv2020({ strict: true, allErrors: true }).compile(FOOTPRINT_SCHEMA);

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) <= 1e-12 * Math.abs(b), `${a} ≠ ${b}`);

/** Fails with every schema error of `record`. */
function assertValid(record: unknown, what: string): void {
  assert.ok(validate(record), `${what}: ${JSON.stringify(validate.errors, null, 1)}`);
}

describe('footprint arithmetic', () => {
  test('sources cover the energy; what they do not is unknown; provenance follows the shares', () => {
    const part = energyPart('host', { total: 1 }, { rapl: 0.5, estimated: 0.25 }, { '1.2': 0.75 }, LONG);
    const { lower_kwh, upper_kwh, uncertainty, ...provenance } = part;
    assert.deepEqual(provenance, {
      kwh: 1,
      sources: { rapl: 0.5, estimated: 0.25, unknown: 0.25 },
      provenance: 'partly_estimated',
      estimated_fraction: 0.25,
      pue: 1.2,
      counter_node_kwh: null,
    });
    // source error: (0.5 × 5 % + 0.25 × 30 % + 0.25 × 30 %) / 1 = 17.5 %; attribution 10 %; sampling 30/3600
    assert.deepEqual(uncertainty, {
      source: 0.175,
      attribution: 0.1,
      sampling: 30 / 3600,
      combined: quadrature(0.175, 0.1, 30 / 3600),
    });
    assert.equal(lower_kwh, 1 - uncertainty.combined);
    assert.equal(upper_kwh, 1 + uncertainty.combined);
    const sources = (kwh: number, bySource: Record<string, number>) =>
      energyPart('host', { total: kwh }, bySource, undefined, LONG).sources;
    // rounding of the two sums of the same samples is no unknown energy
    assert.deepEqual(sources(0.3, { ipmi: 0.1 + 0.2 }), { ipmi: 0.1 + 0.2 });
    // the empty label of series without provenance is unknown
    assert.deepEqual(sources(2, { '': 2 }), { unknown: 2 });
    assert.equal(provenanceOf({ estimated: 2 }), 'estimated');
    assert.equal(provenanceOf({ rapl: 2 }), 'measured');
    assert.equal(provenanceOf({ rapl: 2, unknown: 1 }), 'partly_unknown');
    assert.equal(provenanceOf({ unknown: 1 }), 'unknown');
    assert.equal(provenanceOf({}), 'none');
    assert.deepEqual(energyPart('gpu', undefined, undefined, undefined, LONG), {
      kwh: 0,
      sources: {},
      provenance: 'none',
      estimated_fraction: null,
      pue: null,
      lower_kwh: 0,
      upper_kwh: 0,
      uncertainty: {
        source: 0,
        attribution: 0.02,
        sampling: 30 / 3600,
        combined: quadrature(0, 0.02, 30 / 3600),
      },
      counter_node_kwh: null,
    });
  });

  test('PUE is weighted by energy; the factor is emissions over energy, per provider, never summed', () => {
    assert.equal(weightedPue({ '1': 1, '1.5': 3 }), 1.375);
    assert.equal(weightedPue({ '': 5, x: 1 }), null);
    const plain = (e: ReturnType<typeof operationalEmissions>) =>
      e.map(({ provider, factor_g_per_kwh, host_g, gpu_g, total_g }) => ({
        provider,
        factor_g_per_kwh,
        host_g,
        gpu_g,
        total_g,
      }));
    const emissions = operationalEmissions(
      { kwh: 1, grams: { rte_total: 50, owid_total: 80 }, error: 0.4 },
      { kwh: 3, grams: { rte_total: 150 }, error: 0 },
    );
    assert.deepEqual(plain(emissions), [
      { provider: 'owid', factor_g_per_kwh: 20, host_g: 80, gpu_g: 0, total_g: 80 },
      { provider: 'rte', factor_g_per_kwh: 50, host_g: 50, gpu_g: 150, total_g: 200 },
    ]);
    // owid: host energy 40 % and factor 30 % in quadrature = 50 %; rte: host √(0.4² + 0.1²), GPU 10 %
    assert.deepEqual(
      emissions.map((e) => [e.lower_g, e.upper_g, e.factor_spread]),
      [
        [40, 120, 0.3],
        [
          50 * (1 - quadrature(0.4, 0.1)) + 150 * (1 - quadrature(0, 0.1)),
          50 * (1 + quadrature(0.4, 0.1)) + 150 * (1 + quadrature(0, 0.1)),
          0.1,
        ],
      ],
    );
    assert.deepEqual(
      plain(
        operationalEmissions({ kwh: 0, grams: { rte_total: 0 }, error: 0 }, { kwh: 0, grams: {}, error: 0 }),
      ),
      [{ provider: 'rte', factor_g_per_kwh: null, host_g: 0, gpu_g: 0, total_g: 0 }],
    );
  });
});

describe('short units (B9)', () => {
  test('shorter than two sample intervals: flagged, sampling error 100 %, zero lower bound', () => {
    const short = footprintRecord({
      uuid: 's',
      total_time_seconds: { walltime: 20 },
      total_cpu_energy_usage_kwh: { total: 1e-4 },
      total_cpu_energy_by_source_kwh: { rapl: 1e-4 },
      avg_sample_interval_seconds: { scrape: 30 },
    });
    assert.deepEqual([short.short_unit, short.sample_interval_seconds], [true, 30]);
    assert.equal(short.energy.host.uncertainty.sampling, 1);
    assert.deepEqual([short.energy.host.lower_kwh, short.energy.host.upper_kwh > 2e-4], [0, true]);
    assertValid(short, 'short unit');
    const long = footprintRecord({
      uuid: 'l',
      total_time_seconds: { walltime: 60 },
      avg_sample_interval_seconds: { scrape: 30 },
    });
    assert.equal(long.short_unit, false);
    // no recorded interval (stored before migration 12): not known to be short
    const old = footprintRecord({ uuid: 'o', total_time_seconds: { walltime: 5 } });
    assert.deepEqual([old.short_unit, old.sample_interval_seconds], [false, null]);
  });

  test('energy from a node counter: no sampling term, lower bound from its share, upper the whole node', () => {
    // 7200 J on the node over a 10 s job with half its CPUs, PUE 1.2 (what updater/counter.ts stores):
    // unit 7200 / 3.6e6 × 0.5 × 1.2 = 0.0012 kWh, node 0.0024 kWh
    const r = footprintRecord({
      uuid: 'c',
      total_time_seconds: { walltime: 10 },
      total_cpu_energy_usage_kwh: { total: 0.0012, counter_node: 0.0024, integrated: 0 },
      total_cpu_energy_by_source_kwh: { 'rapl-counter': 0.0012 },
      total_cpu_energy_by_pue_kwh: { '1.2': 0.0012 },
      avg_sample_interval_seconds: { scrape: 30 },
    });
    const host = r.energy.host;
    assert.equal(r.short_unit, true);
    assert.deepEqual([host.provenance, host.counter_node_kwh, host.pue], ['measured', 0.0024, 1.2]);
    // RAPL class 5 %, CPU share as attribution 10 %, sampling 0: √(0.05² + 0.1²) = 11.18 %
    assert.deepEqual(host.uncertainty, {
      source: 0.05,
      attribution: 0.1,
      sampling: 0,
      combined: quadrature(0.05, 0.1),
    });
    close(host.lower_kwh, 0.0012 * (1 - Math.sqrt(0.0125)));
    close(host.upper_kwh, 0.0024 * 1.05);
    assert.ok(host.lower_kwh > 0 && host.lower_kwh <= host.kwh && host.kwh <= host.upper_kwh);
    assertValid(r, 'counter unit');
    // without the node figure (e.g. summed away) the usual bounds apply
    const noNode = energyPart('host', { total: 1 }, { 'rapl-counter': 1 }, undefined, LONG);
    assert.deepEqual([noNode.counter_node_kwh, noNode.upper_kwh], [null, 1 + quadrature(0.05, 0.1)]);
  });
});

describe('footprint schema', () => {
  test('docs/footprint-schema.json is the schema of the code (UPDATE_GOLDEN=1 rewrites it)', () => {
    const text = `${JSON.stringify(FOOTPRINT_SCHEMA, null, 2)}\n`;
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(SCHEMA_FILE, text);
    assert.equal(readFileSync(SCHEMA_FILE, 'utf8'), text);
    assert.equal(FOOTPRINT_SCHEMA.$id, `urn:ceems:footprint-schema:${FOOTPRINT_SCHEMA_VERSION}`);
  });

  test('a record of a unit without any metric is valid; a wrong one is refused with its place', () => {
    const bare = footprintRecord({ uuid: 'x' });
    assertValid(bare, 'bare unit');
    const wrong = structuredClone(bare) as unknown as { energy: { host: { provenance: string } } };
    wrong.energy.host.provenance = 'guessed';
    assert.equal(validate(wrong), false);
    assert.equal(validate.errors?.[0]?.instancePath, '/energy/host/provenance');
  });
});

describe('GET /api/v1/units/footprint', () => {
  let s: TestServer;
  before(async () => {
    const dir = seedDb();
    // A second window of alice's unit 1001 from rules with provenance: its first window (the seed) had none.
    const db = CeemsDb.open(dir);
    const first = UNITS.find((u) => u.uuid === '1001')!;
    db.storeCollection({
      start: NOW - 3600_000,
      end: NOW,
      timeZone: TZ,
      units: [
        {
          ...first,
          total_cpu_energy_usage_kwh: { total: 0.75 },
          total_cpu_emissions_gms: { rte_total: 30 },
          total_cpu_energy_by_source_kwh: { rapl: 0.5, estimated: 0.25 },
          total_cpu_energy_by_pue_kwh: { '1.2': 0.75 },
          total_gpu_energy_usage_kwh: { total: 0.5 },
          total_gpu_energy_by_source_kwh: { dcgm: 0.5 },
          total_gpu_energy_by_pue_kwh: { '1.2': 0.5 },
          total_gpu_emissions_gms: { rte_total: 20 },
          avg_sample_interval_seconds: { scrape: 30 },
        },
      ],
    });
    db.close();
    s = await testServer({}, dir);
  });
  after(async () => {
    await s.close();
    rmSync(s.dataDir, { recursive: true, force: true });
  });

  test('the same units and numbers as /units, with provenance, valid against the schema', async () => {
    const q = `from=${NOW / 1000 - 24 * 3600}&to=${NOW / 1000}&running`;
    const units = await s.get(`/api/v1/units?${q}`, 'alice');
    const records = await s.get(`/api/v1/units/footprint?${q}`, 'alice');
    assert.equal(records.status, 200, records.body);
    assert.equal(records.headers['content-type'], 'application/json');
    assert.deepEqual(
      records.json.data.map((r: { uuid: string }) => r.uuid),
      units.json.data.map((u: { uuid: string }) => u.uuid),
    );
    for (const [i, r] of records.json.data.entries()) {
      const u = units.json.data[i];
      assertValid(r, `record ${r.uuid}`);
      assert.equal(r.schema_version, FOOTPRINT_SCHEMA_VERSION);
      assert.equal(r.energy.host.kwh, u.total_cpu_energy_usage_kwh?.total ?? 0, r.uuid);
      assert.equal(r.energy.gpu.kwh, u.total_gpu_energy_usage_kwh?.total ?? 0, r.uuid);
      assert.deepEqual(r.resources, { allocation: u.allocation, time_seconds: u.total_time_seconds });
      assert.equal(r.started_at, u.started_at);
    }
    const unit = units.json.data.find((u: { uuid: string }) => u.uuid === '1001');
    assert.deepEqual(unit.total_cpu_energy_by_source_kwh, { estimated: 0.25, rapl: 0.5 });
    const r = records.json.data.find((x: { uuid: string }) => x.uuid === '1001');
    const { host, gpu } = r.energy;
    assert.deepEqual(
      [host.kwh, host.sources, host.provenance, host.estimated_fraction, host.pue],
      [1, { rapl: 0.5, estimated: 0.25, unknown: 0.25 }, 'partly_estimated', 0.25, 1.2],
    );
    assert.deepEqual(
      [gpu.kwh, gpu.sources, gpu.provenance, gpu.estimated_fraction, gpu.pue],
      [0.5, { dcgm: 0.5 }, 'measured', 0, 1.2],
    );
    // two windows of 2 h each, sampled every 30 s from the second on
    const sampling = 30 / 14_400;
    assert.deepEqual(host.uncertainty, {
      source: 0.175,
      attribution: 0.1,
      sampling,
      combined: quadrature(0.175, 0.1, sampling),
    });
    assert.deepEqual(gpu.uncertainty, {
      source: 0.05,
      attribution: 0.02,
      sampling,
      combined: quadrature(0.05, 0.02, sampling),
    });
    assert.equal(r.energy.total_kwh, 1.5);
    for (const [what, b] of [
      ['host', [host.lower_kwh, host.kwh, host.upper_kwh]],
      ['gpu', [gpu.lower_kwh, gpu.kwh, gpu.upper_kwh]],
      ['total', [r.energy.lower_kwh, r.energy.total_kwh, r.energy.upper_kwh]],
    ] as const)
      assert.ok(b[0] < b[1] && b[1] < b[2], `${what} bounds ${b}`);
    const [rte] = r.emissions.operational;
    assert.deepEqual(
      [rte.provider, rte.factor_g_per_kwh, rte.host_g, rte.gpu_g, rte.total_g, rte.factor_spread],
      ['rte', 60.5 / 1.5, 40.5, 20, 60.5, 0.1],
    );
    assert.ok(rte.lower_g < rte.total_g && rte.total_g < rte.upper_g, JSON.stringify(rte));
    // embodied: 8 core-hours (2 CPUs × 2 windows × 2 h) of the default class, apart from operational
    const gPerCoreHour = 970_000 / (4 * 8760 * 48);
    assert.deepEqual(r.emissions.embodied, {
      grams: 8 * gPerCoreHour,
      lower: 8 * gPerCoreHour * 0.5,
      upper: 8 * gPerCoreHour * 1.5,
      core_hours: 8,
      gpu_hours: 0,
      g_per_core_hour: gPerCoreHour,
      g_per_gpu_hour: 150_000 / (4 * 8760),
      class: { name: 'default', ...DEFAULT_EMBODIED },
      node_classes: [
        {
          name: 'default',
          nodes: 1,
          core_hours: 8,
          gpu_hours: 0,
          grams: 8 * gPerCoreHour,
          lower: 8 * gPerCoreHour * 0.5,
          upper: 8 * gPerCoreHour * 1.5,
        },
      ],
    });
    // a unit of the seed, stored before provenance: its energy says so
    const old = records.json.data.find((x: { uuid: string }) => x.uuid === '1002');
    assert.equal(old.energy.host.provenance, 'unknown');
  });

  test('usage sums the provenance of the units per project', async () => {
    const r = await s.get('/api/v1/usage/global?project=acc1', 'alice');
    const acc1 = r.json.data.find((u: { username: string }) => u.username === 'alice');
    assert.deepEqual(acc1.total_cpu_energy_by_source_kwh, { estimated: 0.25, rapl: 0.5 });
    assert.deepEqual(acc1.total_gpu_energy_by_pue_kwh, { '1.2': 0.5 });
  });

  test('times follow `timezone` as in /units; `field` does not apply; unknown users get nothing', async () => {
    const tz = await s.get('/api/v1/units/footprint?uuid=1001&timezone=UTC', 'alice');
    const plain = await s.get('/api/v1/units?uuid=1001&timezone=UTC', 'alice');
    assert.equal(tz.json.data[0].started_at, plain.json.data[0].started_at);
    assert.notEqual(tz.json.data[0].started_at, UNITS.find((u) => u.uuid === '1001')!.started_at);
    const fields = await s.get('/api/v1/units/footprint?uuid=1001&field=uuid', 'alice');
    assertValid(fields.json.data[0], 'with field=');
    assert.deepEqual((await s.get('/api/v1/units/footprint?uuid=1001', 'bob')).json.data, []);
  });

  test('admins get the records of any user, filtered by `user`, as /units/admin', async () => {
    const q = `from=${NOW / 1000 - 24 * 3600}&to=${NOW / 1000}&running&user=carol`;
    const units = await s.get(`/api/v1/units/admin?${q}`, ADMIN);
    const records = await s.get(`/api/v1/units/footprint/admin?${q}`, ADMIN);
    assert.ok(records.json.data.length > 0);
    assert.deepEqual(
      records.json.data.map((r: { uuid: string; username: string }) => [r.uuid, r.username]),
      units.json.data.map((u: { uuid: string; username: string }) => [u.uuid, u.username]),
    );
    for (const r of records.json.data) assertValid(r, r.uuid);
    assert.equal((await s.get(`/api/v1/units/footprint/admin?${q}`, 'bob')).status, 403);
  });
});

describe('embodied classes of the config', () => {
  test('clusters[].footprint.embodied is read, partly defaulted, and its bad values name their key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ceems-footprint-'));
    const file = (text: string) => {
      writeFileSync(join(dir, 'c.yml'), text);
      return join(dir, 'c.yml');
    };
    try {
      const { config } = loadConfig(
        file(
          'clusters:\n  - id: a\n    manager: slurm\n    footprint:\n      embodied:\n        cores: 128\n  - id: b\n    manager: slurm\n',
        ),
      );
      assert.deepEqual(config.clusters[0]!.footprint?.embodied, { ...DEFAULT_EMBODIED, cores: 128 });
      assert.equal(config.clusters[1]!.footprint, undefined);
      assert.throws(
        () =>
          loadConfig(
            file(
              'clusters:\n  - id: a\n    manager: slurm\n    footprint:\n      embodied:\n        lifetime_years: -1\n',
            ),
          ),
        /clusters\.0\.footprint\.embodied\.lifetime_years/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('node_classes: a unit is charged on the class of each of its nodes, by name, else partition', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ceems-footprint-'));
    const file = (classes: string) => {
      writeFileSync(
        join(dir, 'c.yml'),
        `clusters:\n  - id: a\n    manager: slurm\n    footprint:\n      embodied:\n        cores: 64\n      node_classes:\n${classes}`,
      );
      return join(dir, 'c.yml');
    };
    try {
      const { config } = loadConfig(
        file(
          [
            '        - name: gpu',
            '          nodes: gpu[01-04]',
            '          embodied: { server_kgco2e: 2000, cores: 32, gpu_kgco2e: 300 }',
            '        - name: bigmem',
            '          partitions: [bigmem]',
            '          embodied: { server_kgco2e: 1500 }',
            '',
          ].join('\n'),
        ),
      );
      const cluster = new ClusterEmbodied(config.clusters[0]!.footprint);
      const gpu = config.clusters[0]!.footprint!.node_classes[0]!.embodied;
      const bigmem = config.clusters[0]!.footprint!.node_classes[1]!.embodied;
      // 3 nodes: two GPU nodes by name (their partition does not matter), one by its partition
      const unit = {
        uuid: '9',
        cluster_id: 'a',
        tags: { nodelistexp: 'gpu02|gpu03|cpu17', partition: 'bigmem' },
        total_time_seconds: { alloc_cputime: 3 * 3600 * 10, alloc_gputime: 3 * 3600 },
      };
      const r = footprintRecord(unit, cluster);
      assertValid(r, 'mixed classes');
      const e = r.emissions.embodied;
      const onGpu = embodiedEmissions({ alloc_cputime: 2 * 3600 * 10, alloc_gputime: 2 * 3600 }, gpu);
      const onBigmem = embodiedEmissions({ alloc_cputime: 3600 * 10, alloc_gputime: 3600 }, bigmem);
      assert.deepEqual(
        e.node_classes.map((c) => [c.name, c.nodes, c.core_hours, c.gpu_hours]),
        [
          ['gpu', 2, 20, 2],
          ['bigmem', 1, 10, 1],
        ],
      );
      close(e.grams, onGpu.grams + onBigmem.grams);
      close(e.lower, onGpu.lower + onBigmem.lower);
      close(e.upper, onGpu.upper + onBigmem.upper);
      close(e.core_hours * e.g_per_core_hour, 20 * onGpu.g_per_core_hour + 10 * onBigmem.g_per_core_hour);
      assert.deepEqual(e.class, { name: 'gpu', ...gpu });
      // a unit with no node recorded (VMs, pods) and no partition: the cluster's own class
      const vm = footprintRecord({ uuid: 'v', total_time_seconds: { alloc_cputime: 3600 } }, cluster);
      assert.equal(vm.emissions.embodied.class.name, 'default');
      assert.equal(vm.emissions.embodied.class.cores, 64);
      // bad classes name what is wrong
      for (const [classes, error] of [
        ['        - name: x\n          embodied: {}\n', /node_classes\.0.*needs `nodes` or `partitions`/s],
        [
          '        - name: x\n          nodes: n[1-99999999]\n',
          /node_classes\.0\.nodes.*more than 1000000 nodes/s,
        ],
        ['        - name: x\n          nodes: n[1-x]\n', /node_classes\.0\.nodes.*malformed host list/s],
      ] as const)
        assert.throws(() => loadConfig(file(classes)), error);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a unit's record uses its cluster's class; other clusters the defaults", async () => {
    const cls = new ClusterEmbodied({
      embodied: { ...DEFAULT_EMBODIED, server_kgco2e: 9700 },
      node_classes: [],
    });
    const s = await testServer({ embodiedClasses: new Map([['slurm-0', cls]]) });
    try {
      const r = await s.get(`/api/v1/units/footprint/admin?from=0&to=${NOW / 1000}&running`, ADMIN);
      const byCluster = new Map<string, { g_per_core_hour: number }>(
        r.json.data.map((x: FootprintRecord) => [x.cluster_id, x.emissions.embodied]),
      );
      close(byCluster.get('slurm-0')!.g_per_core_hour, 10 * byCluster.get('os-0')!.g_per_core_hour);
    } finally {
      await s.close();
      rmSync(s.dataDir, { recursive: true, force: true });
    }
  });
});
