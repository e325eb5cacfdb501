// `tsdb create-relabel-configs` (cli.md §2.4): metric relabelling that gives GPU exporter series the labels
// of the CEEMS exporter's GPU mapping (`gpuuuid`, `gpuiid`, `index`).

import YAML from 'yaml';
import type { LabelSet, Prometheus } from './prometheus.js';

type RelabelConfig = Record<string, unknown>;

const NVIDIA: RelabelConfig[] = [
  {
    source_labels: ['modelName', 'UUID'],
    target_label: 'gpuuuid',
    regex: 'NVIDIA(.*);(.*)',
    replacement: '$2',
    action: 'replace',
  },
  {
    source_labels: ['modelName', 'GPU_I_ID'],
    target_label: 'gpuiid',
    regex: 'NVIDIA(.*);(.*)',
    replacement: '$2',
    action: 'replace',
  },
  { regex: 'UUID|GPU_I_ID', action: 'labeldrop' },
];

// The AMD SMI exporter names the GPU id label after the metric (`amd_gpu_power{gpu_power="0"}`).
const AMD_SMI: RelabelConfig[] = ['gpu_power', 'gpu_use_percent', 'gpu_memory_use_percent'].map((m) => ({
  source_labels: ['__name__', m],
  target_label: 'index',
  regex: `amd_${m};(.*)`,
  replacement: '$1',
  action: 'replace',
}));

const AMD_DEVICE_METRICS: RelabelConfig[] = [
  { source_labels: ['gpu_id'], target_label: 'index', regex: '(.*)', replacement: '$1', action: 'replace' },
  {
    source_labels: ['gpu_partition_id'],
    target_label: 'gpuiid',
    regex: '(.*)',
    replacement: '$1',
    action: 'replace',
  },
];

const EXPORTERS: { selector: string; configs: RelabelConfig[] }[] = [
  { selector: '{__name__=~"DCGM_FI_DEV_.+"}', configs: NVIDIA },
  {
    selector: '{__name__=~"amd_gpu_power|amd_gpu_use_percent|amd_gpu_memory_use_percent"}',
    configs: AMD_SMI,
  },
  { selector: '{__name__="gpu_power_usage"}', configs: AMD_DEVICE_METRICS },
];

/** The `scrape_configs:` YAML for every GPU exporter job found, or null when there is none. */
export async function relabelConfigs(prom: Prometheus): Promise<string | null> {
  const jobs = new Map<string, RelabelConfig[]>();
  for (const e of EXPORTERS) {
    const series: LabelSet[] = await prom.series(e.selector);
    for (const job of new Set(series.map((s) => s.job ?? ''))) if (job !== '') jobs.set(job, e.configs);
  }
  if (jobs.size === 0) return null;
  const scrape_configs = [...jobs]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([job, configs]) => ({ job_name: job, metric_relabel_configs: configs }));
  return YAML.stringify({ scrape_configs });
}
