// `tsdb create-ceems-tsdb-updater-queries` (cli.md §2.5): the `queries:` block of the API server's TSDB
// updater (api-server.md §12.3), restricted to the recording-rule series and providers that exist.

import YAML from 'yaml';
import type { Prometheus } from './prometheus.js';

const avg = (record: string) =>
  `avg_over_time(avg by (uuid) (${record}{uuid=~"{{.UUIDs}}"} > 0 < inf)[{{.Range}}:])`;
const energy = (record: string) =>
  `sum_over_time(sum by (uuid) (${record}{uuid=~"{{.UUIDs}}"} > 0 < inf)[{{.Range}}:{{.ScrapeInterval}}]) * {{.ScrapeIntervalMilli}} / 3.6e9`;
const emissions = (record: string, provider: string) =>
  `sum_over_time(sum by (uuid) (${record}{uuid=~"{{.UUIDs}}",provider="${provider}"} > 0 < inf)[{{.Range}}:{{.ScrapeInterval}}]) * {{.ScrapeIntervalMilli}} / 1e3`;
const increase = (metric: string) =>
  `sum by (uuid) (increase(${metric}{uuid=~"{{.UUIDs}}"}[{{.Range}}]) > 0 < inf)`;

type SubQueries = Record<string, string>;

export async function updaterQueries(prom: Prometheus): Promise<string | null> {
  const exists = async (metric: string) => (await prom.series(`{__name__="${metric}"}`)).length > 0;
  const providers = async (record: string) =>
    [...new Set((await prom.series(`{__name__="${record}"}`)).map((s) => s.provider ?? ''))]
      .filter((p) => p !== '')
      .sort();
  const queries: Record<string, SubQueries> = {};
  const add = async (metric: string, record: string, make: (r: string) => string, key: string) => {
    if (await exists(record)) queries[metric] = { [key]: make(record) };
  };
  await add('avg_cpu_usage', 'uuid:ceems_cpu_usage:ratio_irate', avg, 'global');
  await add('avg_cpu_mem_usage', 'uuid:ceems_cpu_memory_usage:ratio', avg, 'global');
  await add('total_cpu_energy_usage_kwh', 'uuid:ceems_host_power_watts:pue', energy, 'total');
  const hostProviders = await providers('uuid:ceems_host_emissions_g_s:pue');
  if (hostProviders.length > 0) {
    queries.total_cpu_emissions_gms = Object.fromEntries(
      hostProviders.map((p) => [`${p}_total`, emissions('uuid:ceems_host_emissions_g_s:pue', p)]),
    );
  }
  await add('avg_gpu_usage', 'uuid:ceems_gpu_usage:ratio', avg, 'global');
  await add('avg_gpu_mem_usage', 'uuid:ceems_gpu_memory_usage:ratio', avg, 'global');
  await add('total_gpu_energy_usage_kwh', 'uuid:ceems_gpu_power_watts:pue', energy, 'total');
  const gpuProviders = await providers('uuid:ceems_gpu_emissions_g_s:pue');
  if (gpuProviders.length > 0) {
    queries.total_gpu_emissions_gms = Object.fromEntries(
      gpuProviders.map((p) => [`${p}_total`, emissions('uuid:ceems_gpu_emissions_g_s:pue', p)]),
    );
  }
  for (const [metric, dir] of [
    ['total_io_write_stats', 'write'],
    ['total_io_read_stats', 'read'],
  ] as const) {
    const sub: SubQueries = {};
    for (const k of ['bytes', 'requests', 'errors']) {
      const m = `ceems_ebpf_${dir}_${k}_total`;
      if (await exists(m)) sub[`${k}_total`] = increase(m);
    }
    if (Object.keys(sub).length > 0) queries[metric] = sub;
  }
  for (const [metric, dir] of [
    ['total_ingress_stats', 'ingress'],
    ['total_egress_stats', 'egress'],
  ] as const) {
    const m = `ceems_ebpf_${dir}_bytes_total`;
    if (await exists(m)) queries[metric] = { bytes_total: increase(m) };
  }
  if (Object.keys(queries).length === 0) return null;
  return YAML.stringify({ queries }, { lineWidth: 0 });
}
