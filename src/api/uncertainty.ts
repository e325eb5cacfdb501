// Uncertainty of a unit's energy and emissions (issue 20, B7; the model and its sources: docs/footprint.md).
// Each error source is a relative half-width of a ~95 % interval; independent sources are combined in
// quadrature (GUM, JCGM 100:2008 §5.1.2, every sensitivity 1), systematic errors of one kind add linearly.

import type { MetricMap } from './models.js';

/** Relative accuracy of each power source's reading (docs/footprint.md, "Power source"). */
export const SOURCE_ACCURACY: Readonly<Record<string, number>> = {
  rapl: 0.05,
  cray: 0.05,
  ipmi: 0.1,
  redfish: 0.1,
  estimated: 0.3,
  dcgm: 0.05,
  'amd-device-metrics': 0.1,
  'amd-smi': 0.1,
  unknown: 0.3,
  // a node's energy counter read at a unit's start and end (B9): the accuracy of the counter's class
  'rapl-counter': 0.05,
  'cray-counter': 0.05,
  'hwmon-counter': 0.1,
};
/** A source missing from the table counts as an estimate. */
const UNLISTED_SOURCE = 0.3;

/** Relative error of the attribution model's split of node power between units (docs/footprint.md). */
export const ATTRIBUTION_ACCURACY = { host: 0.1, gpu: 0.02 } as const;

/** Relative spread of a provider's emission factor over a unit's life (docs/footprint.md, "Factor"). */
export const FACTOR_SPREAD: Readonly<Record<string, number>> = { rte: 0.1, emaps: 0.1, owid: 0.3 };
/** Static factors (`--emission-factor`, unknown providers): a yearly average like OWID's. */
const UNLISTED_FACTOR = 0.3;

export interface Bounds {
  lower: number;
  upper: number;
}

/** The relative error of each source of one part's energy, and their combination. */
export interface EnergyUncertainty {
  source: number;
  attribution: number;
  sampling: number;
  combined: number;
}

/** √(Σ r²): independent relative errors with sensitivity 1. */
export const quadrature = (...r: number[]) => Math.sqrt(r.reduce((s, x) => s + x * x, 0));

/** Energy-weighted mean of `f(source)` over the sources that fed a part; 0 without energy. */
function energyWeighted(sources: MetricMap, f: (source: string) => number): number {
  let kwh = 0;
  let weighted = 0;
  for (const [source, e] of Object.entries(sources)) {
    if (e <= 0) continue;
    kwh += e;
    weighted += e * f(source);
  }
  return kwh > 0 ? weighted / kwh : 0;
}

/** Energy-weighted accuracy of the sources that fed a part (one source's error is systematic). */
export const sourceError = (sources: MetricMap) =>
  energyWeighted(sources, (s) => SOURCE_ACCURACY[s] ?? UNLISTED_SOURCE);

/**
 * Sampling error: the integral of samples taken every `intervalS` can miss or double half an interval at
 * each end of the unit, so up to one interval of its `durationS`; capped at 100 %. Unknown interval: 0.
 */
export function samplingError(intervalS: number | undefined, durationS: number): number {
  if (!intervalS || intervalS <= 0) return 0;
  return durationS > 0 ? Math.min(1, intervalS / durationS) : 1;
}

/** Suffix of the `power_source` of energy from a node energy counter read at unit start and end (B9). */
export const COUNTER_SUFFIX = '-counter';

/** Share of a part's kWh read from an energy counter at the unit's start and end (`*-counter` sources). */
export const counterFraction = (sources: MetricMap) =>
  energyWeighted(sources, (s) => (s.endsWith(COUNTER_SUFFIX) ? 1 : 0));

export function energyUncertainty(
  part: 'host' | 'gpu',
  sources: MetricMap,
  sampling: { intervalS: number | undefined; durationS: number },
): EnergyUncertainty {
  const source = sourceError(sources);
  const attribution = ATTRIBUTION_ACCURACY[part];
  // a counter covers the unit's whole life: no sample to miss at either end
  const samplingErr = samplingError(sampling.intervalS, sampling.durationS) * (1 - counterFraction(sources));
  return {
    source,
    attribution,
    sampling: samplingErr,
    combined: quadrature(source, attribution, samplingErr),
  };
}

/** `value` ± `relative`, never below 0. */
export function bounds(value: number, relative: number): Bounds {
  return { lower: value * Math.max(0, 1 - relative), upper: value * (1 + relative) };
}

/**
 * Bounds of energy from a node counter (B9): the lower one `value × (1 − combined)` (the counter's class
 * and the CPU share as attribution model, no sampling term), the upper one the whole node's counter
 * delta `nodeKwh × (1 + source)`: the unit cannot have drawn more than its nodes did.
 */
export function counterBounds(value: number, nodeKwh: number, r: EnergyUncertainty): Bounds {
  return { lower: value * Math.max(0, 1 - r.combined), upper: Math.max(value, nodeKwh) * (1 + r.source) };
}

export const factorSpread = (provider: string) => FACTOR_SPREAD[provider] ?? UNLISTED_FACTOR;

/**
 * Bounds of a provider's emissions from two parts: each part's grams carry its energy error and the
 * factor's spread (shared by both parts, so the parts' bounds add linearly).
 */
export function emissionsBounds(parts: { grams: number; energy: number }[], provider: string): Bounds {
  const spread = factorSpread(provider);
  let lower = 0;
  let upper = 0;
  for (const p of parts) {
    const b = bounds(p.grams, quadrature(p.energy, spread));
    lower += b.lower;
    upper += b.upper;
  }
  return { lower, upper };
}
