// Network device counters from /proc/net/dev (spec exporter.md §5.9).

import { join } from 'node:path';
import { readFileFast } from '../../common/fsread.js';
import {
  type Collector,
  type CollectorContext,
  type CollectorDefinition,
  type Emitter,
  readOrNoData,
} from '../collector.js';

/** The 16 columns of /proc/net/dev in file order, with their HELP prefixes (typos kept byte-identical). */
const COLUMNS = [
  ['receive_bytes', 'Total received bytes'],
  ['receive_packets', 'Total received packets'],
  ['receive_errors', 'Total received errors'],
  ['receive_dropped', 'Total received dropped packets'],
  ['receive_fifo', 'Total received FIFO errors'],
  ['receive_frame', 'Total received frames'],
  ['receive_compressed', 'Total received compressed packets'],
  ['receive_multicast', 'Total received multicast packets'],
  ['transmit_bytes', 'Total transmitted bytes'],
  ['transmit_packets', 'Total transmitted packets'],
  ['transmit_errors', 'Total transmitted bytes'],
  ['transmit_dropped', 'Total transmitted dropped packets'],
  ['transmit_fifo', 'Total frame transmission errors FIFO'],
  ['transmit_colls', 'Total transmitted collisions'],
  ['transmit_carrier', 'Total frame transmission errors errors due to loss of carrier'],
  ['transmit_compressed', 'Total transmitted compressed packets'],
] as const;

export interface NetDevLine {
  device: string;
  values: number[];
}

/** Parses /proc/net/dev: two header lines, then `<iface>: <16 counters>`. */
export function parseNetDev(text: string): NetDevLine[] {
  const out: NetDevLine[] = [];
  for (const line of text.split('\n').slice(2)) {
    if (line.trim() === '') continue;
    const colon = line.indexOf(':');
    const device = colon < 0 ? '' : line.slice(0, colon).trim();
    const fields = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/);
    if (device === '' || fields.length !== COLUMNS.length || !fields.every((f) => /^\d+$/.test(f)))
      throw new Error(`invalid line in net/dev: '${line}'`);
    out.push({ device, values: fields.map(Number) });
  }
  return out;
}

/**
 * Compiles a device filter flag. Matching is unanchored, as in the original (`--collector.netdev.device-exclude=^veth`
 * style values keep working).
 */
function deviceRegex(flag: string, value: string): RegExp | undefined {
  if (value === '') return undefined;
  try {
    return new RegExp(value);
  } catch (e) {
    throw new Error(`invalid value '${value}' for flag '--${flag}': ${(e as Error).message}`);
  }
}

export class NetdevCollector implements Collector {
  private readonly path: string;
  private readonly include: RegExp | undefined;
  private readonly exclude: RegExp | undefined;

  constructor(private readonly ctx: CollectorContext) {
    this.path = join(ctx.procfs, 'net', 'dev');
    const include = ctx.flags.string('collector.netdev.device-include');
    const exclude = ctx.flags.string('collector.netdev.device-exclude');
    if (include !== '' && exclude !== '')
      throw new Error(
        '--collector.netdev.device-include and --collector.netdev.device-exclude are mutually exclusive',
      );
    this.include = deviceRegex('collector.netdev.device-include', include);
    this.exclude = deviceRegex('collector.netdev.device-exclude', exclude);
  }

  update(out: Emitter): void {
    const text = readOrNoData(this.path, readFileFast);
    for (const { device, values } of parseNetDev(text)) {
      if (this.exclude?.test(device) || (this.include && !this.include.test(device))) continue;
      const labels = { device, hostname: this.ctx.hostname };
      COLUMNS.forEach(([name, help], i) => {
        out.emit(
          `ceems_netdev_${name}_total`,
          'counter',
          `${help} by the network device`,
          labels,
          values[i]!,
        );
      });
    }
  }
}

export const netdev: CollectorDefinition = {
  name: 'netdev',
  defaultEnabled: false,
  flags: [
    {
      name: 'collector.netdev.device-include',
      type: 'string',
      default: '',
      placeholder: 'REGEX',
      help: 'Regexp of net devices to include (mutually exclusive to device-exclude).',
    },
    {
      name: 'collector.netdev.device-exclude',
      type: 'string',
      default: '',
      placeholder: 'REGEX',
      help: 'Regexp of net devices to exclude (mutually exclusive to device-include).',
    },
  ],
  create: (ctx) => new NetdevCollector(ctx),
};
