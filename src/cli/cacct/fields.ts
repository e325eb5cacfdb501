// The field keys of `--format` (cli.md §1.6): the API field each one reads and how it is shown.

/** How a field's value is rendered: plain text, a metric map of averages (%), energies (kWh) or emissions (g). */
export type FieldKind = 'text' | 'average' | 'energy' | 'emissions';

export interface Field {
  readonly key: string;
  readonly apiField: string;
  readonly title: string;
  readonly kind: FieldKind;
  /** Column width bounds of the box table (the original's per-field values); longer text wraps. */
  readonly widthMin: number;
  readonly widthMax: number;
  /** Sub-columns named by their key even when the map has one key (provenance: the key is the news). */
  readonly keyed?: boolean;
}

export const FIELDS: readonly Field[] = [
  { key: 'jobid', apiField: 'uuid', title: 'Job ID', kind: 'text', widthMin: 3, widthMax: 7 },
  { key: 'name', apiField: 'name', title: 'Name', kind: 'text', widthMin: 5, widthMax: 8 },
  { key: 'account', apiField: 'project', title: 'Account', kind: 'text', widthMin: 5, widthMax: 8 },
  { key: 'group', apiField: 'groupname', title: 'Group', kind: 'text', widthMin: 5, widthMax: 5 },
  { key: 'user', apiField: 'username', title: 'User', kind: 'text', widthMin: 5, widthMax: 5 },
  { key: 'createdat', apiField: 'created_at', title: 'Created', kind: 'text', widthMin: 5, widthMax: 8 },
  { key: 'startedat', apiField: 'started_at', title: 'Started', kind: 'text', widthMin: 5, widthMax: 12 },
  { key: 'endedat', apiField: 'ended_at', title: 'Ended', kind: 'text', widthMin: 5, widthMax: 12 },
  { key: 'elapsed', apiField: 'elapsed', title: 'Elapsed', kind: 'text', widthMin: 5, widthMax: 12 },
  { key: 'state', apiField: 'state', title: 'State', kind: 'text', widthMin: 5, widthMax: 5 },
  {
    key: 'cpuusage',
    apiField: 'avg_cpu_usage',
    title: 'CPU Usage(%)',
    kind: 'average',
    widthMin: 5,
    widthMax: 6,
  },
  {
    key: 'cpumemoryusage',
    apiField: 'avg_cpu_mem_usage',
    title: 'CPU Mem. Usage(%)',
    kind: 'average',
    widthMin: 5,
    widthMax: 6,
  },
  {
    key: 'hostenergy',
    apiField: 'total_cpu_energy_usage_kwh',
    title: 'Host Energy(kWh)',
    kind: 'energy',
    widthMin: 5,
    widthMax: 8,
  },
  {
    key: 'hostemissions',
    apiField: 'total_cpu_emissions_gms',
    title: 'Host Emissions(gms)',
    kind: 'emissions',
    widthMin: 5,
    widthMax: 12,
  },
  {
    key: 'gpuusage',
    apiField: 'avg_gpu_usage',
    title: 'GPU Usage(%)',
    kind: 'average',
    widthMin: 5,
    widthMax: 6,
  },
  {
    key: 'gpumemoryusage',
    apiField: 'avg_gpu_mem_usage',
    title: 'GPU Mem. Usage(%)',
    kind: 'average',
    widthMin: 5,
    widthMax: 6,
  },
  {
    key: 'gpuenergy',
    apiField: 'total_gpu_energy_usage_kwh',
    title: 'GPU Energy(kWh)',
    kind: 'energy',
    widthMin: 5,
    widthMax: 8,
  },
  {
    key: 'gpuemissions',
    apiField: 'total_gpu_emissions_gms',
    title: 'GPU Emissions(gms)',
    kind: 'emissions',
    widthMin: 5,
    widthMax: 12,
  },
];

/**
 * Energy provenance (issue 20): kWh by power source and by PUE, one sub-column per key (`rapl`,
 * `estimated`, `unknown`…). Asked for by --format only: `--long` stays the original's 18 fields.
 */
export const PROVENANCE_FIELDS: readonly Field[] = (
  [
    ['hostenergysource', 'total_cpu_energy_by_source_kwh', 'Host Energy by Source(kWh)'],
    ['hostenergypue', 'total_cpu_energy_by_pue_kwh', 'Host Energy by PUE(kWh)'],
    ['gpuenergysource', 'total_gpu_energy_by_source_kwh', 'GPU Energy by Source(kWh)'],
    ['gpuenergypue', 'total_gpu_energy_by_pue_kwh', 'GPU Energy by PUE(kWh)'],
  ] as const
).map(([key, apiField, title]) => ({
  key,
  apiField,
  title,
  kind: 'energy',
  widthMin: 5,
  widthMax: 10,
  keyed: true,
}));

/** The original's default set, `state` added after `elapsed` so running jobs show as such [DIFF D-CLI-28]. */
export const DEFAULT_FORMAT =
  'jobid,account,elapsed,state,cpuusage,cpumemoryusage,hostenergy,hostemissions,gpuusage,gpumemoryusage,gpuenergy,gpuemissions';

const ALL_FIELDS = [...FIELDS, ...PROVENANCE_FIELDS];
const BY_KEY = new Map(ALL_FIELDS.map((f) => [f.key, f]));

/** Resolves a comma-separated `--format` value; unknown keys are an error naming them. */
export function parseFormat(format: string): Field[] {
  const keys = format
    .split(',')
    .map((k) => k.trim().toLowerCase())
    .filter((k) => k !== '');
  if (keys.length === 0) throw new Error('--format needs at least one field key (see --helpformat)');
  const unknown = keys.filter((k) => !BY_KEY.has(k));
  if (unknown.length > 0) {
    throw new Error(
      `unknown field key(s) in --format: ${unknown.map((k) => `'${k}'`).join(', ')} (see --helpformat)`,
    );
  }
  return [...new Set(keys)].map((k) => BY_KEY.get(k)!);
}

/** Text of `--helpformat`. */
export function helpFormat(): string {
  const width = Math.max(...ALL_FIELDS.map((f) => f.key.length)) + 2;
  return `${ALL_FIELDS.map((f) => `${f.key.padEnd(width)}${f.title}`).join('\n')}\n`;
}
