// Renderers of a cacct table: the original's box table (go-pretty, see prettytable.ts), CSV, Markdown, HTML.

import { type PrettyRow, renderPrettyTable } from './prettytable.js';
import type { Table } from './report.js';

const SUMMARY = 'Summary';

/**
 * The box table as the original builds it: a title row (multi-key titles merged), a sub-header row, the
 * unit rows, a separator, a merged `Summary` row, a separator, then the totals as footer rows.
 */
export function renderBox(t: Table): string {
  const n = t.columns.length;
  const headers: PrettyRow[] = [
    { cells: t.titles, autoMerge: true },
    { cells: t.columns.map((c) => c.subHeader) },
  ];
  const rows: PrettyRow[] = [
    ...t.units.map((cells) => ({ cells })),
    { cells: [SUMMARY, ...new Array<string>(n - 1).fill('')], autoMerge: true },
  ];
  // AppendSeparator after the unit rows (a no-op without units) and after the Summary row
  const separatorsAfter = new Set([...(t.units.length > 0 ? [t.units.length - 1] : []), t.units.length]);
  const columnConfigs = t.columns.map((c, i) => ({
    name: t.titles[i]!,
    widthMin: c.field.widthMin,
    widthMax: c.field.widthMax,
  }));
  return renderPrettyTable({
    headers,
    rows,
    footers: t.footers.map((cells) => ({ cells })),
    separatorsAfter,
    columnConfigs,
  });
}

/** Header of one column for single-header-row formats: `Title` or `Title:key` for multi-key maps. */
function flatHeaders(t: Table): string[] {
  return t.columns.map((c, i) => (c.subHeader === '' ? t.titles[i]! : `${t.titles[i]}:${c.subHeader}`));
}

function csvCell(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

/** CSV, the stable interface for scripts: column order = format order, metric keys sorted, all columns kept. */
export function renderCsv(t: Table): string {
  const lines = [flatHeaders(t), ...t.units, [SUMMARY, ...t.columns.slice(1).map(() => '')], ...t.footers];
  return `${lines.map((r) => r.map(csvCell).join(',')).join('\n')}\n`;
}

/** Drops the columns that are empty in every unit row, as the box table does. */
export function dropEmptyColumns(t: Table): Table {
  const keep = t.columns.map((_, ci) => ci === 0 || t.units.some((r) => r[ci] !== ''));
  const pick = <T>(row: T[]) => row.filter((_, i) => keep[i]);
  return {
    titles: pick(t.titles),
    columns: pick(t.columns),
    units: t.units.map(pick),
    footers: t.footers.map(pick),
  };
}

const upper = (s: string) => s.toUpperCase();

export function renderMarkdown(t: Table): string {
  const esc = (v: string) => v.replaceAll('|', '\\|');
  const row = (r: string[]) => `| ${r.map(esc).join(' | ')} |`;
  const lines = [
    row(flatHeaders(t).map(upper)),
    `| ${t.columns.map(() => '---').join(' | ')} |`,
    ...t.units.map(row),
    row([`**${SUMMARY}**`, ...t.columns.slice(1).map(() => '')]),
    ...t.footers.map(row),
  ];
  return `${lines.join('\n')}\n`;
}

/** Consecutive columns of one field: the title cell spans them. */
function titleGroups(t: Table): { title: string; span: number; subHeaders: boolean }[] {
  const groups: { title: string; span: number; subHeaders: boolean }[] = [];
  t.columns.forEach((c, i) => {
    const last = groups.at(-1);
    if (last && i > 0 && t.columns[i - 1]!.field === c.field) last.span++;
    else groups.push({ title: t.titles[i]!, span: 1, subHeaders: c.subHeader !== '' });
  });
  return groups;
}

export function renderHtml(t: Table): string {
  const esc = (v: string) =>
    v.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
  const tr = (cells: string[], tag: 'td' | 'th') =>
    `    <tr>${cells.map((c) => `<${tag}>${esc(c)}</${tag}>`).join('')}</tr>`;
  const groups = titleGroups(t);
  const anySubHeader = groups.some((g) => g.subHeaders);
  const lines = ['<table class="cacct">', '  <thead>'];
  lines.push(
    `    <tr>${groups
      .map((g) => {
        const rowspan = anySubHeader && !g.subHeaders ? ' rowspan="2"' : '';
        return `<th${g.span > 1 ? ` colspan="${g.span}"` : ''}${rowspan}>${esc(upper(g.title))}</th>`;
      })
      .join('')}</tr>`,
  );
  if (anySubHeader) {
    lines.push(
      tr(
        t.columns.filter((c) => c.subHeader !== '').map((c) => upper(c.subHeader)),
        'th',
      ),
    );
  }
  lines.push('  </thead>', '  <tbody>', ...t.units.map((r) => tr(r, 'td')), '  </tbody>');
  lines.push(
    '  <tfoot>',
    `    <tr><td colspan="${t.columns.length}">${SUMMARY}</td></tr>`,
    ...t.footers.map((r) => tr(r, 'td')),
    '  </tfoot>',
    '</table>',
  );
  return `${lines.join('\n')}\n`;
}
