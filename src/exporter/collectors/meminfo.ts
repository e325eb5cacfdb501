// Node memory from /proc/meminfo (spec exporter.md §5.2).

import { join } from 'node:path';
import { readFileFast } from '../../common/fsread.js';
import {
  type Collector,
  type CollectorContext,
  type CollectorDefinition,
  type Emitter,
  readOrNoData,
} from '../collector.js';

const DEFAULT_KEYS = ['MemTotal_bytes', 'MemFree_bytes', 'MemAvailable_bytes'] as const;
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/**
 * Parses /proc/meminfo into `key → value`: trailing `:` dropped, `Name(sub)` → `Name_sub`; a line with a unit
 * column (kB) is multiplied by 1024 and its key gets `_bytes`.
 */
export function parseMeminfo(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts[0] === '') continue;
    if (parts.length < 2 || parts.length > 3 || !parts[0]!.endsWith(':'))
      throw new Error(`invalid line in meminfo: '${line}'`);
    if (!/^\d+(\.\d+)?$/.test(parts[1]!)) throw new Error(`invalid value in meminfo line: '${line}'`);
    let key = parts[0]!.slice(0, -1).replace(/\((.*)\)/, '_$1');
    let value = Number(parts[1]);
    if (parts.length === 3) {
      value *= 1024;
      key += '_bytes';
    }
    out.set(key, value);
  }
  return out;
}

export class MeminfoCollector implements Collector {
  private readonly path: string;
  private readonly allStats: boolean;

  constructor(private readonly ctx: CollectorContext) {
    this.path = join(ctx.procfs, 'meminfo');
    this.allStats = ctx.flags.bool('collector.meminfo.all-stats');
  }

  update(out: Emitter): void {
    const text = readOrNoData(this.path, readFileFast);
    const info = parseMeminfo(text);
    const host = { hostname: this.ctx.hostname };
    // Dashboards expect the three default series to exist, so a missing key is exported as 0.
    const entries: [string, number][] = this.allStats
      ? [...info]
      : DEFAULT_KEYS.map((k) => [k, info.get(k) ?? 0]);
    for (const [key, value] of entries) {
      if (!METRIC_NAME.test(key)) {
        this.ctx.logger.debug({ key }, 'meminfo: key is not a valid metric name, skipped');
        continue;
      }
      out.emit(
        `ceems_meminfo_${key}`,
        key.endsWith('_total') ? 'counter' : 'gauge',
        `Memory information field ${key}.`,
        host,
        value,
      );
    }
  }
}

export const meminfo: CollectorDefinition = {
  name: 'meminfo',
  defaultEnabled: true,
  flags: [
    {
      name: 'collector.meminfo.all-stats',
      type: 'bool',
      default: false,
      aliases: ['collector.meminfo.all.stats'],
      help: 'Enable collecting all meminfo stats (default: disabled).',
    },
  ],
  create: (ctx) => new MeminfoCollector(ctx),
};
