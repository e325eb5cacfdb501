// `cacct --format=footprint-json|footprint-csv` (issue 20): the API's footprint records of the units,
// as the API returns them (JSON) or flattened to one CSV row per unit for spreadsheets.

import type { ApiRow } from './api.js';

export const FOOTPRINT_FORMATS = ['footprint-json', 'footprint-csv'] as const;
export type FootprintFormat = (typeof FOOTPRINT_FORMATS)[number];

export const isFootprintFormat = (format: string): format is FootprintFormat =>
  (FOOTPRINT_FORMATS as readonly string[]).includes(format);

const PARTS = ['host', 'gpu'] as const;

/** Reads `path` (dot-separated) of a record; undefined when any step is missing. */
function at(record: unknown, path: string): unknown {
  let v = record;
  for (const k of path.split('.')) v = v !== null && typeof v === 'object' ? (v as ApiRow)[k] : undefined;
  return v;
}

/** A CSV cell: numbers at full precision, null/undefined empty, maps as `key=value;…` in key order. */
function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  let text: string;
  if (typeof v === 'object')
    text = Object.entries(v as ApiRow)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, x]) => `${k}=${String(x)}`)
      .join(';');
  else text = String(v);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

const IDENTITY = [
  'schema_version',
  'uuid',
  'cluster_id',
  'project',
  'username',
  'name',
  'state',
  'started_at',
  'ended_at',
  'elapsed',
  'short_unit',
  'sample_interval_seconds',
];
const PART_COLUMNS = ['kwh', 'lower_kwh', 'upper_kwh', 'provenance', 'estimated_fraction', 'pue', 'sources'];
/** Columns after the parts: `energy.<key>`, then the embodied emissions, apart from the operational ones. */
const TOTAL_COLUMNS = ['total_kwh', 'lower_kwh', 'upper_kwh'];
const EMBODIED_COLUMNS = ['grams', 'lower', 'upper'];
const PROVIDER_COLUMNS = ['factor_g_per_kwh', 'total_g', 'lower_g', 'upper_g'];

/** One row per record; the factor and emissions columns of every provider found in any record. */
export function renderFootprintCsv(records: readonly ApiRow[]): string {
  const providers = [
    ...new Set(
      records.flatMap((r) =>
        ((at(r, 'emissions.operational') as ApiRow[] | undefined) ?? []).map((e) => String(e.provider)),
      ),
    ),
  ].sort();
  const header = [
    ...IDENTITY,
    ...PARTS.flatMap((p) => PART_COLUMNS.map((c) => `${p}_${c}`)),
    ...TOTAL_COLUMNS.map((c) => (c === 'total_kwh' ? c : `total_${c}`)),
    ...providers.flatMap((p) => PROVIDER_COLUMNS.map((c) => `${p}_${c}`)),
    ...EMBODIED_COLUMNS.map((c) => `embodied_${c === 'grams' ? 'g' : `${c}_g`}`),
    // the class of most of its nodes (record 1.3.0; empty from older servers)
    'embodied_class',
  ];
  const rows = records.map((r) => {
    const emissions = (at(r, 'emissions.operational') as ApiRow[] | undefined) ?? [];
    const byProvider = new Map(emissions.map((e) => [String(e.provider), e]));
    return [
      ...IDENTITY.map((k) => r[k]),
      ...PARTS.flatMap((p) => PART_COLUMNS.map((c) => at(r, `energy.${p}.${c}`))),
      ...TOTAL_COLUMNS.map((c) => at(r, `energy.${c}`)),
      ...providers.flatMap((p) => PROVIDER_COLUMNS.map((c) => byProvider.get(p)?.[c])),
      ...EMBODIED_COLUMNS.map((c) => at(r, `emissions.embodied.${c}`)),
      at(r, 'emissions.embodied.class.name'),
    ].map(cell);
  });
  return `${[header, ...rows].map((r) => r.join(',')).join('\n')}\n`;
}

export function renderFootprint(format: FootprintFormat, records: readonly ApiRow[]): string {
  return format === 'footprint-json' ? `${JSON.stringify(records, null, 2)}\n` : renderFootprintCsv(records);
}
