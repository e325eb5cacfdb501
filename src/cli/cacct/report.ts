// The rows of a cacct report (cli.md §1.7): one row per unit, one footer row per usage row, metric maps
// expanded into one column per key, numbers formatted as the original does or in human units.

import type { ApiRow } from './api.js';
import type { Field } from './fields.js';
import { formatElapsed } from './window.js';

export interface Column {
  field: Field;
  /** Key of the metric map read by this column (undefined for text fields and maps without keys). */
  key?: string;
  /** Text of the second header row: the key when the map has several keys, else empty (as the original). */
  subHeader: string;
}

/** `original`: averages `%.2f`, energy and emissions `%f`; `human`: adaptive decimals, emissions in g or kg. */
export type NumberStyle = 'original' | 'human';

export interface Table {
  /** Title of each column, in column order (repeated over the columns of one metric map). */
  titles: string[];
  columns: Column[];
  units: string[][];
  footers: string[][];
}

function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

export function metric(row: ApiRow, apiField: string, key: string | undefined): number | undefined {
  const m = row[apiField];
  if (key === undefined || m === null || typeof m !== 'object') return undefined;
  const v = (m as Record<string, unknown>)[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** The keys of a metric-map field over all rows, sorted. */
export function mapKeys(rows: readonly ApiRow[], apiField: string): string[] {
  const keys = new Set<string>();
  for (const r of rows) {
    const m = r[apiField];
    if (m && typeof m === 'object') for (const k of Object.keys(m)) keys.add(k);
  }
  return [...keys].sort();
}

/** Builds the columns: text fields as one column, metric maps expanded into their sorted keys. */
export function buildColumns(fields: readonly Field[], rows: readonly ApiRow[]): Column[] {
  const columns: Column[] = [];
  for (const field of fields) {
    if (field.kind === 'text') {
      columns.push({ field, subHeader: '' });
      continue;
    }
    const sorted = mapKeys(rows, field.apiField);
    if (sorted.length === 0) columns.push({ field, subHeader: '' });
    for (const key of sorted)
      columns.push({ field, key, subHeader: sorted.length > 1 || field.keyed ? key : '' });
  }
  return columns;
}

/** Footer value of a text column: totals are keyed by project, group and user; elapsed is total walltime. */
function footerText(field: Field, usage: ApiRow): string {
  switch (field.key) {
    case 'account':
    case 'group':
    case 'user':
      return text(usage[field.apiField]);
    case 'elapsed': {
      const wall = metric(usage, 'total_time_seconds', 'walltime');
      return wall === undefined || wall <= 0 ? '' : formatElapsed(wall);
    }
    default:
      return '';
  }
}

/**
 * Numeric formatter of one field for the human style: emissions in kg when the largest value reaches 1 kg;
 * decimals so that the smallest non-zero value keeps two significant digits (between 2 and 6 decimals).
 */
function humanFormatter(
  kind: Field['kind'],
  values: number[],
): { format: (v: number) => string; unit?: string } {
  if (kind === 'average') return { format: (v) => v.toFixed(2) };
  const abs = values.map(Math.abs);
  let scale = 1;
  let unit: string | undefined;
  if (kind === 'emissions') {
    scale = Math.max(0, ...abs) >= 1000 ? 1000 : 1;
    unit = scale === 1000 ? 'kg CO2e' : 'g CO2e';
  }
  const smallest = Math.min(...abs.filter((v) => v > 0).map((v) => v / scale));
  const decimals = Number.isFinite(smallest)
    ? Math.min(6, Math.max(2, 1 - Math.floor(Math.log10(smallest))))
    : 2;
  return { format: (v) => (v / scale).toFixed(decimals), unit };
}

/** The original's verbs: `%.2f` for averages, `%f` for energy and emissions. */
function originalFormat(kind: Field['kind'], v: number): string {
  return kind === 'average' ? v.toFixed(2) : v.toFixed(6);
}

/** Title of a field; human emissions titles name the unit actually shown. */
function fieldTitle(field: Field, unit: string | undefined): string {
  return unit ? field.title.replace(/\(gms\)$/, `(${unit})`) : field.title;
}

/** "3 jobs": the first footer column counts units, and says so (it sits under the job ids) [DIFF D-CLI-23]. */
export function unitCount(n: number): string {
  return `${n} ${n === 1 ? 'job' : 'jobs'}`;
}

export function buildTable(
  fields: readonly Field[],
  units: readonly ApiRow[],
  footers: readonly ApiRow[],
  style: NumberStyle,
): Table {
  const columns = buildColumns(fields, [...units, ...footers]);
  const unitCells: string[][] = units.map(() => []);
  const footerCells: string[][] = footers.map(() => []);
  const titles: string[] = [];
  for (const field of fields) {
    const cols = columns.filter((c) => c.field === field);
    let unit: string | undefined;
    if (field.kind === 'text') {
      for (const [i, u] of units.entries()) unitCells[i]!.push(text(u[field.apiField]));
      for (const [i, u] of footers.entries()) footerCells[i]!.push(footerText(field, u));
    } else {
      const uv = cols.map((c) => units.map((u) => metric(u, field.apiField, c.key)));
      const fv = cols.map((c) => footers.map((u) => metric(u, field.apiField, c.key)));
      // one scale for the whole field so that its title names the unit of every sub-column
      const all = [...uv.flat(), ...fv.flat()].filter((v): v is number => v !== undefined);
      const human = humanFormatter(field.kind, all);
      if (style === 'human') unit = human.unit;
      const fmt = (v: number | undefined) =>
        v === undefined ? '' : style === 'original' ? originalFormat(field.kind, v) : human.format(v);
      for (let k = 0; k < cols.length; k++) {
        for (const [i, v] of uv[k]!.entries()) unitCells[i]!.push(fmt(v));
        for (const [i, v] of fv[k]!.entries()) footerCells[i]!.push(fmt(v));
      }
    }
    for (const _ of cols) titles.push(fieldTitle(field, unit));
  }
  footers.forEach((u, i) => {
    if (footerCells[i]!.length > 0) footerCells[i]![0] = unitCount(Number(u.num_units ?? 0));
  });
  return { titles, columns, units: unitCells, footers: footerCells };
}

/** Numeric job ids in numeric order (1, 3, 10 — not 1, 10, 3), others after them in text order [DIFF D-CLI-22]. */
export function sortByJobId(units: readonly ApiRow[]): ApiRow[] {
  const id = (u: ApiRow) => text(u.uuid);
  const numeric = (s: string) => /^\d+$/.test(s);
  return [...units].sort((a, b) => {
    const x = id(a);
    const y = id(b);
    if (numeric(x) && numeric(y)) {
      const d = BigInt(x) - BigInt(y);
      return d < 0n ? -1 : d > 0n ? 1 : 0;
    }
    if (numeric(x) !== numeric(y)) return numeric(x) ? -1 : 1;
    return x < y ? -1 : x > y ? 1 : 0;
  });
}
