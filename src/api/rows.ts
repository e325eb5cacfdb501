// Decoding of DB rows into wire objects: JSON text columns are parsed; a row whose JSON cannot be
// decoded is skipped and reported in the envelope's warnings (`failed to scan <N> rows`, spec §6.1).

export interface Decoded {
  data: Record<string, unknown>[];
  warnings: string[];
}

export function decodeRows(
  rows: readonly Record<string, unknown>[],
  jsonColumns: ReadonlySet<string>,
  transform?: (row: Record<string, unknown>) => void,
): Decoded {
  const data: Record<string, unknown>[] = [];
  let failed = 0;
  for (const row of rows) {
    try {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(row)) {
        out[k] = jsonColumns.has(k) && typeof v === 'string' ? (v === '' ? null : JSON.parse(v)) : v;
      }
      transform?.(out);
      data.push(out);
    } catch {
      failed++;
    }
  }
  return { data, warnings: failed > 0 ? [`failed to scan ${failed} rows`] : [] };
}
