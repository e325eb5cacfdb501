import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Unit } from '../../../../src/api/models.js';
import { applyCounter, reconcilable, unitCounters } from '../../../../src/api/updater/counter.js';

const sample = (uuid: string, labels: Record<string, string>, value: number) => ({ uuid, labels, value });

describe('energy counter reconciliation of short units (B9)', () => {
  it('a node without a share sample counts whole; shares are clamped to [0, 1]; empty deltas ignored', () => {
    const c = unitCounters(
      [
        sample('1', { hostname: 'a', source: 'rapl' }, 3600),
        sample('1', { hostname: 'b', source: 'hwmon' }, 7200),
        sample('2', { hostname: 'a', source: 'rapl' }, 0),
        sample('3', { hostname: 'a', source: 'bogus' }, 3600),
      ],
      [sample('1', { hostname: 'a' }, 1.5)],
    );
    assert.deepEqual([...c.keys()], ['1']);
    // a: 3600 J × min(1.5, 1) = 0.001 kWh; b: no share → 7200 J × 1
    assert.deepEqual(c.get('1'), {
      bySource: { 'rapl-counter': 0.001, 'hwmon-counter': 0.002 },
      nodeKwh: 0.003,
    });
  });

  it('the PUE of the unit’s records multiplies the counter figure; by-PUE keeps that PUE', () => {
    const u: Unit = {
      uuid: '1',
      total_cpu_energy_usage_kwh: { total: 0.4 },
      total_cpu_energy_by_pue_kwh: { '1.2': 0.3, '1.5': 0.1 },
      total_cpu_emissions_gms: { owid_total: 40 },
    };
    applyCounter(u, { bySource: { 'rapl-counter': 0.001 }, nodeKwh: 0.002 });
    // PUE (1.2 × 0.3 + 1.5 × 0.1) / 0.4 = 1.275
    const pue = 1.275;
    assert.deepEqual(u.total_cpu_energy_usage_kwh, {
      total: 0.001 * pue,
      counter_node: 0.002 * pue,
      integrated: 0.4,
    });
    assert.deepEqual(u.total_cpu_energy_by_source_kwh, { 'rapl-counter': 0.001 * pue });
    assert.deepEqual(u.total_cpu_energy_by_pue_kwh, { '1.275': 0.001 * pue });
    // 100 g/kWh over the integrated energy, the same factor on the counter figure
    assert.ok(Math.abs(u.total_cpu_emissions_gms!.owid_total! - 0.1 * pue) < 1e-15);
  });

  it('only units whose whole life is in the window, and short or without integrated energy', () => {
    const w = { start: 1_000_000, end: 2_000_000, scrape: 30_000 };
    const ok = (u: object) => reconcilable({ uuid: 'x', ...u }, w.start, w.end, w.scrape);
    assert.equal(ok({ started_at_ts: 1_500_000, ended_at_ts: 1_550_000 }), true, 'short');
    assert.equal(
      ok({ started_at_ts: 1_100_000, ended_at_ts: 1_900_000, total_cpu_energy_usage_kwh: { total: 0 } }),
      true,
      'long but nothing integrated',
    );
    assert.equal(
      ok({ started_at_ts: 1_100_000, ended_at_ts: 1_900_000, total_cpu_energy_usage_kwh: { total: 1 } }),
      false,
      'long with integrated energy',
    );
    assert.equal(ok({ started_at_ts: 1_990_000, ended_at_ts: 0 }), false, 'still running');
    assert.equal(ok({ started_at_ts: 990_000, ended_at_ts: 1_010_000 }), false, 'began in an earlier window');
    assert.equal(ok({ started_at_ts: 1_990_000, ended_at_ts: 2_000_001 }), false, 'ends in the next window');
  });
});
