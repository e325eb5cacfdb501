// The rows cacct shows (cli.md §1.7): one per unit, then per-user/project totals from the usage endpoint.
// Cells are produced in two styles: `raw` (the stable CSV interface: `%.2f` averages, `%f` energies and
// emissions in kWh and grams) and `human` (terminal: precision chosen per column, emissions in g or kg).

import type { ApiRow } from './api.js';
import type { Field } from './fields.js';
import { formatElapsed } from './window.js';

export interface Column {
  field: Field;
  /** Key of the metric map shown in this sub-column (undefined for text fields or maps without keys). */
  subKey?: string;
}

export type CellStyle = 'raw' | 'human';

export interface Table {
  /** Header text of each field group, in column order (one entry per field). */
  groups: { title: string; field: Field; columns: number }[];
  columns: Column[];
  /** Whether any column is a metric map (then a second header row names the keys). */
  hasSubHeader: boolean;
  units: string[][];
  footers: string[][];
}

function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function metric(row: ApiRow, apiField: string, key: string | undefined): number | undefined {
  const m = row[apiField];
  if (key === undefined || m === null || typeof m !== 'object') return undefined;
  const v = (m as Record<string, unknown>)[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Builds the columns: text fields as one column, metric maps expanded into their sorted keys. */
export function buildColumns(fields: readonly Field[], rows: readonly ApiRow[]): Column[] {
  const columns: Column[] = [];
  for (const field of fields) {
    if (field.kind === 'text') {
      columns.push({ field });
      continue;
    }
    const keys = new Set<string>();
    for (const r of rows) {
      const m = r[field.apiField];
      if (m && typeof m === 'object') for (const k of Object.keys(m)) keys.add(k);
    }
    if (keys.size === 0) columns.push({ field });
    for (const k of [...keys].sort()) columns.push({ field, subKey: k });
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
      return wall === undefined ? '' : formatElapsed(wall);
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

function rawFormat(kind: Field['kind'], v: number): string {
  return kind === 'average' ? v.toFixed(2) : v.toFixed(6);
}

/** Title of a field group; human emissions titles name the unit actually shown. */
function groupTitle(field: Field, unit: string | undefined): string {
  return unit ? field.title.replace(/\(gms\)$/, `(${unit})`) : field.title;
}

export function buildTable(
  fields: readonly Field[],
  units: readonly ApiRow[],
  footers: readonly ApiRow[],
  style: CellStyle,
): Table {
  const columns = buildColumns(fields, [...units, ...footers]);
  const unitCells: string[][] = units.map(() => []);
  const footerCells: string[][] = footers.map(() => []);
  const groups: Table['groups'] = [];
  for (const field of fields) {
    const cols = columns.filter((c) => c.field === field);
    let unit: string | undefined;
    if (field.kind === 'text') {
      for (const [i, u] of units.entries()) unitCells[i]!.push(text(u[field.apiField]));
      for (const [i, u] of footers.entries()) footerCells[i]!.push(footerText(field, u));
    } else {
      const uv = cols.map((c) => units.map((u) => metric(u, field.apiField, c.subKey)));
      const fv = cols.map((c) => footers.map((u) => metric(u, field.apiField, c.subKey)));
      // one scale for the whole field so that its title names the unit of every sub-column
      const all = [...uv.flat(), ...fv.flat()].filter((v): v is number => v !== undefined);
      const human = humanFormatter(field.kind, all);
      unit = human.unit;
      const fmt = (v: number | undefined) =>
        v === undefined ? '' : style === 'raw' ? rawFormat(field.kind, v) : human.format(v);
      for (let k = 0; k < cols.length; k++) {
        for (const [i, v] of uv[k]!.entries()) unitCells[i]!.push(fmt(v));
        for (const [i, v] of fv[k]!.entries()) footerCells[i]!.push(fmt(v));
      }
    }
    groups.push({
      field,
      title: groupTitle(field, style === 'human' ? unit : undefined),
      columns: cols.length,
    });
  }
  // The first column of a totals row carries the number of units it sums.
  footers.forEach((u, i) => {
    if (footerCells[i]!.length > 0) footerCells[i]![0] = text(u.num_units ?? 0);
  });
  return {
    groups,
    columns,
    hasSubHeader: columns.some((c) => c.subKey !== undefined),
    units: unitCells,
    footers: footerCells,
  };
}

/** Drops the columns that are empty in every row (default renderers; the CSV keeps all columns). */
export function dropEmptyColumns(t: Table): Table {
  const keep = t.columns.map((_, ci) => [...t.units, ...t.footers].some((r) => r[ci] !== ''));
  const columns = t.columns.filter((_, ci) => keep[ci]);
  const groups: Table['groups'] = [];
  let ci = 0;
  for (const g of t.groups) {
    const n = keep.slice(ci, ci + g.columns).filter(Boolean).length;
    if (n > 0) groups.push({ ...g, columns: n });
    ci += g.columns;
  }
  const pick = (rows: string[][]) => rows.map((r) => r.filter((_, i) => keep[i]));
  return {
    groups,
    columns,
    hasSubHeader: columns.some((c) => c.subKey !== undefined),
    units: pick(t.units),
    footers: pick(t.footers),
  };
}
