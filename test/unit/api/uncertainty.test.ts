// The propagation arithmetic of the footprint bounds and the embodied emissions (issue 20, B5 and B7;
// docs/footprint.md), with expectations worked out by hand.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_EMBODIED, embodiedClassSchema, embodiedEmissions } from '../../../src/api/embodied.js';
import {
  bounds,
  emissionsBounds,
  energyUncertainty,
  factorSpread,
  quadrature,
  samplingError,
  sourceError,
} from '../../../src/api/uncertainty.js';

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} ≠ ${b}`);

describe('energy uncertainty', () => {
  test('independent errors add in quadrature', () => {
    assert.equal(quadrature(0.3, 0.4), 0.5);
    assert.equal(quadrature(), 0);
  });

  test("a part's source error is the energy-weighted accuracy of its sources; unknown ones count as estimates", () => {
    close(sourceError({ rapl: 1, estimated: 1 }), (0.05 + 0.3) / 2, 'rapl + estimated');
    close(sourceError({ ipmi: 3, redfish: 1 }), 0.1, 'BMCs');
    close(sourceError({ 'some-new-meter': 2 }), 0.3, 'unlisted');
    assert.equal(sourceError({}), 0);
    assert.equal(sourceError({ rapl: 0 }), 0);
  });

  test('sampling: one sample interval over the unit duration, capped at 100 %', () => {
    close(samplingError(30, 3600), 1 / 120, '1 h at 30 s');
    // a 20 s job on a 30 s scrape is very uncertain
    assert.equal(samplingError(30, 20), 1);
    assert.equal(samplingError(30, 0), 1);
    // no recorded interval (rows stored before migration 12): not counted
    assert.equal(samplingError(undefined, 20), 0);
  });

  test('bounds: value ± relative error, never below zero', () => {
    assert.deepEqual(bounds(2, 0.25), { lower: 1.5, upper: 2.5 });
    assert.deepEqual(bounds(2, 1.5), { lower: 0, upper: 5 });
    assert.deepEqual(bounds(0, 0.5), { lower: 0, upper: 0 });
  });

  test('an estimated 20 s job on a 30 s scrape: ±105 %, lower bound 0', () => {
    const u = energyUncertainty('host', { estimated: 1e-4 }, { intervalS: 30, durationS: 20 });
    assert.deepEqual([u.source, u.attribution, u.sampling], [0.3, 0.1, 1]);
    close(u.combined, Math.sqrt(0.09 + 0.01 + 1), 'combined');
    assert.deepEqual(bounds(1e-4, u.combined).lower, 0);
  });
});

describe('emissions bounds', () => {
  test('each part: its energy error and the shared factor spread in quadrature; parts add linearly', () => {
    // host: 100 g with a 40 % energy error, OWID spread 30 % → ±50 %; GPU: 50 g exact energy → ±30 %
    const b = emissionsBounds(
      [
        { grams: 100, energy: 0.4 },
        { grams: 50, energy: 0 },
      ],
      'owid',
    );
    close(b.lower, 50 + 35, 'lower');
    close(b.upper, 150 + 65, 'upper');
    assert.equal(factorSpread('rte'), 0.1);
    assert.equal(factorSpread('static-site-value'), 0.3);
    assert.deepEqual(emissionsBounds([], 'rte'), { lower: 0, upper: 0 });
  });
});

describe('embodied emissions', () => {
  test("defaults: Boavizta's R740 (970 kg, 48 cores, 4 years) and 150 kg per GPU", () => {
    assert.deepEqual(DEFAULT_EMBODIED, {
      server_kgco2e: 970,
      cores: 48,
      gpu_kgco2e: 150,
      lifetime_years: 4,
      uncertainty: 0.5,
    });
    // 48 core-hours (one whole node for an hour) and 2 GPU-hours
    const e = embodiedEmissions(
      { walltime: 3600, alloc_cputime: 48 * 3600, alloc_gputime: 7200 },
      DEFAULT_EMBODIED,
    );
    const perCoreHour = 970_000 / 35_040 / 48; // 0.577 g
    const perGpuHour = 150_000 / 35_040; // 4.28 g
    close(e.g_per_core_hour, perCoreHour, 'g per core-hour');
    close(e.g_per_gpu_hour, perGpuHour, 'g per GPU-hour');
    close(e.grams, 48 * perCoreHour + 2 * perGpuHour, 'grams');
    close(e.lower, e.grams / 2, 'lower');
    close(e.upper, e.grams * 1.5, 'upper');
    assert.deepEqual([e.core_hours, e.gpu_hours], [48, 2]);
  });

  test('a configured class replaces the defaults it names; bad values are refused naming the key', () => {
    const cls = embodiedClassSchema.parse({ server_kgco2e: 1500, cores: 128, lifetime_years: 6 });
    assert.deepEqual(cls, {
      server_kgco2e: 1500,
      cores: 128,
      gpu_kgco2e: 150,
      lifetime_years: 6,
      uncertainty: 0.5,
    });
    const e = embodiedEmissions({ alloc_cputime: 3600 }, cls);
    close(e.grams, 1_500_000 / (6 * 8760 * 128), 'one core-hour');
    const bad = embodiedClassSchema.safeParse({ cores: 0, lifetime: 3 });
    assert.equal(bad.success, false);
    assert.deepEqual(bad.error?.issues.map((i) => i.path.join('.')).sort(), ['', 'cores']);
  });

  test('no allocation time, no embodied emissions', () => {
    assert.equal(embodiedEmissions({}, DEFAULT_EMBODIED).grams, 0);
  });
});
