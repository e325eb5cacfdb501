// The k8s collector's flags and definition: Kubernetes pods from their kubepods cgroups (spec exporter.md
// §6, §7.4, §8) and their GPUs (§9.9). Its code (units/k8s.ts) loads only when the collector is enabled.

import type { FlagSpec } from '../../common/flags.js';
import type { CollectorDefinition } from '../collector.js';
import { K8S_FLAGS } from '../k8s/flags.js';

export const K8S_COLLECTOR_FLAGS: readonly FlagSpec[] = [
  ...K8S_FLAGS,
  {
    name: 'collector.k8s.psi-metrics',
    type: 'bool',
    default: false,
    help: 'Enables collection of PSI metrics (default: disabled)',
  },
];

export const k8s: CollectorDefinition = {
  name: 'k8s',
  defaultEnabled: false,
  flags: K8S_COLLECTOR_FLAGS,
  async create(ctx) {
    return (await import('../units/k8s.js')).createK8sCollector(ctx);
  },
};
