// The node's cumulative energy counters, read at a unit's start and end (issue 20, B9): RAPL package and
// DRAM zones (`energy_uj`, wrapping at `max_energy_range_uj`), Cray pm_counters `energy` and hwmon
// `energy*_input`. A reading is raw per counter; the joules between two readings are summed per source.
// The SLURM hook scripts (etc/slurm/*-energy.sh) write the same readings as text (`formatReading`).

import { join } from 'node:path';
import { readFileFast, readTrimmed } from '../../common/fsread.js';
import { parseCounter } from '../collectors/cray_pm_counters.js';
import { hwmonDirs, sensorFiles } from '../collectors/hwmon.js';
import { listZones } from '../collectors/rapl.js';

export type CounterSource = 'rapl' | 'cray' | 'hwmon';
export const COUNTER_SOURCES: readonly CounterSource[] = ['rapl', 'cray', 'hwmon'];

/** One counter's value in µJ; `maxUj` where it wraps to 0 (RAPL). */
export interface CounterValue {
  source: CounterSource;
  uj: number;
  maxUj?: number;
}

/** Every counter of the node at one moment, keyed by its file. */
export type Reading = Map<string, CounterValue>;

/** RAPL zones that together cover the sockets: core/uncore are parts of `package`, psys overlaps both. */
const RAPL_ZONES = new Set(['package', 'dram']);

const tryRead = <T>(f: () => T): T | undefined => {
  try {
    return f();
  } catch {
    return undefined; // a counter this node lacks or cannot read: not part of the reading
  }
};

/** Reads every energy counter below `sysfs`; an empty map on a node without any. */
export function readCounters(sysfs: string): Reading {
  const out: Reading = new Map();
  const powercap = join(sysfs, 'class', 'powercap');
  for (const zone of tryRead(() => listZones(powercap, readFileFast)) ?? []) {
    if (!RAPL_ZONES.has(zone.name)) continue;
    const file = join(zone.path, 'energy_uj');
    const uj = Number(readTrimmed(file) ?? Number.NaN);
    if (Number.isFinite(uj)) out.set(file, { source: 'rapl', uj, maxUj: zone.maxMicrojoules });
  }
  const cray = join(sysfs, 'cray', 'pm_counters', 'energy');
  const joules = parseCounter(readTrimmed(cray) ?? '');
  if (joules !== undefined) out.set(cray, { source: 'cray', uj: joules * 1e6 });
  for (const dir of tryRead(() => hwmonDirs(join(sysfs, 'class', 'hwmon'))) ?? []) {
    for (const d of [dir, join(dir, 'device')])
      for (const s of tryRead(() => sensorFiles(d)) ?? []) {
        if (!s.sensor.startsWith('energy')) continue;
        const uj = Number(readTrimmed(s.file) ?? Number.NaN);
        if (Number.isFinite(uj)) out.set(s.file, { source: 'hwmon', uj });
      }
  }
  return out;
}

/** µJ from `a` to `b` of one counter: one wrap of a RAPL counter is undone; a reset (no range) gives 0. */
export function counterDelta(a: CounterValue, b: CounterValue): number {
  if (b.uj >= a.uj) return b.uj - a.uj;
  return b.maxUj ? b.uj + b.maxUj - a.uj : 0;
}

/** Joules per source between two readings, over the counters present in both. */
export function sourceJoules(from: Reading, to: Reading): Map<CounterSource, number> {
  const out = new Map<CounterSource, number>();
  for (const [file, b] of to) {
    const a = from.get(file);
    if (a?.source === b.source) out.set(b.source, (out.get(b.source) ?? 0) + counterDelta(a, b) / 1e6);
  }
  return out;
}

/** Adds `more` into `into` per source. */
export function addJoules(into: Map<CounterSource, number>, more: ReadonlyMap<CounterSource, number>): void {
  for (const [s, j] of more) into.set(s, (into.get(s) ?? 0) + j);
}

/**
 * A reading as the hook scripts write it: one `<source> <file> <µJ> [<max µJ>]` line per counter. The
 * parser names the line it cannot read.
 */
export function formatReading(r: Reading): string {
  return [...r].map(([f, v]) => `${v.source} ${f} ${v.uj}${v.maxUj ? ` ${v.maxUj}` : ''}\n`).join('');
}

export function parseReading(text: string, where: string): Reading {
  const out: Reading = new Map();
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [source, file, uj, max] = line.split(/\s+/);
    const value = Number(uj);
    const maxUj = max === undefined ? undefined : Number(max);
    if (
      !COUNTER_SOURCES.includes(source as CounterSource) ||
      !file ||
      !Number.isFinite(value) ||
      (maxUj !== undefined && !Number.isFinite(maxUj))
    )
      throw new Error(
        `${where}:${i + 1}: expected '<rapl|cray|hwmon> <file> <µJ> [<max µJ>]', got '${line}'`,
      );
    out.set(file, { source: source as CounterSource, uj: value, ...(maxUj ? { maxUj } : {}) });
  }
  return out;
}
