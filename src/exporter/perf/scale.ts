// Multiplexing correction of a counter between two reads (spec exporter.md §10.1): when the kernel had more
// events than hardware counters it counted each one only part of the time it was enabled, and the count of
// the interval is extrapolated by Δtime_enabled ÷ Δtime_running, as the original does.

import type { Reading } from './attr.js';

/**
 * Events counted between `last` and `cur`, scaled and rounded to an integer. A counter that did not run in
 * the interval (Δtime_running = 0, e.g. never scheduled on a busy PMU) adds its raw difference, which is 0
 * since it could not count. A value lower than the last one (not expected: the counters are 64-bit and
 * never reset here) is taken as a fresh counter whose whole value is new, so a total never goes back.
 */
export function scaledDelta(last: Readonly<Reading>, cur: Readonly<Reading>): number {
  const base = cur.value < last.value ? { value: 0, enabled: 0, running: 0 } : last;
  const dValue = cur.value - base.value;
  const dEnabled = cur.enabled - base.enabled;
  const dRunning = cur.running - base.running;
  // the original's expression and order of operations: round((Δenabled / Δrunning) × Δvalue)
  return dRunning > 0 ? Math.round((dEnabled / dRunning) * dValue) : dValue;
}
