// Short units reconciled with the node's energy counter (issue 20, B9; docs/footprint.md, "Short units").
// The exporter (`--collector.slurm.energy-counter`) exports, for each unit that ended, the node's counter
// delta over the unit's life per counter source and the unit's CPU share of the node. A unit with at most
// one power sample (shorter than two scrape intervals) or none integrated gets `delta × share` instead
// (× the PUE of its records), with the source `<source>-counter` and the whole node's delta kept as the
// upper bound's basis (`total_cpu_energy_usage_kwh.counter_node`). Pure functions; the queries are in
// tsdb.ts.

import { COUNTER_NODE_KEY, weightedPue } from '../footprint.js';
import type { MetricMap, Unit } from '../models.js';
import { COUNTER_SUFFIX } from '../uncertainty.js';

/** Series of the exporter (src/exporter/unitenergy/tracker.ts). */
export const DEFAULT_COUNTER_QUERIES = {
  joules: 'last_over_time(ceems_compute_unit_energy_counter_joules{uuid=~"{{.UUIDs}}"}[{{.Range}}])',
  share: 'last_over_time(ceems_compute_unit_energy_counter_cpu_share_ratio{uuid=~"{{.UUIDs}}"}[{{.Range}}])',
};

/** Counter sources by preference on one node: Cray's covers the whole node, RAPL the sockets and DRAM. */
export const COUNTER_SOURCES = ['cray', 'rapl', 'hwmon'] as const;
/** `total_cpu_energy_usage_kwh` key of the integrated energy the counter figure replaced (kWh). */
export const INTEGRATED_KEY = 'integrated';

export interface Labelled {
  uuid: string;
  labels: Record<string, string>;
  value: number;
}

/** One unit's counter figures before PUE: kWh by counter source (its share) and the nodes' whole kWh. */
export interface UnitCounter {
  bySource: MetricMap;
  nodeKwh: number;
}

const J_PER_KWH = 3.6e6;

/**
 * Per unit: on each of its nodes the preferred source's delta times its share there, summed over nodes.
 * A node without a share sample counts the whole node (share 1: the upper bound, never an undercount).
 */
export function unitCounters(
  joules: readonly Labelled[],
  shares: readonly Labelled[],
): Map<string, UnitCounter> {
  const share = new Map(shares.map((s) => [`${s.uuid}\0${s.labels.hostname ?? ''}`, s.value]));
  // uuid → host → source → joules
  const byHost = new Map<string, Map<string, Map<string, number>>>();
  for (const j of joules) {
    const source = j.labels.source ?? '';
    if (!(COUNTER_SOURCES as readonly string[]).includes(source) || !(j.value > 0)) continue;
    const hosts = byHost.get(j.uuid) ?? new Map<string, Map<string, number>>();
    byHost.set(j.uuid, hosts);
    const host = j.labels.hostname ?? '';
    const sources = hosts.get(host) ?? new Map<string, number>();
    hosts.set(host, sources);
    sources.set(source, j.value);
  }
  const out = new Map<string, UnitCounter>();
  for (const [uuid, hosts] of byHost) {
    const c: UnitCounter = { bySource: {}, nodeKwh: 0 };
    for (const [host, sources] of hosts) {
      const source = COUNTER_SOURCES.find((s) => sources.has(s))!;
      const kwh = sources.get(source)! / J_PER_KWH;
      const s = Math.min(1, Math.max(0, share.get(`${uuid}\0${host}`) ?? 1));
      const key = `${source}${COUNTER_SUFFIX}`;
      c.bySource[key] = (c.bySource[key] ?? 0) + kwh * s;
      c.nodeKwh += kwh;
    }
    out.set(uuid, c);
  }
  return out;
}

/** Whether a unit of the window `[start, end]` (ms) may take its counter figure: its whole life is in it. */
export function reconcilable(u: Unit, start: number, end: number, scrapeMs: number): boolean {
  const started = u.started_at_ts ?? 0;
  const ended = u.ended_at_ts ?? 0;
  // a life spread over windows had its earlier part stored from samples already: it keeps that figure
  if (!(ended > start && ended <= end && started >= start)) return false;
  const short = ended - started < 2 * scrapeMs;
  return short || !((u.total_cpu_energy_usage_kwh?.total ?? 0) > 0);
}

/**
 * Replaces the host energy of `u` by its counter figure: `total` (× the PUE of its records, 1 without
 * any), the whole nodes' delta, the integrated figure it replaced, by-source and by-PUE maps; the
 * emissions of each provider scale with the energy (the same mean factor), and stay as they are when
 * nothing was integrated (no factor to scale).
 */
export function applyCounter(u: Unit, c: UnitCounter): void {
  const integrated = u.total_cpu_energy_usage_kwh?.total ?? 0;
  const pue = weightedPue(u.total_cpu_energy_by_pue_kwh ?? {});
  const factor = pue ?? 1;
  const bySource: MetricMap = {};
  let total = 0;
  for (const [k, v] of Object.entries(c.bySource)) {
    bySource[k] = v * factor;
    total += v * factor;
  }
  u.total_cpu_energy_usage_kwh = {
    total,
    [COUNTER_NODE_KEY]: c.nodeKwh * factor,
    [INTEGRATED_KEY]: integrated,
  };
  u.total_cpu_energy_by_source_kwh = bySource;
  u.total_cpu_energy_by_pue_kwh = pue === null ? {} : { [String(pue)]: total };
  if (integrated > 0 && u.total_cpu_emissions_gms)
    u.total_cpu_emissions_gms = Object.fromEntries(
      Object.entries(u.total_cpu_emissions_gms).map(([k, g]) => [k, (g * total) / integrated]),
    );
}
