// Δtime_enabled ÷ Δtime_running scaling of a counter between two reads, against values worked out by hand.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { scaledDelta } from '../../../../src/exporter/perf/scale.js';

const r = (value: number, enabled: number, running: number) => ({ value, enabled, running });

describe('scaledDelta', () => {
  it('a counter that ran all the time adds its raw difference', () => {
    assert.equal(scaledDelta(r(100, 1000, 1000), r(350, 3000, 3000)), 250);
  });

  it('a multiplexed counter is extrapolated: 300 counted in 1000 of 2000 ns → 600', () => {
    // Δvalue 300, Δenabled 2000, Δrunning 1000
    assert.equal(scaledDelta(r(100, 1000, 500), r(400, 3000, 1500)), 600);
  });

  it('the first read scales the whole value from zero: 90 in 300 of 400 ns → 120', () => {
    assert.equal(scaledDelta(r(0, 0, 0), r(90, 400, 300)), 120);
  });

  it('rounds half away from zero as Go math.Round: 7 × 3/2 = 10.5 → 11; 5 × 4/3 = 6.67 → 7', () => {
    assert.equal(scaledDelta(r(0, 0, 0), r(7, 3, 2)), 11);
    assert.equal(scaledDelta(r(10, 30, 30), r(15, 34, 33)), 7);
  });

  it('time_running 0 (never scheduled): the raw difference, 0, not a division by zero', () => {
    assert.equal(scaledDelta(r(0, 0, 0), r(0, 5000, 0)), 0);
    assert.equal(scaledDelta(r(40, 1000, 800), r(40, 6000, 800)), 0, 'did not run in the interval');
  });

  it('a value below the last one counts as a fresh counter, never as a negative delta', () => {
    // restarted: 200 counted over 1000 enabled, 500 running → 400
    assert.equal(scaledDelta(r(900, 5000, 5000), r(200, 1000, 500)), 400);
  });
});
