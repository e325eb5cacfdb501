// `tsdb create-ceems-tsdb-updater-queries` (cli.md §2.5): the `queries:` block of the API server's TSDB
// updater (api-server.md §12.3) for the recording-rule series and emission providers that exist, printed
// as the original's template prints it: every metric key in sorted order, the sub-metrics found under it
// and nothing under the others, blank lines and all.

import type { Prometheus } from './prometheus.js';

const avg = (record: string) =>
  `avg_over_time(avg by (uuid) (${record}{uuid=~"{{.UUIDs}}"} > 0 < inf)[{{.Range}}:])`;
const energy = (record: string, by = 'uuid') =>
  `sum_over_time(sum by (${by}) (${record}{uuid=~"{{.UUIDs}}"} > 0 < inf)[{{.Range}}:{{.ScrapeInterval}}]) * {{.ScrapeIntervalMilli}} / 3.6e9`;
const emissions = (record: string, provider: string) =>
  `sum_over_time(sum by (uuid) (${record}{uuid=~"{{.UUIDs}}",provider="${provider}"} > 0 < inf)[{{.Range}}:{{.ScrapeInterval}}]) * {{.ScrapeIntervalMilli}} / 1e3`;
const increase = (metric: string) =>
  `sum by (uuid) (increase(${metric}{uuid=~"{{.UUIDs}}"}[{{.Range}}]) > 0 < inf)`;

/** A sub-metric: the series whose presence decides it, and its query. */
interface SubQuery {
  series: string;
  query: string;
  /** false for an emission provider that has no series */
  found: boolean;
}

const HOST_EMISSIONS = 'uuid:ceems_host_emissions_g_s:pue';
const ORIGINAL_PROVIDERS = ['rte', 'emaps', 'owid'];
const GPU_EMISSIONS = 'uuid:ceems_gpu_emissions_g_s:pue';

/**
 * The metrics and sub-metrics the output can hold. The original's (its map, printed in sorted key order)
 * plus the eBPF IO and network metrics of our default queries, one emission sub-metric per provider
 * found instead of its fixed rte/emaps/owid [DIFF D-CLI-17], and the energy provenance maps [D-CLI-FP4].
 */
function candidates(
  providers: string[],
  foundProviders: Set<string>,
): Record<string, Record<string, SubQuery>> {
  const one = (key: string, series: string, make: (s: string) => string) => ({
    [key]: { series, query: make(series), found: true },
  });
  const perProvider = (series: string) =>
    Object.fromEntries(
      providers.map(
        (p) => [`${p}_total`, { series, query: emissions(series, p), found: foundProviders.has(p) }] as const,
      ),
    );
  const ebpf = (dir: string, kinds: string[]) =>
    Object.fromEntries(
      kinds.map((k) => {
        const series = `ceems_ebpf_${dir}_${k}_total`;
        return [`${k}_total`, { series, query: increase(series), found: true }] as const;
      }),
    );
  return {
    avg_cpu_usage: one('global', 'uuid:ceems_cpu_usage:ratio_irate', avg),
    avg_cpu_mem_usage: one('global', 'uuid:ceems_cpu_memory_usage:ratio', avg),
    total_cpu_energy_usage_kwh: one('total', 'uuid:ceems_host_power_watts:pue', energy),
    total_cpu_emissions_gms: perProvider(HOST_EMISSIONS),
    avg_gpu_usage: one('global', 'uuid:ceems_gpu_usage:ratio', avg),
    avg_gpu_mem_usage: one('global', 'uuid:ceems_gpu_memory_usage:ratio', avg),
    total_gpu_energy_usage_kwh: one('total', 'uuid:ceems_gpu_power_watts:pue', energy),
    total_gpu_emissions_gms: perProvider(GPU_EMISSIONS),
    total_io_write_stats: ebpf('write', ['bytes', 'requests', 'errors']),
    total_io_read_stats: ebpf('read', ['bytes', 'requests', 'errors']),
    total_ingress_stats: ebpf('ingress', ['bytes']),
    total_egress_stats: ebpf('egress', ['bytes']),
    // energy provenance (issue 20): one sub-metric per label value (api-server.md D-API-FP3)
    ...Object.fromEntries(
      (['cpu', 'gpu'] as const).flatMap((part) => {
        const series = `uuid:ceems_${part === 'cpu' ? 'host' : 'gpu'}_power_watts:pue`;
        return (['source', 'pue'] as const).map((by) => {
          const label = by === 'source' ? 'power_source' : 'pue';
          return [
            `total_${part}_energy_by_${by}_kwh`,
            { [`$${label}`]: { series, query: energy(series, `uuid, ${label}`), found: true } },
          ] as const;
        });
      }),
    ),
  };
}

const sorted = <T>(o: Record<string, T>) =>
  Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

export const UPDATER_HEADER = 'Queries for TSDB updater:';

/**
 * The header and the queries YAML, or null when none of the series exists. Byte for byte the original's
 * template output: `---`, a blank line, `queries:`, then per metric its key line, one line per sub-metric
 * found, a line break for every sub-metric considered and one more per metric.
 */
export async function updaterQueries(prom: Prometheus): Promise<string | null> {
  // the original takes the providers of the host emissions for both host and GPU emissions
  const providers = (await prom.series(`{__name__="${HOST_EMISSIONS}"}`)).map((s) => s.provider ?? '');
  const found = new Set(providers.filter((p) => p !== ''));
  // the original's fixed providers are always considered (each adds a line break), found or not
  const metrics = candidates([...new Set([...ORIGINAL_PROVIDERS, ...found])], found);
  const wanted = [...new Set(Object.values(metrics).flatMap((m) => Object.values(m).map((q) => q.series)))];
  const existing = new Set(
    (await prom.series(wanted.map((s) => `{__name__=${JSON.stringify(s)}}`))).map((s) => s.__name__),
  );
  if (existing.size === 0) return null;
  let out = '---\n\nqueries:';
  for (const [metric, subs] of sorted(metrics)) {
    out += `\n  ${metric}:`;
    for (const [sub, q] of sorted(subs)) {
      if (q.found && existing.has(q.series)) out += `\n    ${sub}: ${q.query}`;
      out += '\n';
    }
    out += '\n';
  }
  return `${UPDATER_HEADER}\n${out}\n\n`;
}
