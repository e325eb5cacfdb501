// The footprint record of a unit (issue 20, `GET /api/v1/units/footprint`): what `/units` stores, put in
// one documented, versioned shape that says where each number came from and how sure it is. Pure
// functions of a stored unit (and its cluster's embodied-emissions class): every value is a stored number
// or derived from stored numbers, so the record and `/units` never disagree. Model: docs/footprint.md.

import {
  type ClusterEmbodied,
  DEFAULT_CLUSTER_EMBODIED,
  type UnitEmbodiedEmissions,
  unitEmbodiedEmissions,
} from './embodied.js';
import { type MetricMap, SAMPLING_FIELD, type Unit } from './models.js';
import {
  bounds,
  COUNTER_SUFFIX,
  counterBounds,
  type EnergyUncertainty,
  emissionsBounds,
  energyUncertainty,
  factorSpread,
} from './uncertainty.js';

/** Semantic version of the record; additions bump the minor part (docs/footprint-schema.json). */
export const FOOTPRINT_SCHEMA_VERSION = '1.4.0';

/** `power_source` key of energy stored without provenance (rules older than issue 20, or an older API). */
export const UNKNOWN_SOURCE = 'unknown';
export const ESTIMATED_SOURCE = 'estimated';
/** Key of `total_cpu_energy_usage_kwh`: the whole node's counter delta over the unit's life (kWh). */
export const COUNTER_NODE_KEY = 'counter_node';

/**
 * How a part's energy was obtained: `measured` (every kWh from a meter), `estimated` (every kWh from the
 * power model), `partly_estimated`, `partly_unknown` (measured, but some kWh have no recorded source),
 * `unknown` (no source recorded at all), `none` (no energy).
 */
export type Provenance =
  | 'measured'
  | 'estimated'
  | 'partly_estimated'
  | 'partly_unknown'
  | 'unknown'
  | 'none';

export interface EnergyPart {
  kwh: number;
  /** kWh by power source; what the sources do not cover is `unknown`. */
  sources: MetricMap;
  provenance: Provenance;
  /** Share of `kwh` from the estimated-power model (0–1), null without energy. */
  estimated_fraction: number | null;
  /** Energy-weighted PUE the energy includes, null when none was recorded. */
  pue: number | null;
  lower_kwh: number;
  upper_kwh: number;
  /** Relative error of each source and combined (docs/footprint.md). */
  uncertainty: EnergyUncertainty;
  /**
   * The whole node's energy over the unit's life from its energy counter (the upper bound's basis) when
   * the part's energy comes from that counter (short units, B9); else null.
   */
  counter_node_kwh: number | null;
}

export interface OperationalEmissions {
  provider: string;
  /** Energy-weighted mean grid factor over the unit's life: emissions ÷ energy, null without energy. */
  factor_g_per_kwh: number | null;
  host_g: number;
  gpu_g: number;
  total_g: number;
  lower_g: number;
  upper_g: number;
  /** Relative spread of the factor over the unit's life assumed for this provider. */
  factor_spread: number;
}

export interface FootprintRecord {
  schema_version: string;
  cluster_id: string;
  resource_manager: string;
  uuid: string;
  name: string;
  project: string;
  groupname: string;
  username: string;
  started_at: string;
  ended_at: string;
  started_at_ts: number;
  ended_at_ts: number;
  elapsed: string;
  state: string;
  resources: { allocation: Record<string, unknown>; time_seconds: MetricMap };
  /** Shorter than two sample intervals (issue 20, B9): its energy rests on one sample or none. */
  short_unit: boolean;
  /** Seconds between the samples its energy was integrated from; null when not recorded. */
  sample_interval_seconds: number | null;
  energy: { host: EnergyPart; gpu: EnergyPart; total_kwh: number; lower_kwh: number; upper_kwh: number };
  emissions: {
    operational: OperationalEmissions[];
    /** Manufacturing share of the allocated cores and GPUs: never added to `operational`. */
    embodied: UnitEmbodiedEmissions;
  };
}

const sum = (m: MetricMap) => Object.values(m).reduce((a, b) => a + b, 0);

/** Below this relative gap the sources cover the part's energy (both are sums of the same samples). */
const COVERED = 1e-9;

/** kWh by source, topped up with `unknown` for what the recorded sources do not cover. */
export function energySources(kwh: number, bySource: MetricMap): MetricMap {
  const sources: MetricMap = {};
  for (const [k, v] of Object.entries(bySource)) {
    const key = k === '' ? UNKNOWN_SOURCE : k;
    if (v > 0) sources[key] = (sources[key] ?? 0) + v;
  }
  const gap = kwh - sum(sources);
  if (gap > COVERED * Math.max(kwh, 1e-12)) sources[UNKNOWN_SOURCE] = (sources[UNKNOWN_SOURCE] ?? 0) + gap;
  return sources;
}

export function provenanceOf(sources: MetricMap): Provenance {
  const total = sum(sources);
  if (total <= 0) return 'none';
  const estimated = sources[ESTIMATED_SOURCE] ?? 0;
  const unknown = sources[UNKNOWN_SOURCE] ?? 0;
  if (unknown >= total) return 'unknown';
  if (estimated >= total) return 'estimated';
  if (estimated > 0) return 'partly_estimated';
  return unknown > 0 ? 'partly_unknown' : 'measured';
}

/** Energy-weighted mean of the `pue` keys of a by-PUE map; null when it holds no energy. */
export function weightedPue(byPue: MetricMap): number | null {
  let weight = 0;
  let weighted = 0;
  for (const [k, v] of Object.entries(byPue)) {
    const pue = Number(k);
    if (k === '' || !Number.isFinite(pue) || v <= 0) continue;
    weight += v;
    weighted += pue * v;
  }
  return weight > 0 ? weighted / weight : null;
}

/** How a unit's energy was sampled: the interval of its samples and its duration (s). */
export interface Sampling {
  intervalS: number | undefined;
  durationS: number;
}

/** A unit shorter than two sample intervals: at most one sample of its power (issue 20, B9). */
export const isShortUnit = (s: Sampling) => s.intervalS !== undefined && s.durationS < 2 * s.intervalS;

/** The provenance and bounds of one part (host or GPU) of a stored unit. */
export function energyPart(
  part: 'host' | 'gpu',
  energy: MetricMap | undefined,
  bySource: MetricMap | undefined,
  byPue: MetricMap | undefined,
  sampling: Sampling,
): EnergyPart {
  const kwh = energy?.total ?? 0;
  const sources = energySources(kwh, bySource ?? {});
  const total = sum(sources);
  const uncertainty = energyUncertainty(part, sources, sampling);
  const node = energy?.[COUNTER_NODE_KEY];
  const fromCounter =
    node !== undefined && node > 0 && Object.keys(sources).every((k) => k.endsWith(COUNTER_SUFFIX));
  const b = fromCounter ? counterBounds(kwh, node, uncertainty) : bounds(kwh, uncertainty.combined);
  return {
    kwh,
    sources,
    provenance: provenanceOf(sources),
    estimated_fraction: total > 0 ? (sources[ESTIMATED_SOURCE] ?? 0) / total : null,
    pue: weightedPue(byPue ?? {}),
    lower_kwh: b.lower,
    upper_kwh: b.upper,
    uncertainty,
    counter_node_kwh: fromCounter ? node : null,
  };
}

/** Provider of an emissions sub-metric: the updater's keys are `<provider>_total`. */
const providerOf = (key: string) => key.replace(/_total$/, '');

interface PartEmissions {
  kwh: number;
  grams: MetricMap;
  /** Combined relative error of the part's energy. */
  error: number;
}

export function operationalEmissions(host: PartEmissions, gpu: PartEmissions): OperationalEmissions[] {
  const providers = new Map<string, { host: number; gpu: number }>();
  const add = (grams: MetricMap, part: 'host' | 'gpu') => {
    for (const [k, v] of Object.entries(grams)) {
      const p = providers.get(providerOf(k)) ?? { host: 0, gpu: 0 };
      p[part] += v;
      providers.set(providerOf(k), p);
    }
  };
  add(host.grams, 'host');
  add(gpu.grams, 'gpu');
  const kwh = host.kwh + gpu.kwh;
  return [...providers.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([provider, g]) => {
      const b = emissionsBounds(
        [
          { grams: g.host, energy: host.error },
          { grams: g.gpu, energy: gpu.error },
        ],
        provider,
      );
      return {
        provider,
        factor_g_per_kwh: kwh > 0 ? (g.host + g.gpu) / kwh : null,
        host_g: g.host,
        gpu_g: g.gpu,
        total_g: g.host + g.gpu,
        lower_g: b.lower,
        upper_g: b.upper,
        factor_spread: factorSpread(provider),
      };
    });
}

/** The footprint record of a stored unit; `embodied`: the node classes of its cluster. */
export function footprintRecord(
  u: Unit,
  embodied: ClusterEmbodied = DEFAULT_CLUSTER_EMBODIED,
): FootprintRecord {
  const time = u.total_time_seconds ?? {};
  const sampling = { intervalS: u[SAMPLING_FIELD]?.scrape, durationS: time.walltime ?? 0 };
  const host = energyPart(
    'host',
    u.total_cpu_energy_usage_kwh,
    u.total_cpu_energy_by_source_kwh,
    u.total_cpu_energy_by_pue_kwh,
    sampling,
  );
  const gpu = energyPart(
    'gpu',
    u.total_gpu_energy_usage_kwh,
    u.total_gpu_energy_by_source_kwh,
    u.total_gpu_energy_by_pue_kwh,
    sampling,
  );
  return {
    schema_version: FOOTPRINT_SCHEMA_VERSION,
    cluster_id: u.cluster_id ?? '',
    resource_manager: u.resource_manager ?? '',
    uuid: u.uuid,
    name: u.name ?? '',
    project: u.project ?? '',
    groupname: u.groupname ?? '',
    username: u.username ?? '',
    started_at: u.started_at ?? '',
    ended_at: u.ended_at ?? '',
    started_at_ts: u.started_at_ts ?? 0,
    ended_at_ts: u.ended_at_ts ?? 0,
    elapsed: u.elapsed ?? '',
    state: u.state ?? '',
    resources: { allocation: u.allocation ?? {}, time_seconds: time },
    short_unit: isShortUnit(sampling),
    sample_interval_seconds: sampling.intervalS ?? null,
    energy: {
      host,
      gpu,
      total_kwh: host.kwh + gpu.kwh,
      // the parts share the sampling error and may share a source: their bounds add linearly (wider)
      lower_kwh: host.lower_kwh + gpu.lower_kwh,
      upper_kwh: host.upper_kwh + gpu.upper_kwh,
    },
    emissions: {
      operational: operationalEmissions(
        { kwh: host.kwh, grams: u.total_cpu_emissions_gms ?? {}, error: host.uncertainty.combined },
        { kwh: gpu.kwh, grams: u.total_gpu_emissions_gms ?? {}, error: gpu.uncertainty.combined },
      ),
      embodied: unitEmbodiedEmissions(u, embodied),
    },
  };
}
