// Node CPU time per mode and CPU counts from /proc/stat and /proc/cpuinfo (spec exporter.md §5.1).

import { join } from 'node:path';
import { readFileFast } from '../../common/fsread.js';
import type { Collector, CollectorContext, CollectorDefinition, Emitter } from '../collector.js';

const USER_HZ = 100;
const MODES = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'] as const;
type Mode = (typeof MODES)[number];

export interface CpuStat {
  times: Record<Mode, number>;
  logical: number;
}

/** Parses /proc/stat: aggregate `cpu` line (ticks → seconds) and the number of `cpuN` lines. */
export function parseProcStat(text: string): CpuStat {
  let times: Record<Mode, number> | undefined;
  let logical = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('cpu')) continue;
    const fields = line.trim().split(/\s+/);
    if (fields[0] === 'cpu') {
      if (fields.length < 9) throw new Error(`malformed aggregate cpu line in stat file: '${line}'`);
      const t = {} as Record<Mode, number>;
      MODES.forEach((m, i) => {
        const v = Number(fields[i + 1]);
        if (!Number.isFinite(v) || fields[i + 1] === '')
          throw new Error(`malformed ${m} value '${fields[i + 1]}' in cpu line`);
        t[m] = v / USER_HZ;
      });
      times = t;
    } else if (/^cpu\d+$/.test(fields[0]!)) {
      logical++;
    }
  }
  if (!times) throw new Error('no aggregate cpu line in stat file');
  return { times, logical };
}

/** Physical cores = Σ over distinct `physical id` of that package's `cpu cores`; 0 when unknown. */
export function physicalCores(cpuinfo: string): number {
  const cores = new Map<string, number>();
  for (const block of cpuinfo.split(/\n\s*\n/)) {
    const id = /^physical id\s*:\s*(\S+)/m.exec(block)?.[1];
    const n = /^cpu cores\s*:\s*(\d+)/m.exec(block)?.[1];
    if (id !== undefined && n !== undefined) cores.set(id, Number(n));
  }
  let sum = 0;
  for (const n of cores.values()) sum += n;
  return sum;
}

/** /proc/cpuinfo holds ~1.3 KiB per logical CPU (2,642 bytes for 2 here): 16 MiB covers 12,000; read once. */
const CPUINFO_BYTES = 16 << 20;

export class CpuCollector implements Collector {
  private last: Record<Mode, number> | undefined;
  private readonly statPath: string;
  private physical = 0;

  constructor(private readonly ctx: CollectorContext) {
    this.statPath = join(ctx.procfs, 'stat');
    try {
      this.physical = physicalCores(readFileFast(join(ctx.procfs, 'cpuinfo'), CPUINFO_BYTES));
    } catch (e) {
      ctx.logger.debug(
        { err: (e as Error).message },
        'cpu: cannot read cpuinfo; physical cores = logical CPUs',
      );
    }
  }

  update(out: Emitter): void {
    const stat = parseProcStat(readFileFast(this.statPath));
    const host = { hostname: this.ctx.hostname };
    const physical = this.physical > 0 ? this.physical : stat.logical;
    out.emit('ceems_cpu_count', 'gauge', 'Number of CPUs.', host, stat.logical);
    out.emit(
      'ceems_cpu_per_core_count',
      'gauge',
      'Number of logical CPUs per physical core.',
      host,
      Math.max(1, Math.floor(stat.logical / Math.max(1, physical))),
    );
    const times = this.guard(stat.times);
    for (const m of MODES) {
      out.emit(
        'ceems_cpu_seconds_total',
        'counter',
        'Seconds the CPUs spent in each mode.',
        { hostname: this.ctx.hostname, mode: m },
        times[m],
      );
    }
  }

  /** Counters only move forward; an idle drop of ≥ 3 s means CPU hot-plug and resets the state. */
  private guard(now: Record<Mode, number>): Record<Mode, number> {
    const last = this.last;
    if (!last || last.idle - now.idle >= 3) {
      this.last = { ...now };
      return this.last;
    }
    for (const m of MODES) if (now[m] >= last[m]) last[m] = now[m];
    return last;
  }
}

export const cpu: CollectorDefinition = {
  name: 'cpu',
  defaultEnabled: true,
  flags: [],
  create: (ctx) => new CpuCollector(ctx),
};
