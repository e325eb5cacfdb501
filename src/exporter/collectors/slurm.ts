// The slurm collector's flags and definition: SLURM jobs from their cgroups (spec exporter.md §6, §7.4, §8)
// and the GPUs they use (§9.6). Its code (units/slurm.ts) loads only when the collector is enabled.

import { CGROUP_FLAGS } from '../cgroup/flags.js';
import type { CollectorDefinition } from '../collector.js';
import { EBPF_FLAGS } from '../ebpf/flags.js';
import { GPU_FLAGS, SLURM_GPU_FLAGS } from '../gpu/flags.js';
import { PERF_FLAGS } from '../perf/flags.js';
import { RDMA_FLAGS } from '../rdma/flags.js';

export const SLURM_FLAGS = [
  {
    name: 'collector.slurm.swap-memory-metrics',
    type: 'bool',
    default: false,
    aliases: ['collector.slurm.swap.memory.metrics'],
    help: 'Enables collection of swap memory metrics (default: disabled)',
  },
  {
    name: 'collector.slurm.psi-metrics',
    type: 'bool',
    default: false,
    aliases: ['collector.slurm.psi.metrics'],
    help: 'Enables collection of PSI metrics (default: disabled)',
  },
  {
    name: 'collector.slurm.energy-counter',
    type: 'bool',
    default: false,
    help: "Reads the node's energy counters (RAPL, Cray, hwmon) at each job's start and end and exports the delta and the job's CPU share for short jobs (default: disabled)",
  },
  {
    name: 'collector.slurm.energy-counter.retention',
    type: 'duration',
    default: '30m',
    help: 'How long an ended job keeps its energy counter series (at least two windows of the API server updater).',
  },
  {
    name: 'collector.slurm.energy-counter.spool-dir',
    type: 'string',
    default: '',
    help: 'Directory the SLURM prolog/epilog hooks (etc/slurm/*-energy.sh) write energy counter readings to.',
  },
] as const;

export const slurm: CollectorDefinition = {
  name: 'slurm',
  defaultEnabled: false,
  // cgroup, GPU and sub-collector flags are shared by slurm, libvirt and k8s but may be declared only once: here.
  flags: [
    ...SLURM_FLAGS,
    ...CGROUP_FLAGS,
    ...GPU_FLAGS,
    ...SLURM_GPU_FLAGS,
    ...PERF_FLAGS,
    ...EBPF_FLAGS,
    ...RDMA_FLAGS,
  ],
  async create(ctx) {
    return (await import('../units/slurm.js')).createSlurmCollector(ctx);
  },
};
