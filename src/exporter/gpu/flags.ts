// GPU flags shared by the slurm, libvirt and k8s collectors (spec exporter.md §2.2). A flag may be
// declared only once, so exactly one CollectorDefinition lists GPU_FLAGS (see index.ts).

import type { FlagSpec } from '../../common/flags.js';

export const GPU_TYPES = ['nvidia', 'amd', 'nogpu'] as const;
export type GpuType = (typeof GPU_TYPES)[number];

export const GPU_FLAGS: readonly FlagSpec[] = [
  {
    name: 'collector.gpu.type',
    help: 'GPU device type. Auto-detected from sysfs when not given.',
    type: 'enum',
    values: GPU_TYPES,
    hidden: true,
  },
  {
    name: 'collector.gpu.nvidia-smi-path',
    help: 'Absolute path to nvidia-smi binary. Searched in $PATH when empty.',
    type: 'string',
    default: '',
    hidden: true,
  },
  {
    name: 'collector.gpu.rocm-smi-path',
    help: 'Absolute path to rocm-smi binary. Searched in $PATH when empty.',
    type: 'string',
    default: '',
    hidden: true,
  },
  {
    name: 'collector.gpu.amd-smi-path',
    help: 'Absolute path to amd-smi binary. Searched in $PATH when empty.',
    type: 'string',
    default: '',
    hidden: true,
  },
];

/** GPU-related flags of the slurm collector (§9.5, §9.7); listed by the slurm definition. */
export const SLURM_GPU_FLAGS: readonly FlagSpec[] = [
  {
    name: 'collector.slurm.gres-config-file',
    help: 'Path to gres.conf file that has GPU shards and/or MPS configuration.',
    type: 'string',
    default: '/etc/slurm/gres.conf',
  },
  {
    name: 'collector.slurm.gpu-order-map',
    help:
      'GPU order mapping between SLURM and NVIDIA SMI/ROCm SMI tools. ' +
      'It should be of format <slurm_gpu_index>: <nvidia_or_rocm_smi_index>[.<mig_gpu_instance_id>] delimited by ",".',
    type: 'string',
    default: '',
  },
];
