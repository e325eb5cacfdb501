// The box table of the original cacct, which prints with go-pretty's table writer (v6): this is the subset of
// go-pretty's rendering that cacct uses — light box, upper-case headers, per-column min/max widths with hard
// wrapping (text.WrapText), horizontally auto-merged rows, suppressed empty columns and manual separators —
// reproduced rule by rule so that the same rows print the same characters.

export interface PrettyRow {
  cells: string[];
  /** go-pretty's RowConfig.AutoMerge: adjacent equal cells become one centred cell. */
  autoMerge?: boolean;
}

/** go-pretty's ColumnConfig matched by Name: it applies to the first header cell equal to `name` only. */
export interface PrettyColumnConfig {
  name: string;
  widthMin: number;
  widthMax: number;
}

export interface PrettyTable {
  headers: PrettyRow[];
  rows: PrettyRow[];
  footers: PrettyRow[];
  /** Indices of data rows after which AppendSeparator was called. */
  separatorsAfter: ReadonlySet<number>;
  columnConfigs: readonly PrettyColumnConfig[];
}

const BOX = {
  h: '─',
  v: '│',
  top: ['┌', '┬', '┐'],
  mid: ['├', '┼', '┤'],
  bottom: ['└', '┴', '┘'],
} as const;

const width = (s: string) => [...s].length;

/** go-pretty text.WrapText: hard wrap at `len` runes per line, words joined by one space, line breaks kept. */
export function wrapText(str: string, len: number): string {
  if (len <= 0) return '';
  const s = str.replaceAll('\t', '    ');
  if (width(s) <= len) return s;
  return s
    .split('\n')
    .map((line) => {
      let out = '';
      let lineLen = 0;
      const words = line.split(/\s+/).filter((w) => w !== '');
      words.forEach((word, i) => {
        if (lineLen > 0) {
          out += ' ';
          lineLen++;
        }
        if (lineLen + width(word) <= len) {
          out += word;
          lineLen += width(word);
        } else {
          for (const ch of word) {
            if (lineLen === len) {
              out += '\n';
              lineLen = 0;
            }
            out += ch;
            lineLen++;
          }
        }
        if (lineLen === len && i < words.length - 1) {
          out += '\n';
          lineLen = 0;
        }
      });
      return out;
    })
    .join('\n');
}

function alignLeft(s: string, w: number): string {
  const t = s.replace(/ +$/, '');
  return t + ' '.repeat(Math.max(0, w - width(t)));
}

/** go-pretty AlignCenter: the odd space goes to the left. */
function alignCenter(s: string, w: number): string {
  const t = s.replace(/^ +| +$/g, '');
  const right = ' '.repeat(Math.max(0, Math.floor((w - width(t)) / 2)));
  const body = t + right;
  return ' '.repeat(Math.max(0, w - width(body))) + body;
}

/** Start index → end index of each run of equal adjacent cells (go-pretty getMergedColumnIndices). */
function mergedRuns(cells: readonly string[], numColumns: number): Map<number, number> {
  const runs = new Map<number, number>();
  for (let start = 0; start < numColumns - 1 && start < cells.length; ) {
    let end = start;
    while (end + 1 < cells.length && cells[end + 1] === cells[start]) end++;
    if (end > start) runs.set(start, end);
    start = end + 1;
  }
  return runs;
}

const mergesWithPrevious = (row: PrettyRow | undefined, col: number) =>
  row?.autoMerge === true && col >= 1 && col < row.cells.length && row.cells[col - 1] === row.cells[col];

interface Layout {
  widths: number[];
  widthMax: number[];
}

/** Column widths: longest line of each cell up to the column's max, min widths, merged cells rebalanced. */
function layout(t: PrettyTable, numColumns: number, configAt: Map<number, PrettyColumnConfig>): Layout {
  const widthMax = Array.from({ length: numColumns }, (_, c) => configAt.get(c)?.widthMax ?? 0);
  const widths = new Array<number>(numColumns).fill(0);
  const merged = new Map<number, Map<number, number>>(); // end → start → length
  for (const row of [...t.headers, ...t.rows, ...t.footers]) {
    const runs = row.autoMerge ? mergedRuns(row.cells, numColumns) : new Map<number, number>();
    for (let c = 0; c < row.cells.length; c++) {
      let len = Math.max(0, ...row.cells[c]!.split('\n').map(width));
      if (widthMax[c]! > 0 && widthMax[c]! < len) len = widthMax[c]!;
      const end = runs.get(c);
      if (end !== undefined) {
        const starts = merged.get(end) ?? new Map<number, number>();
        merged.set(end, starts);
        starts.set(c, Math.max(starts.get(c) ?? 0, len));
        c = end;
      } else if (len > widths[c]!) widths[c] = len;
    }
  }
  for (const [c, cfg] of configAt)
    if (cfg.widthMin > 0 && widths[c]! < cfg.widthMin) widths[c] = cfg.widthMin;
  // go-pretty reBalanceMaxMergedColumnLengths: grow the narrower columns under a merged cell
  for (const end of [...merged.keys()].sort((a, b) => a - b)) {
    const starts = merged.get(end)!;
    for (const start of [...starts.keys()].sort((a, b) => b - a)) {
      const cols = new Set<number>();
      for (let c = start; c <= end; c++) cols.add(c);
      let remaining = starts.get(start)! - (cols.size - 1) * width(BOX.mid[1]);
      for (;;) {
        if (remaining <= 0) {
          cols.clear();
          break;
        }
        const share = Math.floor(remaining / cols.size);
        const wide = [...cols].filter((c) => widths[c]! >= share);
        for (const c of wide) {
          remaining -= widths[c]!;
          cols.delete(c);
        }
        if (wide.length === 0) break;
      }
      if (cols.size === 0) continue;
      const balance = [...cols].sort((a, b) => a - b);
      for (const c of balance) remaining -= widths[c]!;
      let left = balance.length;
      for (const c of balance) {
        const add = Math.floor(remaining / left);
        widths[c] = widths[c]! + add;
        remaining -= add;
        left--;
      }
    }
  }
  return { widths, widthMax };
}

/** Removes the columns empty in every data row (go-pretty SuppressEmptyColumns). */
function suppressEmptyColumns(t: PrettyTable): {
  table: PrettyTable;
  configAt: Map<number, PrettyColumnConfig>;
} {
  const all = [...t.headers, ...t.rows, ...t.footers];
  const numColumns = Math.max(0, ...all.map((r) => r.cells.length));
  // configs are matched by name on the rows before hiding, first match only
  const configByOriginal = new Map<number, PrettyColumnConfig>();
  for (const cfg of t.columnConfigs) {
    for (const h of t.headers) {
      const i = h.cells.indexOf(cfg.name);
      if (i >= 0) {
        configByOriginal.set(i, cfg);
        break;
      }
    }
  }
  const keep = Array.from({ length: numColumns }, (_, c) => t.rows.some((r) => (r.cells[c] ?? '') !== ''));
  const pick = (r: PrettyRow): PrettyRow => ({ ...r, cells: r.cells.filter((_, c) => keep[c]) });
  const configAt = new Map<number, PrettyColumnConfig>();
  let n = 0;
  for (let c = 0; c < numColumns; c++) {
    if (!keep[c]) continue;
    const cfg = configByOriginal.get(c);
    if (cfg) configAt.set(n, cfg);
    n++;
  }
  return {
    table: { ...t, headers: t.headers.map(pick), rows: t.rows.map(pick), footers: t.footers.map(pick) },
    configAt,
  };
}

export function renderPrettyTable(input: PrettyTable): string {
  const { table: t, configAt } = suppressEmptyColumns(input);
  const numColumns = Math.max(0, ...[...t.headers, ...t.rows, ...t.footers].map((r) => r.cells.length));
  if (numColumns === 0) return '';
  const { widths, widthMax } = layout(t, numColumns, configAt);
  const lines: string[] = [];

  /** A horizontal rule between `above` and `below`: junctions disappear where a merged cell continues. */
  const separator = (kind: 'top' | 'mid' | 'bottom', above?: PrettyRow, below?: PrettyRow) => {
    const [left, cross, right] = BOX[kind];
    let line = left;
    for (let c = 0; c < numColumns; c++) {
      if (c > 0) {
        const up = mergesWithPrevious(above, c);
        const down = mergesWithPrevious(below, c);
        if (kind === 'mid') line += up && down ? BOX.h : up ? BOX.top[1] : down ? BOX.bottom[1] : cross;
        else line += (kind === 'top' ? down : up) ? BOX.h : cross;
      }
      line += BOX.h.repeat(widths[c]! + 2);
    }
    lines.push(line + right);
  };

  const renderRow = (row: PrettyRow, header: boolean) => {
    const wrapped = Array.from({ length: numColumns }, (_, c) =>
      wrapText(row.cells[c] ?? '', widthMax[c]! > 0 ? widthMax[c]! : widths[c]!).split('\n'),
    );
    const height = Math.max(...wrapped.map((l) => l.length));
    for (let k = 0; k < height; k++) {
      let line = BOX.v;
      for (let c = 0; c < numColumns; ) {
        if (c > 0) line += BOX.v;
        let w = widths[c]!;
        let end = c;
        if (row.autoMerge) {
          while (end + 1 < row.cells.length && row.cells[end + 1] === row.cells[c]) {
            end++;
            w += widths[end]! + 3; // the merged column's padding and separator become text space
          }
        }
        const text = wrapped[c]![k] ?? '';
        const shown = header ? text.toUpperCase() : text;
        line += ` ${end > c ? alignCenter(shown, w) : alignLeft(shown, w)} `;
        c = end + 1;
      }
      lines.push((line + BOX.v).trimEnd());
    }
  };

  // go-pretty applies the data rows' separator indices to header and footer rows as well
  const renderRows = (rows: PrettyRow[], header: boolean) => {
    rows.forEach((row, i) => {
      renderRow(row, header);
      if (input.separatorsAfter.has(i) && i < rows.length - 1) separator('mid', row, rows[i + 1]);
    });
  };

  separator('top', undefined, t.headers[0] ?? t.rows[0]);
  if (t.headers.length > 0) {
    renderRows(t.headers, true);
    separator('mid', t.headers.at(-1), t.rows[0]);
  }
  renderRows(t.rows, false);
  if (t.footers.length > 0) {
    separator('mid', t.rows.at(-1), t.footers[0]);
    renderRows(t.footers, false);
  }
  separator('bottom', t.footers.at(-1) ?? t.rows.at(-1));
  return `${lines.join('\n')}\n`;
}
