// SQL functions of spec §9.3, registered on every connection (writer and readers) because the upserts and
// any ad-hoc query against an existing database may use them.

import { aggregate, type Database } from '../../common/sqlite.js';
import type { MetricMap } from '../models.js';

/** Decodes a stored metric map; anything that is not a JSON object of numbers counts as empty. */
export function parseMetricMap(text: unknown): MetricMap {
  if (typeof text !== 'string' || text === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return {};
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return {};
  const out: MetricMap = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    const n = typeof x === 'number' ? x : Number(x);
    if (x !== null && Number.isFinite(n)) out[k] = n;
  }
  return out;
}

const num = (v: unknown): number => {
  const n = typeof v === 'number' || typeof v === 'bigint' ? Number(v) : Number(v ?? 0);
  return Number.isFinite(n) ? n : 0;
};

/** Key-wise sum over the union of keys. */
export function addMetricMaps(a: MetricMap, b: MetricMap): MetricMap {
  const out: MetricMap = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** Key-wise weighted average; a key present in one map only keeps its value (§9.3). */
export function avgMetricMaps(a: MetricMap, b: MetricMap, wa: number, wb: number): MetricMap {
  const out: MetricMap = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (!(k in a)) {
      out[k] = v;
      continue;
    }
    const w = wa + wb;
    const sum = a[k]! * wa + v * wb;
    out[k] = w !== 0 ? sum / w : sum;
  }
  return out;
}

const EMPTY = '{}';

/**
 * A metric map as stored: keys in order, as the original's Go encoder wrote them. The API reads an ordered
 * map without sorting it again (src/api/rowenc.ts: a user's 10k units came ~10 % faster). Maps with
 * nested values are written as they are.
 */
export function metricMapJson(m: object): string {
  const keys = Object.keys(m);
  let sorted = true;
  for (let i = 1; i < keys.length && sorted; i++) sorted = keys[i - 1]! < keys[i]!;
  if (sorted || Object.values(m).some((v) => v !== null && typeof v === 'object')) return JSON.stringify(m);
  return JSON.stringify(m, keys.sort());
}

// Merging with an empty map is the identity of both functions: skip the JSON round trip (many windows
// leave several metric maps empty).

/** `add_metric_map(a, b)` of stored texts (also the PostgreSQL store's merge, pg/store.ts). */
export function addMetricMapText(a: unknown, b: unknown): string {
  if (b === EMPTY && typeof a === 'string') return a;
  if (a === EMPTY && typeof b === 'string') return b;
  return metricMapJson(addMetricMaps(parseMetricMap(a), parseMetricMap(b)));
}

/** `avg_metric_map(a, b, wa, wb)` of stored texts. */
export function avgMetricMapText(a: unknown, b: unknown, wa: unknown, wb: unknown): string {
  if (b === EMPTY && typeof a === 'string') return a;
  if (a === EMPTY && typeof b === 'string') return b;
  return metricMapJson(avgMetricMaps(parseMetricMap(a), parseMetricMap(b), num(wa), num(wb)));
}

/**
 * `json_extract(text, '$.<key>')` as the upserts' weights read it (a number, a string's Number(), true 1,
 * false 0, anything else 0); text that is not JSON weighs 0 (SQLite's json_extract would raise).
 */
export function metricWeight(text: unknown, key: string): number {
  if (typeof text !== 'string') return 0;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 0;
  }
  if (!v || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, key)) return 0;
  const x = (v as Record<string, unknown>)[key];
  return typeof x === 'boolean' ? Number(x) : typeof x === 'number' || typeof x === 'string' ? num(x) : 0;
}

export function registerFunctions(db: Database): void {
  db.function('add_metric_map', { deterministic: true }, addMetricMapText);
  db.function('avg_metric_map', { deterministic: true }, avgMetricMapText);
  aggregate<MetricMap>(db, 'sum_metric_map_agg', {
    start: () => ({}),
    step: (acc, m) => addMetricMaps(acc, parseMetricMap(m)),
    result: (acc) => metricMapJson(acc),
  });
  // Running weighted sums per key, divided at the end.
  aggregate<{ sums: MetricMap; weights: MetricMap }>(db, 'avg_metric_map_agg', {
    start: () => ({ sums: {}, weights: {} }),
    step: (acc, m, w) => {
      const weight = num(w);
      for (const [k, v] of Object.entries(parseMetricMap(m))) {
        acc.sums[k] = (acc.sums[k] ?? 0) + v * weight;
        acc.weights[k] = (acc.weights[k] ?? 0) + weight;
      }
      return acc;
    },
    result: (acc) => {
      const out: MetricMap = {};
      for (const [k, s] of Object.entries(acc.sums)) {
        const w = acc.weights[k]!;
        out[k] = w !== 0 ? s / w : s;
      }
      return metricMapJson(out);
    },
  });
}
