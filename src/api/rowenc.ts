// SQL rows straight to the wire JSON (issue 15): byte for byte what decoding each row into an object
// (JSON text columns parsed, a row that cannot be decoded skipped and counted) and then encoding it with
// jsonenc.ts produces, without building the objects. The common shapes take fast paths that produce the
// same text: strings needing no escape, integers, and metric maps of plain keys in order with numbers,
// rewritten in place; anything else goes through jsonenc's general rules. Keeping a user's 10k units from
// being decoded, re-sorted and re-encoded is what brings `/units` close to reading them and calling
// JSON.stringify (bench/api-routes.ts).

import type { SQLInputValue, SQLOutputValue } from '../common/sqlite.js';
import type { SqlReader } from '../common/sqlreader.js';
import { encodeField, envelope, escapeString, type FieldSpec, formatMetricValue } from './jsonenc.js';

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

// Scratch space of metricMapText: key and value bounds of each entry, and its value when rewritten.
const keyStart: number[] = [];
const keyEnd: number[] = [];
const valueStart: number[] = [];
const valueEnd: number[] = [];
const valueText: (string | undefined)[] = [];
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
  // While the keys come in order: the text up to `copied`, numbers rewritten.
  let inPlace = '';
  let copied = 0;
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
    let f0 = -1;
    if (text.charCodeAt(i) === 46) {
      f0 = ++i;
      while (digit(text.charCodeAt(i))) i++;
      if (i === f0) return undefined;
    }
    let exponent = false;
    const e = text.charCodeAt(i);
    if (e === 101 || e === 69) {
      exponent = true;
      i++;
      const sign = text.charCodeAt(i);
      if (sign === 43 || sign === 45) i++;
      const x0 = i;
      while (digit(text.charCodeAt(i))) i++;
      if (i === x0) return undefined;
    }
    let value: string | undefined;
    // `-0` is `0`, longer integers may not be doubles, the rest gets its 8 decimals.
    if (f0 >= 0 || exponent || digits > 15 || (d0 > n0 && digits === 1 && text.charCodeAt(d0) === 48)) {
      value = formatMetricValue(Number(text.slice(n0, i)));
      rewritten = true;
      if (sorted) {
        inPlace += text.slice(copied, n0) + value;
        copied = i;
      }
    }
    keyStart[entries] = k0;
    keyEnd[entries] = k1;
    valueStart[entries] = n0;
    valueEnd[entries] = i;
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
  if (sorted) return rewritten ? inPlace + text.slice(copied) : text;
  for (let k = 0; k < entries; k++) order[k] = k;
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
  let out = '{';
  for (let k = 0; k < entries; k++) {
    const x = order[k]!;
    const key = text.slice(keyStart[x]! - 1, keyEnd[x]! + 2);
    out += `${k > 0 ? ',' : ''}${key}${valueText[x] ?? text.slice(valueStart[x], valueEnd[x])}`;
  }
  return `${out}}`;
}

/** The value of a JSON text column once decoded: '' is null (as the decoded row had it). */
const decode = (text: string): unknown => (text === '' ? null : JSON.parse(text));

/** `,"name":<JSON>` of one field from its column value, undefined when omitempty leaves it out. */
type FieldEncoder = (v: SQLOutputValue | undefined) => string | undefined;

/** The encoder of one field: a fast path for its usual values, jsonenc's rules for the rest. */
function fieldEncoder(
  f: FieldSpec,
  json: boolean,
  convert: ((s: string) => string) | undefined,
): FieldEncoder {
  const key = `,${escapeString(f.name)}:`;
  const omit = f.omitempty;
  const general = (v: SQLOutputValue | undefined) => {
    const part = encodeField(f, typeof v === 'string' && json ? decode(v) : v);
    return part === undefined ? undefined : key + part;
  };
  if (json && f.kind === 'metric') {
    const empty = omit ? undefined : `${key}{}`;
    return (v) => {
      if (v === '{}') return empty;
      const text = typeof v === 'string' ? metricMapText(v) : undefined;
      if (text === undefined) return general(v);
      return text !== '' ? key + text : empty;
    };
  }
  if (json && f.kind === 'map') {
    // Generic maps (allocation, tags) repeat across a user's units: each distinct text encoded once.
    const seen = new Map<string, string | undefined>();
    return (v) => {
      if (typeof v !== 'string') return general(v);
      if (seen.has(v)) return seen.get(v);
      const part = general(v);
      seen.set(v, part);
      return part;
    };
  }
  if (json) return general;
  if (f.kind === 'string') {
    // A user's units mostly share their cluster, manager, project, group, user, state: the last value's
    // JSON is reused when the next row has the same.
    let last: string | undefined;
    let lastPart: string | undefined;
    return (v) => {
      if (typeof v !== 'string') return general(v);
      if (v === last) return lastPart;
      const value = convert ? convert(v) : v;
      lastPart = value === '' && omit ? undefined : key + str(value);
      last = v;
      return lastPart;
    };
  }
  if (f.kind === 'int') {
    return (v) => {
      if (typeof v !== 'number') return general(v);
      return v === 0 && omit ? undefined : key + (Number.isFinite(v) ? String(v) : '0');
    };
  }
  return general;
}

export interface EncodedRows {
  /** The whole response body: the success envelope around the rows, UTF-8. */
  body: Buffer;
  rows: number;
  /** Rows skipped because a JSON column could not be decoded (or converted), reported as a warning. */
  failed: number;
}

const CHUNK_BYTES = 1 << 20;
/** Chunks kept for the next response: 16 MiB. */
const KEPT_CHUNKS = 16;
const scratch: Buffer[] = [];

/**
 * UTF-8 text written straight into 1 MiB buffers, then copied once into the body: each row's string is
 * flattened and encoded by one native call, where joining the rows into one string and encoding that
 * copied the 9 MB of 10k units twice more (102 against 114 ms). The buffers are reused from one response
 * to the next (all of a response is written synchronously): allocating them again and again made V8
 * collect garbage for their external memory.
 */
class ChunkWriter {
  private readonly chunks: Buffer[] = [];
  private buf: Buffer;
  private used = 0;
  private pos = 0;

  constructor() {
    this.buf = this.next();
  }

  write(text: string): void {
    // A UTF-16 code unit takes at most 3 bytes in UTF-8.
    if (this.pos + 3 * text.length > this.buf.length) {
      this.chunks.push(this.buf.subarray(0, this.pos));
      this.buf = 3 * text.length > CHUNK_BYTES ? Buffer.allocUnsafe(3 * text.length) : this.next();
      this.pos = 0;
    }
    this.pos += this.buf.write(text, this.pos, 'utf8');
  }

  /** Everything written, in one buffer of its size. */
  finish(): Buffer {
    this.chunks.push(this.buf.subarray(0, this.pos));
    return Buffer.concat(this.chunks);
  }

  private next(): Buffer {
    if (this.used === scratch.length && scratch.length < KEPT_CHUNKS)
      scratch.push(Buffer.allocUnsafe(CHUNK_BYTES));
    return this.used < scratch.length ? scratch[this.used++]! : Buffer.allocUnsafe(CHUNK_BYTES);
  }
}

export interface RowEncoderOptions {
  /** Text columns holding JSON, decoded before encoding. */
  jsonColumns: ReadonlySet<string>;
  /** String columns rewritten before encoding (e.g. time-zone conversion); a throw skips the row. */
  convert?: { columns: ReadonlySet<string>; fn: (value: string) => string };
}

/** Encodes rows of `columns` (arrays, as `setReturnArrays(true)` returns them) as `struct` values. */
export class RowEncoder {
  /** Column of each struct field, -1 when not selected. */
  private readonly columns: number[];
  private readonly encoders: FieldEncoder[];

  constructor(struct: readonly FieldSpec[], columns: readonly string[], opts: RowEncoderOptions) {
    this.columns = struct.map((f) => columns.indexOf(f.name));
    this.encoders = struct.map((f) =>
      fieldEncoder(
        f,
        opts.jsonColumns.has(f.name),
        opts.convert?.columns.has(f.name) ? opts.convert.fn : undefined,
      ),
    );
  }

  encode(rows: Iterable<readonly SQLOutputValue[]>): EncodedRows {
    const { columns, encoders } = this;
    const out = new ChunkWriter();
    const [head] = envelope();
    out.write(head);
    let count = 0;
    let failed = 0;
    for (const row of rows) {
      let fields = '';
      try {
        for (let k = 0; k < encoders.length; k++) {
          const c = columns[k]!;
          const part = encoders[k]!(c < 0 ? undefined : row[c]);
          if (part !== undefined) fields += fields === '' ? part.slice(1) : part;
        }
      } catch {
        failed++;
        continue;
      }
      out.write(`${count++ > 0 ? ',{' : '[{'}${fields}}`);
    }
    const [, tail] = envelope(failed > 0 ? [`failed to scan ${failed} rows`] : []);
    out.write(`${count > 0 ? ']' : '[]'}${tail}`);
    return { body: out.finish(), rows: count, failed };
  }
}

/** Runs `sql` and encodes its rows, read as arrays one at a time so that none outlives its encoding. */
export function encodeQuery(
  reader: SqlReader,
  sql: string,
  params: readonly SQLInputValue[],
  struct: readonly FieldSpec[],
  opts: RowEncoderOptions,
): Promise<EncodedRows> {
  return reader.withRows(sql, params, (columns, rows) => new RowEncoder(struct, columns, opts).encode(rows));
}
