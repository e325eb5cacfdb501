// `tsdb create-relabel-configs` (cli.md §2.4): metric relabelling that gives GPU exporter series the labels
// of the CEEMS exporter's GPU mapping (`gpuuuid`, `gpuiid`, `index`). The entries, their order, the job
// order and the message around the YAML are the original's; only `job_name` replaces its `job` key
// [DIFF D-CLI-12].

import YAML from 'yaml';
import type { Prometheus } from './prometheus.js';

type RelabelConfig = Record<string, unknown>;

const replace = (sourceLabels: string[], targetLabel: string, regex: string, replacement: string) => ({
  source_labels: sourceLabels,
  target_label: targetLabel,
  regex,
  replacement,
  action: 'replace',
});
/** One entry per dropped label, as the original writes them. */
const labelDrops = (labels: string[]) => labels.map((regex) => ({ regex, action: 'labeldrop' }));

// `modelName` in the source labels keeps the rewrite to DCGM series (CEEMS series have no modelName).
const nvidia = (): RelabelConfig[] => [
  replace(['modelName', 'UUID'], 'gpuuuid', 'NVIDIA(.*);(.*)', '$2'),
  replace(['modelName', 'GPU_I_ID'], 'gpuiid', 'NVIDIA(.*);(.*)', '$2'),
  ...labelDrops(['UUID', 'GPU_I_ID']),
];

// The AMD SMI exporter names the GPU id label after the metric (`amd_gpu_power{gpu_power="0"}`): the first
// entry sets `index` (empty on the other metrics), the next ones fill it where it is still empty.
const amdSmi = (): RelabelConfig[] => [
  replace(['gpu_power'], 'index', '(.*)', '$1'),
  replace(['index', 'gpu_use_percent'], 'index', ';(.+)', '$1'),
  replace(['index', 'gpu_memory_use_percent'], 'index', ';(.+)', '$1'),
  ...labelDrops(['gpu_power', 'gpu_use_percent', 'gpu_memory_use_percent']),
];

const amdDeviceMetrics = (): RelabelConfig[] => [
  replace(['gpu_id'], 'index', '(.*)', '$1'),
  replace(['gpu_partition_id'], 'gpuiid', '(.*)', '$1'),
  ...labelDrops(['gpu_id', 'gpu_partition_id']),
];

/** Power series telling each GPU exporter apart, in the original's order of precedence for a job. */
const EXPORTERS: { metric: string; configs: () => RelabelConfig[] }[] = [
  { metric: 'DCGM_FI_DEV_POWER_USAGE_INSTANT', configs: nvidia },
  { metric: 'amd_gpu_power', configs: amdSmi },
  { metric: 'gpu_power_usage', configs: amdDeviceMetrics },
];

export const RELABEL_HEADER = 'Merge the following scrape_configs with the current config.';

/**
 * The message and `scrape_configs:` YAML for every GPU exporter job found, or null when there is none. Jobs
 * come in the order Prometheus returns their series (sorted by label set), as in the original.
 */
export async function relabelConfigs(prom: Prometheus): Promise<string | null> {
  const series = await prom.series(EXPORTERS.map((e) => `{__name__=${JSON.stringify(e.metric)}}`));
  const metricsOfJob = new Map<string, Set<string>>();
  for (const s of series) {
    const job = s.job ?? '';
    if (job === '') continue;
    if (!metricsOfJob.has(job)) metricsOfJob.set(job, new Set());
    metricsOfJob.get(job)!.add(s.__name__ ?? '');
  }
  if (metricsOfJob.size === 0) return null;
  const scrape_configs = [...metricsOfJob].map(([job, metrics]) => ({
    job_name: job,
    metric_relabel_configs: EXPORTERS.find((e) => metrics.has(e.metric))!.configs(),
  }));
  // no anchors/aliases: every job gets its own copy, spelled out
  const yaml = YAML.stringify({ scrape_configs }, { aliasDuplicateObjects: false });
  return `${RELABEL_HEADER}\n${yaml}\n`;
}
