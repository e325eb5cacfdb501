// The ebpf sub-collector's flags and what they switch on (spec exporter.md §1.2, §15), apart from the
// sub-collector itself so that the exporter loads libbpf and its FFI only when a flag enables it.

import { release } from 'node:os';
import type { FlagSpec, ParsedFlags } from '../../common/flags.js';
import type { MetricGroup } from './loader.js';

export const EBPF_FLAGS: readonly FlagSpec[] = [
  {
    name: 'collector.ebpf.io-metrics',
    type: 'bool',
    default: false,
    help: 'Enables collection of IO metrics using ebpf (default: disabled)',
  },
  {
    name: 'collector.ebpf.network-metrics',
    type: 'bool',
    default: false,
    help: 'Enables collection of network metrics using ebpf (default: disabled)',
  },
  {
    name: 'collector.ebpf.fs-mount-point',
    type: 'string',
    repeatable: true,
    help: 'File system mount points to monitor for IO stats. If empty all mount points are monitored. It is strongly advised to choose appropriate mount points to reduce cardinality.',
  },
];

/** The metric groups the flags switch on: io-metrics covers file IO and file operations. */
export function ebpfGroups(flags: ParsedFlags): Set<MetricGroup> {
  const groups = new Set<MetricGroup>();
  if (flags.bool('collector.ebpf.io-metrics')) groups.add('io').add('file');
  if (flags.bool('collector.ebpf.network-metrics')) groups.add('network');
  return groups;
}

export const ebpfEnabled = (flags: ParsedFlags) => ebpfGroups(flags).size > 0;

/** Spec §15: loading programs and maps, tracing; kernels before 5.8 only know cap_sys_admin for both. */
export function ebpfCapabilities(flags: ParsedFlags, kernel = release()): string[] {
  if (!ebpfEnabled(flags)) return [];
  const [major = 0, minor = 0] = kernel.split('.').map((n) => Number.parseInt(n, 10));
  return major > 5 || (major === 5 && minor >= 8) ? ['cap_bpf', 'cap_perfmon'] : ['cap_sys_admin'];
}
