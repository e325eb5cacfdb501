// The libvirt collector's flags and definition: OpenStack VMs from their machine.slice cgroups (spec
// exporter.md §6, §7.4, §8) and their GPUs (§9.8). Its code (units/libvirt.ts) loads only when enabled.

import type { FlagSpec } from '../../common/flags.js';
import type { CollectorDefinition } from '../collector.js';

export const LIBVIRT_FLAGS: readonly FlagSpec[] = [
  {
    name: 'collector.libvirt.swap-memory-metrics',
    type: 'bool',
    default: false,
    help: 'Enables collection of swap memory metrics (default: disabled)',
  },
  {
    name: 'collector.libvirt.blkio-metrics',
    type: 'bool',
    default: false,
    help: 'Enables collection of block IO metrics (default: disabled)',
  },
  {
    name: 'collector.libvirt.psi-metrics',
    type: 'bool',
    default: false,
    help: 'Enables collection of PSI metrics (default: disabled)',
  },
  {
    name: 'collector.libvirt.xml-dir',
    type: 'string',
    default: '/etc/libvirt/qemu',
    hidden: true,
    help: 'Directory containing XML files of instances',
  },
];

export const libvirt: CollectorDefinition = {
  name: 'libvirt',
  defaultEnabled: false,
  flags: LIBVIRT_FLAGS,
  async create(ctx) {
    return (await import('../units/libvirt.js')).createLibvirtCollector(ctx);
  },
};
