// Renderers of a cacct table: light box table fitted to the terminal width (cli-table3), CSV, Markdown, HTML.

import Table3 from 'cli-table3';
import type { Table } from './report.js';

const SUMMARY = 'Summary';

/** Header text: names upper-cased, the unit in parentheses kept as is (`HOST ENERGY(kWh)`). */
function headerText(title: string): string {
  const i = title.indexOf('(');
  return i < 0 ? title.toUpperCase() : title.slice(0, i).toUpperCase() + title.slice(i);
}

const longestWord = (s: string) => Math.max(0, ...s.split(/\s+/).map((w) => w.length));

/**
 * Content widths (without padding) so that the table fits `maxWidth` characters when possible: values keep
 * their full width and headers wrap at word boundaries first; then long header words are abbreviated;
 * values are hard-wrapped only as a last resort. Cells never overflow their column, so rows stay aligned.
 */
export function fitWidths(t: Table, maxWidth: number): number[] {
  const n = t.columns.length;
  const rows = [...t.units, ...t.footers];
  const valueW = t.columns.map((c, ci) =>
    Math.min(c.field.maxWidth ?? Number.POSITIVE_INFINITY, Math.max(0, ...rows.map((r) => r[ci]!.length))),
  );
  const subW = t.columns.map((c) => (c.subKey ?? '').length);
  const nat = t.columns.map((_, ci) => Math.max(valueW[ci]!, subW[ci]!, 1));
  const min = [...nat];
  let ci = 0;
  for (const g of t.groups) {
    const title = headerText(g.title);
    const idx = Array.from({ length: g.columns }, (_, k) => ci + k);
    const grow = (w: number[], need: number) => {
      // spread the missing width over the group's columns (a spanning header also covers the borders)
      let missing = need - (idx.reduce((s, i) => s + w[i]!, 0) + 3 * (g.columns - 1));
      for (let k = 0; missing > 0; k = (k + 1) % idx.length, missing--) w[idx[k]!]!++;
    };
    grow(nat, title.length);
    grow(min, longestWord(title));
    ci += g.columns;
  }
  const avail = maxWidth - (n + 1) - 2 * n; // borders and one space of padding on each side
  const widths = [...nat];
  const shrinkTo = (floor: number[]) => {
    let excess = widths.reduce((s, w) => s + w, 0) - avail;
    while (excess > 0) {
      let best = -1;
      for (let i = 0; i < n; i++) {
        if (widths[i]! > floor[i]! && (best < 0 || widths[i]! - floor[i]! > widths[best]! - floor[best]!))
          best = i;
      }
      if (best < 0) return;
      widths[best]!--;
      excess--;
    }
  };
  shrinkTo(min);
  shrinkTo(valueW.map((v, i) => Math.max(v, subW[i]!, 1)));
  shrinkTo(widths.map(() => 4));
  return widths;
}

/** Wraps at spaces; words longer than the width are split, so no value is ever cut off. */
export function wrapText(text: string, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    let rest = word;
    if (line !== '' && line.length + 1 + rest.length <= width) {
      line += ` ${rest}`;
      continue;
    }
    if (line !== '') lines.push(line);
    while (rest.length > width) {
      lines.push(rest.slice(0, width));
      rest = rest.slice(width);
    }
    line = rest;
  }
  if (line !== '') lines.push(line);
  return lines.join('\n');
}

/** A field without metric keys has no second-row header cell, so its title spans both header rows. */
function spansBothHeaderRows(t: Table, g: Table['groups'][number]): boolean {
  return t.hasSubHeader && t.columns.find((c) => c.field === g.field)?.subKey === undefined;
}

// Row separators: only under the header, around the `Summary` row; none between unit or total rows.
const NO_SEPARATOR = { 'left-mid': '', 'mid-mid': '', mid: '', 'right-mid': '', 'top-mid': '' };

export function renderBox(t: Table, maxWidth = Number.POSITIVE_INFINITY): string {
  const widths = fitWidths(t, maxWidth);
  const n = t.columns.length;
  const table = new Table3({
    style: { head: [], border: [], 'padding-left': 1, 'padding-right': 1 },
    colWidths: widths.map((w) => w + 2),
    colAligns: t.columns.map((c) => (c.field.kind === 'text' ? 'left' : 'right')),
    wordWrap: true,
  });
  const header: Table3.Cell[] = t.groups.map((g) => ({
    content: headerText(g.title),
    colSpan: g.columns,
    rowSpan: spansBothHeaderRows(t, g) ? 2 : 1,
    hAlign: 'center',
  }));
  table.push(header);
  if (t.hasSubHeader) {
    table.push(
      t.columns.filter((c) => c.subKey !== undefined).map((c) => ({ content: c.subKey!, hAlign: 'center' })),
    );
  }
  const body = (row: string[], separatorAbove: boolean): Table3.Cell[] =>
    row.map((v, ci) => ({
      content: wrapText(v, widths[ci]!),
      ...(separatorAbove ? {} : { chars: NO_SEPARATOR }),
    }));
  table.push(...t.units.map((r, i) => body(r, i === 0)));
  if (t.footers.length > 0) {
    table.push([{ content: SUMMARY, colSpan: n }], ...t.footers.map((r, i) => body(r, i === 0)));
  }
  return `${table.toString()}\n`;
}

/** Flat header of one column for single-header-row formats: `Title` or `Title:key`. */
function flatHeaders(t: Table): string[] {
  return t.columns.map((c) => (c.subKey === undefined ? c.field.title : `${c.field.title}:${c.subKey}`));
}

function csvCell(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

/** CSV, the stable interface for scripts: column order = format order, metric keys sorted, all columns kept. */
export function renderCsv(t: Table): string {
  const lines = [flatHeaders(t), ...t.units];
  if (t.footers.length > 0) lines.push([SUMMARY, ...t.columns.slice(1).map(() => '')], ...t.footers);
  return lines.map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}

function groupHeaders(t: Table): string[] {
  let ci = 0;
  const out: string[] = [];
  for (const g of t.groups) {
    for (let k = 0; k < g.columns; k++, ci++) {
      const c = t.columns[ci]!;
      out.push(c.subKey === undefined ? headerText(g.title) : `${headerText(g.title)} ${c.subKey}`);
    }
  }
  return out;
}

export function renderMarkdown(t: Table): string {
  const esc = (v: string) => v.replaceAll('|', '\\|');
  const row = (r: string[]) => `| ${r.map(esc).join(' | ')} |`;
  const lines = [
    row(groupHeaders(t)),
    `| ${t.columns.map((c) => (c.field.kind === 'text' ? '---' : '---:')).join(' | ')} |`,
    ...t.units.map(row),
  ];
  if (t.footers.length > 0) {
    lines.push(row([`**${SUMMARY}**`, ...t.columns.slice(1).map(() => '')]), ...t.footers.map(row));
  }
  return lines.join('\n') + '\n';
}

export function renderHtml(t: Table): string {
  const esc = (v: string) =>
    v.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
  const tr = (cells: string[], tag: 'td' | 'th') =>
    `    <tr>${cells.map((c, i) => `<${tag}${tag === 'td' && t.columns[i]?.field.kind !== 'text' ? ' align="right"' : ''}>${esc(c)}</${tag}>`).join('')}</tr>`;
  const lines = ['<table class="cacct">', '  <thead>'];
  lines.push(
    `    <tr>${t.groups
      .map((g) => {
        const span = spansBothHeaderRows(t, g);
        return `<th${g.columns > 1 ? ` colspan="${g.columns}"` : ''}${span ? ' rowspan="2"' : ''}>${esc(headerText(g.title))}</th>`;
      })
      .join('')}</tr>`,
  );
  if (t.hasSubHeader)
    lines.push(
      tr(
        t.columns.filter((c) => c.subKey !== undefined).map((c) => c.subKey!),
        'th',
      ),
    );
  lines.push('  </thead>', '  <tbody>', ...t.units.map((r) => tr(r, 'td')), '  </tbody>');
  if (t.footers.length > 0) {
    lines.push(
      '  <tfoot>',
      `    <tr><td colspan="${t.columns.length}">${SUMMARY}</td></tr>`,
      ...t.footers.map((r) => tr(r, 'td')),
      '  </tfoot>',
    );
  }
  lines.push('</table>');
  return lines.join('\n') + '\n';
}
