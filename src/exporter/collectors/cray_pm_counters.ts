// HPE/Cray in-band power management counters from /sys/cray/pm_counters (spec exporter.md §5.5).

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isNotFound } from '../../common/errno.js';
import { type ReadFile, readFileFast } from '../../common/fsread.js';
import {
  type Collector,
  type CollectorContext,
  type CollectorDefinition,
  type Emitter,
  readOrNoData,
} from '../collector.js';

/** The original's domain pattern, unanchored: the first group is the domain prefix (empty = node). */
const COUNTER_FILE = /((?:cpu|memory|accel)[0-9]*?)*?_*?(energy|power|temp)_*?(cap)*?/;

const METRICS = [
  { file: 'energy', name: 'ceems_cray_pm_counters_energy_joules', help: 'Current energy value in joules' },
  { file: 'power', name: 'ceems_cray_pm_counters_power_watts', help: 'Current power value in watts' },
  {
    file: 'power_cap',
    name: 'ceems_cray_pm_counters_power_limit_watts',
    help: 'Current power limit value in watts',
  },
  { file: 'temp', name: 'ceems_cray_pm_counters_temp_celsius', help: 'Current temperature value in celsius' },
] as const;

/** Domains named by the files of the directory: `node` for `power`, `energy`…, else the prefix (`cpu0`, `accel1`). */
export function domains(files: readonly string[]): string[] {
  const out = new Set<string>();
  for (const f of files) {
    const m = COUNTER_FILE.exec(f);
    if (m) out.add(m[1] || 'node');
  }
  return [...out].sort();
}

/** `"<value> <unit> <timestamp> us"` → value; undefined when the first token is not a number. */
export function parseCounter(text: string): number | undefined {
  const first = text.trim().split(/\s+/)[0] ?? '';
  const v = Number(first);
  return first !== '' && Number.isFinite(v) ? v : undefined;
}

export class CrayPmCountersCollector implements Collector {
  private readonly dir: string;

  constructor(
    private readonly ctx: CollectorContext,
    private readonly read: ReadFile = readFileFast,
  ) {
    this.dir = join(ctx.sysfs, 'cray', 'pm_counters');
  }

  update(out: Emitter): void {
    const files = readOrNoData(this.dir, (d) => readdirSync(d));
    for (const domain of domains(files)) {
      const labels = { domain, hostname: this.ctx.hostname };
      for (const m of METRICS) {
        const file = join(this.dir, domain === 'node' ? m.file : `${domain}_${m.file}`);
        let text: string;
        try {
          text = this.read(file);
        } catch (e) {
          if (!isNotFound(e))
            this.ctx.logger.debug({ file, err: (e as Error).message }, 'cray_pm_counters: unreadable');
          continue;
        }
        const value = parseCounter(text);
        if (value === undefined) {
          this.ctx.logger.warn(
            { file, content: text.trim() },
            'cray_pm_counters: value is not a number, skipped',
          );
          continue;
        }
        if (value > 0) out.emit(m.name, 'gauge', m.help, labels, value);
      }
    }
  }
}

export const crayPmCounters: CollectorDefinition = {
  name: 'cray_pm_counters',
  defaultEnabled: false,
  flags: [],
  create: (ctx) => new CrayPmCountersCollector(ctx),
};
