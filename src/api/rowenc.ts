// SQL rows straight to the wire JSON (issue 15): byte for byte what decoding each row into an object
// (JSON text columns parsed, a row that cannot be decoded skipped and counted) and then encoding it with
// jsonenc.ts produces, without building the objects. The common shapes take fast paths that produce the
// same text: strings needing no escape, integers, and metric maps of plain keys in order with numbers,
// rewritten in place; anything else goes through jsonenc's general rules. Keeping a user's 10k units from
// being decoded, re-sorted and re-encoded is what brings `/units` close to reading them and calling
// JSON.stringify (bench/api-routes.ts).

import type { Database, SQLInputValue, SQLOutputValue, Statement } from '../common/sqlite.js';
import { encodeField, escapeString, type FieldSpec, formatMetricValue } from './jsonenc.js';

/** Characters JSON.stringify or Go's HTML-safe encoding would escape (any surrogate, to be safe). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f<>&\u2028\u2029\ud800-\udfff]/;

const str = (s: string) => (NEEDS_ESCAPE.test(s) ? escapeString(s) : `"${s}"`);

/** A key character that needs no escape: printable ASCII but `"`, `\`, `<`, `>`, `&`. */
const plainKeyChar = (c: number) =>
  c >= 0x20 && c < 0x7f && c !== 34 && c !== 92 && c !== 60 && c !== 62 && c !== 38;
const digit = (c: number) => c >= 48 && c <= 57;

/** text[a0, a1) compared with text[b0, b1) in UTF-16 order (as `<` on strings): <0, 0 or >0. */
function compareKeys(text: string, a0: number, a1: number, b0: number, b1: number): number {
  const n = Math.min(a1 - a0, b1 - b0);
  for (let k = 0; k < n; k++) {
    const d = text.charCodeAt(a0 + k) - text.charCodeAt(b0 + k);
    if (d !== 0) return d;
  }
  return a1 - a0 - (b1 - b0);
}

// Scratch space of metricMapText: key bounds and rendered value of each entry (no allocation per map).
const keyStart: number[] = [];
const keyEnd: number[] = [];
const valueText: string[] = [];
const order: number[] = [];

/**
 * The wire text of a stored metric map, '' for an empty one, or undefined when it is not a flat object of
 * distinct plain keys with JSON numbers (`__proto__`, whitespace, strings, nesting…): the caller then
 * decodes it. Keys are sorted; integers of up to 15 digits are kept as written (the digits
 * `formatMetricValue` gives their value), other numbers are rendered by `formatMetricValue`. A map
 * already in that form is returned as is.
 */
export function metricMapText(text: string): string | undefined {
  const n = text.length;
  if (text.charCodeAt(0) !== 123) return undefined;
  if (n === 2 && text.charCodeAt(1) === 125) return '';
  let entries = 0;
  let sorted = true;
  let rewritten = false;
  let i = 1;
  for (;;) {
    if (text.charCodeAt(i) !== 34) return undefined;
    const k0 = ++i;
    while (plainKeyChar(text.charCodeAt(i))) i++;
    const k1 = i;
    if (text.charCodeAt(i) !== 34 || text.charCodeAt(i + 1) !== 58) return undefined;
    // JSON.parse makes `__proto__` an own key; assigning it to the re-encoded map does not.
    if (k1 - k0 === 9 && text.startsWith('__proto__', k0)) return undefined;
    if (entries > 0 && compareKeys(text, keyStart[entries - 1]!, keyEnd[entries - 1]!, k0, k1) >= 0)
      sorted = false;
    i += 2;
    const n0 = i;
    if (text.charCodeAt(i) === 45) i++;
    const d0 = i;
    if (text.charCodeAt(i) === 48) i++;
    else if (digit(text.charCodeAt(i))) while (digit(text.charCodeAt(i))) i++;
    else return undefined;
    const digits = i - d0;
    let integer = true;
    if (text.charCodeAt(i) === 46) {
      integer = false;
      const f0 = ++i;
      while (digit(text.charCodeAt(i))) i++;
      if (i === f0) return undefined;
    }
    const e = text.charCodeAt(i);
    if (e === 101 || e === 69) {
      integer = false;
      i++;
      const sign = text.charCodeAt(i);
      if (sign === 43 || sign === 45) i++;
      const x0 = i;
      while (digit(text.charCodeAt(i))) i++;
      if (i === x0) return undefined;
    }
    let value = text.slice(n0, i);
    // `-0` is `0`, longer integers may not be doubles, the rest gets its 8 decimals.
    if (!integer || digits > 15 || (d0 > n0 && digits === 1 && text.charCodeAt(d0) === 48)) {
      value = formatMetricValue(Number(value));
      rewritten = true;
    }
    keyStart[entries] = k0;
    keyEnd[entries] = k1;
    valueText[entries] = value;
    entries++;
    const c = text.charCodeAt(i);
    if (c === 44) {
      i++;
      continue;
    }
    if (c === 125 && i === n - 1) break;
    return undefined;
  }
  if (sorted && !rewritten) return text;
  for (let k = 0; k < entries; k++) order[k] = k;
  if (!sorted) {
    // Insertion sort of a handful of keys; two equal keys (JSON.parse keeps the last) go the slow way.
    for (let a = 1; a < entries; a++) {
      const x = order[a]!;
      let b = a - 1;
      for (; b >= 0; b--) {
        const d = compareKeys(text, keyStart[order[b]!]!, keyEnd[order[b]!]!, keyStart[x]!, keyEnd[x]!);
        if (d === 0) return undefined;
        if (d < 0) break;
        order[b + 1] = order[b]!;
      }
      order[b + 1] = x;
    }
  }
  let out = '{';
  for (let k = 0; k < entries; k++) {
    const x = order[k]!;
    out += `${k > 0 ? ',' : ''}${text.slice(keyStart[x]! - 1, keyEnd[x]! + 2)}${valueText[x]}`;
  }
  return `${out}}`;
}

/** The value of a JSON text column once decoded: '' is null (as the decoded row had it). */
const decode = (text: string): unknown => (text === '' ? null : JSON.parse(text));

interface Slot {
  field: FieldSpec;
  /** `,"name":` */
  key: string;
  /** Column of the row, -1 when not selected. */
  column: number;
  json: boolean;
  convert: boolean;
}

export interface EncodedRows {
  /** `[…]`: the encoded rows. */
  json: string;
  rows: number;
  /** Rows skipped because a JSON column could not be decoded (or converted). */
  failed: number;
}

export interface RowEncoderOptions {
  /** Text columns holding JSON, decoded before encoding. */
  jsonColumns: ReadonlySet<string>;
  /** String columns rewritten before encoding (e.g. time-zone conversion); a throw skips the row. */
  convert?: { columns: ReadonlySet<string>; fn: (value: string) => string };
}

/** Encodes rows of `columns` (arrays, as `setReturnArrays(true)` returns them) as `struct` values. */
export class RowEncoder {
  private readonly slots: Slot[];

  constructor(
    struct: readonly FieldSpec[],
    columns: readonly string[],
    private readonly opts: RowEncoderOptions,
  ) {
    this.slots = struct.map((field) => ({
      field,
      key: `,${escapeString(field.name)}:`,
      column: columns.indexOf(field.name),
      json: opts.jsonColumns.has(field.name),
      convert: opts.convert?.columns.has(field.name) ?? false,
    }));
  }

  encode(rows: Iterable<readonly SQLOutputValue[]>): EncodedRows {
    const out: string[] = [];
    let failed = 0;
    // Generic maps (allocation, tags) repeat across a user's units: each distinct text encoded once.
    const maps = new Map<string, string | undefined>();
    for (const row of rows) {
      let s = '';
      try {
        for (const slot of this.slots) {
          const part = this.value(slot, slot.column < 0 ? undefined : row[slot.column], maps);
          if (part !== undefined) s += slot.key + part;
        }
      } catch {
        failed++;
        continue;
      }
      out.push(s === '' ? '{}' : `{${s.slice(1)}}`);
    }
    return { json: `[${out.join(',')}]`, rows: out.length, failed };
  }

  /** The JSON of one field, undefined when omitted. */
  private value(slot: Slot, v: SQLOutputValue | undefined, maps: Map<string, string | undefined>) {
    const f = slot.field;
    if (typeof v === 'string') {
      if (slot.json) {
        if (f.kind === 'metric') {
          const text = metricMapText(v);
          if (text !== undefined) return text === '' && f.omitempty ? undefined : text || '{}';
        } else if (f.kind === 'map') {
          const key = `${f.omitempty ? 1 : 0}${v}`;
          if (maps.has(key)) return maps.get(key);
          const part = encodeField(f, decode(v));
          maps.set(key, part);
          return part;
        }
        return encodeField(f, decode(v));
      }
      if (slot.convert) v = this.opts.convert!.fn(v);
      if (f.kind === 'string') return v === '' && f.omitempty ? undefined : str(v);
    } else if (typeof v === 'number' && f.kind === 'int') {
      return v === 0 && f.omitempty ? undefined : Number.isFinite(v) ? String(v) : '0';
    }
    return encodeField(f, v);
  }
}

/** Runs `sql` and encodes its rows, read as arrays one at a time so that none outlives its encoding. */
export function encodeQuery(
  db: Database,
  sql: string,
  params: readonly SQLInputValue[],
  struct: readonly FieldSpec[],
  opts: RowEncoderOptions,
): EncodedRows {
  const stmt = prepared(db, sql);
  const columns = stmt.columns().map((c) => c.name);
  return new RowEncoder(struct, columns, opts).encode(stmt.iterate(...params) as Iterable<SQLOutputValue[]>);
}

const STATEMENTS_PER_CONNECTION = 256;
const statements = new WeakMap<Database, Map<string, Statement>>();

/**
 * The connection's prepared statement of `sql`, returning rows as arrays: preparing the 31-column unit
 * query again cost 0.16 ms of the ~2 ms of a 1-day `/units` request. Run to completion by each caller
 * (the handlers are synchronous), so one statement is never iterated twice at once.
 */
function prepared(db: Database, sql: string): Statement {
  let cache = statements.get(db);
  if (!cache) {
    cache = new Map();
    statements.set(db, cache);
  }
  let stmt = cache.get(sql);
  if (!stmt) {
    // The SQL of a route varies with its parameter counts: the cache starts over rather than grow.
    if (cache.size >= STATEMENTS_PER_CONNECTION) cache.clear();
    stmt = db.prepare(sql);
    stmt.setReturnArrays(true);
    cache.set(sql, stmt);
  }
  return stmt;
}
