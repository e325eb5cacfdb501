// RAPL energy counters and long-term power limits from the powercap class (spec exporter.md §5.3).

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, isNotFound } from '../../common/errno.js';
import { type ReadFile, readFileFast } from '../../common/fsread.js';
import {
  type Collector,
  type CollectorContext,
  type CollectorDefinition,
  type Emitter,
  NoDataError,
} from '../collector.js';

export interface RaplZone {
  /** Zone name without its `-N` suffix, e.g. `package`, `dram`. */
  name: string;
  index: number;
  /** Zone directory under the configured sysfs path (kept relative when the flag is relative). */
  path: string;
  maxMicrojoules: number;
}

/** `package-0` → [`package`, 0]; a name without a numeric suffix gets the running count of that name. */
export function zoneNameAndIndex(raw: string, seen: Map<string, number>): [string, number] {
  const parts = raw.split('-');
  const last = parts[parts.length - 1]!;
  if (parts.length > 1 && /^\d+$/.test(last)) return [parts[0]!, Number(last)];
  return [raw, seen.get(raw) ?? 0];
}

/** Runs of characters outside [0-9A-Za-z_] (with adjacent underscores) become one `_`, as Go's exporters do. */
export function sanitizeMetricName(s: string): string {
  return s.replace(/_*[^0-9A-Za-z_]+_*/g, '_');
}

function readUint(read: ReadFile, path: string): number {
  const s = read(path).trim();
  if (!/^\d+$/.test(s)) throw new Error(`invalid value '${s}' in ${path}: expected an unsigned integer`);
  return Number(s);
}

/** Lists the zones (directories with a `name` file) in file-name order, like Go's os.ReadDir. */
export function listZones(powercap: string, read: ReadFile): RaplZone[] {
  const entries = readdirSync(powercap).sort();
  const seen = new Map<string, number>();
  const zones: RaplZone[] = [];
  for (const entry of entries) {
    const dir = join(powercap, entry);
    let raw: string;
    try {
      raw = read(join(dir, 'name')).trim();
    } catch {
      continue; // not a zone (e.g. the `intel-rapl` control type directory)
    }
    const [name, index] = zoneNameAndIndex(raw, seen);
    let maxMicrojoules: number;
    try {
      maxMicrojoules = readUint(read, join(dir, 'max_energy_range_uj'));
    } catch (e) {
      if (isNotFound(e)) continue; // zone removed while listing
      throw e;
    }
    zones.push({ name, index, path: dir, maxMicrojoules });
    seen.set(name, index + 1);
  }
  return zones;
}

/** The limit of the constraint with the largest time window (the long-term limit), in µW; undefined if none. */
export function longTermLimit(zoneDir: string, read: ReadFile): number | undefined {
  let best: { window: number; limit: number } | undefined;
  for (let i = 0; ; i++) {
    let window: number;
    let limit: number;
    try {
      window = readUint(read, join(zoneDir, `constraint_${i}_time_window_us`));
      limit = readUint(read, join(zoneDir, `constraint_${i}_power_limit_uw`));
    } catch (e) {
      if (isNotFound(e)) break;
      throw e;
    }
    if (!best || window > best.window) best = { window, limit };
  }
  return best?.limit;
}

function permissionHint(file: string): string {
  return (
    `permission denied reading ${file}: energy_uj is readable by root only since Linux 5.10; ` +
    'run the exporter as root or grant it the cap_dac_read_search capability'
  );
}

export class RaplCollector implements Collector {
  private readonly powercap: string;
  private readonly zoneLabel: boolean;
  /** Per zone path: last raw µJ reading and the µJ added for counter wraps so far. */
  private readonly energy = new Map<string, { raw: number; offset: number }>();

  constructor(
    private readonly ctx: CollectorContext,
    private readonly read: ReadFile = readFileFast,
  ) {
    this.powercap = join(ctx.sysfs, 'class', 'powercap');
    this.zoneLabel = ctx.flags.bool('collector.rapl.enable-zone-label');
    this.warnIfUnreadable();
  }

  /** Says once at start-up why RAPL will report no data when energy_uj is root-only. */
  private warnIfUnreadable(): void {
    let zones: RaplZone[];
    try {
      zones = listZones(this.powercap, this.read);
    } catch {
      return; // reported at scrape time
    }
    const first = zones[0];
    if (!first) return;
    const file = join(first.path, 'energy_uj');
    try {
      this.read(file);
    } catch (e) {
      if (errnoCode(e) === 'EACCES') this.ctx.logger.warn(permissionHint(file));
    }
  }

  update(out: Emitter): void {
    let zones: RaplZone[];
    try {
      zones = listZones(this.powercap, this.read);
    } catch (e) {
      if (isNotFound(e)) throw new NoDataError(`platform has no powercap files (${this.powercap})`);
      if (errnoCode(e) === 'EACCES')
        throw new NoDataError(`cannot access powercap files: ${(e as Error).message}`);
      throw e;
    }
    if (zones.length === 0) throw new NoDataError(`no RAPL zones under ${this.powercap}`);
    for (const zone of zones) {
      const file = join(zone.path, 'energy_uj');
      let raw: number;
      let limit: number | undefined;
      try {
        raw = readUint(this.read, file);
        limit = longTermLimit(zone.path, this.read);
      } catch (e) {
        if (isNotFound(e)) {
          this.ctx.logger.debug({ zone: zone.path }, 'rapl: zone vanished during the scrape');
          continue;
        }
        if (errnoCode(e) === 'EACCES') throw new NoDataError(permissionHint(file));
        throw e;
      }
      const joules = this.unwrap(zone, raw) / 1e6;
      this.emit(out, zone, 'joules_total', 'value in joules', 'value in joules', joules);
      if (limit !== undefined)
        this.emit(
          out,
          zone,
          'power_limit_watts_total',
          'power limit in watts',
          'power Limit value in watts',
          limit / 1e6,
        );
    }
  }

  /** energy_uj wraps to 0 after max_energy_range_uj; the exported counter keeps increasing. */
  private unwrap(zone: RaplZone, raw: number): number {
    const state = this.energy.get(zone.path);
    if (!state) {
      this.energy.set(zone.path, { raw, offset: 0 });
      return raw;
    }
    if (raw < state.raw) state.offset += zone.maxMicrojoules;
    state.raw = raw;
    return raw + state.offset;
  }

  private emit(
    out: Emitter,
    zone: RaplZone,
    suffix: string,
    help: string,
    zoneLabelHelp: string,
    value: number,
  ): void {
    const labels = { hostname: this.ctx.hostname, index: String(zone.index), path: zone.path };
    if (this.zoneLabel)
      out.emit(
        `ceems_rapl_${suffix}`,
        'counter',
        `Current RAPL ${zoneLabelHelp}`,
        { ...labels, rapl_zone: zone.name },
        value,
      );
    else
      out.emit(
        `ceems_rapl_${sanitizeMetricName(zone.name)}_${suffix}`,
        'counter',
        `Current RAPL ${zone.name} ${help}`,
        labels,
        value,
      );
  }
}

export const rapl: CollectorDefinition = {
  name: 'rapl',
  defaultEnabled: true,
  flags: [
    {
      name: 'collector.rapl.enable-zone-label',
      type: 'bool',
      default: false,
      help: 'Enables RAPL zone labels',
    },
  ],
  create: (ctx) => new RaplCollector(ctx),
};
