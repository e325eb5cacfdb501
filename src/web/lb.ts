// Time series of the web view, read through ceems_lb as the logged user (the LB applies its own
// ownership check on top of ours), and the power source of each node (measured by a BMC/RAPL/Cray
// counter, or estimated from CPU load), read as the LB's service user: node-level facts, no unit data.

import { SERVICE_ACCOUNT as SERVICE_USER } from '../api/admins.js';

/** A unit id the LB accepts as a literal (lb.md §7.3): the only unit text interpolated into PromQL. */
export const UUID_RE = /^[A-Za-z0-9-]+$/;

export type Panel = 'power' | 'cpu' | 'memory' | 'emissions';
export const PANELS: readonly Panel[] = ['power', 'cpu', 'memory', 'emissions'];

export interface PanelQuery {
  label: string;
  expr: string;
  /** Label whose value names each series (one series when absent). */
  by?: string;
}

/** The PromQL of a unit page panel; `uuid` must match UUID_RE. */
export function panelQueries(panel: Panel, uuid: string): { unit: string; queries: PanelQuery[] } {
  if (!UUID_RE.test(uuid)) throw new Error(`not a unit id: ${uuid}`);
  const u = `{uuid="${uuid}"}`;
  switch (panel) {
    case 'power':
      return {
        unit: 'W',
        queries: [
          { label: 'host', expr: `sum(uuid:ceems_host_power_watts:pue${u})` },
          { label: 'GPU', expr: `sum(uuid:ceems_gpu_power_watts:pue${u})` },
        ],
      };
    case 'cpu':
      return {
        unit: '%',
        queries: [{ label: 'CPU usage', expr: `avg(uuid:ceems_cpu_usage:ratio_irate${u})` }],
      };
    case 'memory':
      return {
        unit: 'bytes',
        queries: [{ label: 'memory used', expr: `sum(ceems_compute_unit_memory_used_bytes${u})` }],
      };
    case 'emissions':
      return {
        unit: 'g/h',
        queries: [
          {
            label: '',
            by: 'provider',
            expr: `sum by (provider) (uuid:ceems_host_emissions_g_s:pue${u}) * 3600`,
          },
        ],
      };
  }
}

/** Node power (the split records of the recording rules add up to it) and the part attributed to units. */
export const CLUSTER_POWER: readonly PanelQuery[] = [
  {
    label: 'nodes',
    expr: 'sum(instance:ceems_cpu_power_watts:pue) + (sum(instance:ceems_memory_power_watts:pue) or vector(0)) + (sum(instance:ceems_misc_power_watts:pue) or vector(0))',
  },
  { label: 'attributed to units', expr: 'sum(uuid:ceems_host_power_watts:pue)' },
];

export interface Series {
  label: string;
  values: (number | null)[];
}

export interface Chart {
  unit: string;
  /** Unix seconds, every `step` from start to end. */
  x: number[];
  series: Series[];
}

export class LbError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface PromMatrix {
  status: string;
  error?: string;
  data?: {
    resultType: string;
    result: Array<{ metric: Record<string, string>; values?: [number, string][]; value?: [number, string] }>;
  };
}

export class LbClient {
  private readonly sources = new Map<
    string,
    { at: number; hosts: Promise<Map<string, 'measured' | 'estimated'>> }
  >();

  constructor(
    readonly baseUrl: string,
    private readonly timeoutMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  private async get(
    path: string,
    params: Record<string, string>,
    user: string,
    cluster: string,
  ): Promise<PromMatrix> {
    const url = `${this.baseUrl}${path}?${new URLSearchParams(params)}`;
    const r = await fetch(url, {
      headers: { 'X-Grafana-User': user, 'X-Ceems-Cluster-Id': cluster },
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await r.text();
    let body: PromMatrix;
    try {
      body = JSON.parse(text) as PromMatrix;
    } catch {
      throw new LbError(
        r.status === 200 ? 502 : r.status,
        `load balancer answered ${r.status}: ${text.slice(0, 200)}`,
      );
    }
    if (r.status !== 200 || body.status !== 'success')
      throw new LbError(
        r.status === 200 ? 502 : r.status,
        body.error ?? `load balancer answered ${r.status}`,
      );
    return body;
  }

  /** The panel's series of one unit between `start` and `end` (Unix s), as `user`. */
  unitChart(
    panel: Panel,
    uuid: string,
    user: string,
    cluster: string,
    start: number,
    end: number,
  ): Promise<Chart> {
    const { unit, queries } = panelQueries(panel, uuid);
    return this.chart(unit, queries, user, cluster, start, end);
  }

  /** Range queries between `start` and `end` (Unix s) as `user`, aligned on one time axis. */
  async chart(
    unit: string,
    queries: readonly PanelQuery[],
    user: string,
    cluster: string,
    start: number,
    end: number,
  ): Promise<Chart> {
    // about 300 points: enough for a 1,000 px wide chart, at least the testbed's 1 s scrape interval
    const step = Math.max(1, Math.ceil((end - start) / 300));
    const x: number[] = [];
    for (let t = start; t <= end; t += step) x.push(t);
    const index = new Map(x.map((t, i) => [t, i]));
    const results = await Promise.all(
      queries.map((q) =>
        this.get(
          '/api/v1/query_range',
          { query: q.expr, start: String(start), end: String(end), step: `${step}s` },
          user,
          cluster,
        ),
      ),
    );
    const series: Series[] = [];
    results.forEach((res, i) => {
      const q = queries[i]!;
      for (const s of res.data?.result ?? []) {
        const values: (number | null)[] = x.map(() => null);
        for (const [t, v] of s.values ?? []) {
          const k = index.get(Math.round(t));
          const n = Number(v);
          if (k !== undefined && Number.isFinite(n)) values[k] = n;
        }
        const label = q.by ? (s.metric[q.by] ?? q.by) : q.label;
        series.push({ label, values });
      }
    });
    // only the period that has data: a unit's first scrape, a cluster's first recording-rule evaluation
    const has = (i: number) => series.some((s) => s.values[i] !== null);
    let a = 0;
    let b = x.length - 1;
    while (a <= b && !has(a)) a++;
    while (b >= a && !has(b)) b--;
    if (a > b) return { unit, x: [], series: [] };
    return {
      unit,
      x: x.slice(a, b + 1),
      series: series.map((s) => ({ ...s, values: s.values.slice(a, b + 1) })),
    };
  }

  /**
   * Hostname → power source over the last day, cached a minute per cluster. Read as the LB's service user
   * (an admin of the LB): node-level series any operator dashboard shows, never a unit's.
   */
  powerSources(cluster: string): Promise<Map<string, 'measured' | 'estimated'>> {
    const hit = this.sources.get(cluster);
    if (hit && this.now() - hit.at < 60_000) return hit.hosts;
    const hosts = (async () => {
      const q = (expr: string) => this.get('/api/v1/query', { query: expr }, SERVICE_USER, cluster);
      const [estimated, measured] = await Promise.all([
        q('max by (hostname) (last_over_time(ceems_estimated_power_watts[1d]))'),
        q(
          'max by (hostname) (last_over_time({__name__=~"ceems_ipmi_dcmi_current_watts|ceems_redfish_current_watts|ceems_cray_pm_counters_power_watts|ceems_rapl_package_joules_total"}[1d]))',
        ),
      ]);
      const out = new Map<string, 'measured' | 'estimated'>();
      for (const s of estimated.data?.result ?? [])
        if (s.metric.hostname) out.set(s.metric.hostname, 'estimated');
      // a measured reading wins over an estimate of the same node (ceems_tool uses it first)
      for (const s of measured.data?.result ?? [])
        if (s.metric.hostname) out.set(s.metric.hostname, 'measured');
      return out;
    })();
    hosts.catch(() => this.sources.delete(cluster));
    this.sources.set(cluster, { at: this.now(), hosts });
    return hosts;
  }
}

export type EnergySource = 'measured' | 'estimated' | 'mixed' | 'unknown';

/** Source of a unit's energy from the sources of its nodes. */
export function energySource(hosts: readonly string[], sources: ReadonlyMap<string, string>): EnergySource {
  if (hosts.length === 0) return 'unknown';
  const found = new Set(hosts.map((h) => sources.get(h) ?? 'unknown'));
  if (found.has('unknown')) return 'unknown';
  if (found.size > 1) return 'mixed';
  return found.has('measured') ? 'measured' : 'estimated';
}
