// The registry of named collectors (spec exporter.md §1.1). Each collector lives in its own file; the
// unit collectors (slurm, libvirt, k8s) declare their flags there and load their code only when enabled.

import type { CollectorDefinition } from '../collector.js';
import { cpu } from './cpu.js';
import { crayPmCounters } from './cray_pm_counters.js';
import { emissions } from './emissions.js';
import { hwmon } from './hwmon.js';
import { infiniband } from './infiniband.js';
import { ipmiDcmi } from './ipmi_dcmi.js';
import { k8s } from './k8s.js';
import { libvirt } from './libvirt.js';
import { meminfo } from './meminfo.js';
import { netdev } from './netdev.js';
import { estimatedPower } from './power_estimate.js';
import { rapl } from './rapl.js';
import { redfish } from './redfish.js';
import { slurm } from './slurm.js';

export const COLLECTORS: readonly CollectorDefinition[] = [
  cpu,
  meminfo,
  rapl,
  slurm,
  libvirt,
  k8s,
  ipmiDcmi,
  redfish,
  hwmon,
  crayPmCounters,
  emissions,
  infiniband,
  netdev,
  // Beyond the original's 13 collectors (opt-in): estimated power where no meter exists.
  estimatedPower,
];
