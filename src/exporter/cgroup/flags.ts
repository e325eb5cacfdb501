// The cgroup flags shared by the slurm, libvirt and k8s collectors, apart from the cgroup code so that
// the exporter loads that code only when one of them is enabled.

import type { FlagSpec } from '../../common/flags.js';

export const CGROUP_FLAGS: readonly FlagSpec[] = [
  {
    name: 'collector.cgroups.active-subsystem',
    type: 'string',
    default: 'cpuacct',
    help: 'Active cgroup subsystem for cgroups v1.',
  },
  {
    name: 'collector.cgroups.force-version',
    type: 'enum',
    values: ['v1', 'v2'],
    hidden: true,
    help: 'Set cgroups version manually. Used only for testing.',
  },
];
