// The rdma sub-collector's flags and what they switch on (spec exporter.md §1.2, §15), apart from the
// sub-collector itself so that the exporter loads the RDMA code only when the flag enables it.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FlagSpec, ParsedFlags } from '../../common/flags.js';

export const RDMA_FLAGS: readonly FlagSpec[] = [
  {
    name: 'collector.rdma.stats',
    type: 'bool',
    default: false,
    help: 'Enables collection of RDMA stats (default: disabled)',
  },
  {
    name: 'collector.rdma.cmd',
    type: 'string',
    default: '',
    hidden: true,
    help: 'Path to rdma command (default: rdma found in $PATH)',
  },
];

export const rdmaEnabled = (flags: ParsedFlags): boolean => flags.bool('collector.rdma.stats');

/**
 * Capabilities the rdma sub-collector needs on this node (spec §15): switching per-PID QP counters on
 * Mellanox links is root-only, so `cap_setuid`/`cap_setgid` when such a device exists.
 */
export function rdmaCapabilities(flags: ParsedFlags, sysfs: string): string[] {
  if (!rdmaEnabled(flags)) return [];
  let names: string[];
  try {
    names = readdirSync(join(sysfs, 'class', 'infiniband'));
  } catch {
    return []; // no RDMA hardware: nothing to switch
  }
  return names.some((n) => n.startsWith('mlx')) ? ['cap_setuid', 'cap_setgid'] : [];
}
