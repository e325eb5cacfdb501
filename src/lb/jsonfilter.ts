// `filter_labels` on backend JSON responses (spec lb.md §10 [D-LB-8]) without re-encoding them: a scanner
// finds the byte spans of the items to remove and the answer is the backend's bytes with those spans cut
// out. Whatever is not removed — number spelling (`1e3`, `1.0`), escapes (`\u003c`), nulls, key order,
// duplicate keys, whitespace, fields unknown to us — reaches the client exactly as the backend sent it.

/** A byte range [start, end) of the document. */
interface Span {
  readonly start: number;
  readonly end: number;
}

/** An object member: its key (decoded) and the span from the key's quote to the end of its value. */
interface Member extends Span {
  readonly key: string;
  readonly valueStart: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

export class JsonSyntaxError extends Error {}

function fail(what: string, pos: number): never {
  throw new JsonSyntaxError(`${what} at byte ${pos}`);
}

function isSpace(b: number | undefined): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

function skipSpace(buf: Buffer, pos: number): number {
  while (isSpace(buf[pos])) pos++;
  return pos;
}

/** End of the string whose opening quote is at `pos` (index after the closing quote). */
function skipString(buf: Buffer, pos: number): number {
  // A plain byte loop: strings here are short (sample values, label pairs), where indexOf's call costs more.
  const n = buf.length;
  let i = pos + 1;
  while (i < n && buf[i] !== QUOTE) i += buf[i] === BACKSLASH ? 2 : 1;
  if (i >= n) fail('unterminated string', pos);
  return i + 1;
}

/** End of the value starting at `pos` (which must not be whitespace). */
function skipValue(buf: Buffer, pos: number): number {
  const first = buf[pos];
  if (first === QUOTE) return skipString(buf, pos);
  if (first === OPEN_OBJECT || first === OPEN_ARRAY) {
    // Nested containers are skipped by bracket depth: only strings can hold brackets that do not count.
    let depth = 0;
    let i = pos;
    while (i < buf.length) {
      const b = buf[i]!;
      if (b === QUOTE) {
        i = skipString(buf, i);
        continue;
      }
      if (b === OPEN_OBJECT || b === OPEN_ARRAY) depth++;
      else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    fail('unterminated container', pos);
  }
  // number, true, false, null
  let i = pos;
  while (i < buf.length) {
    const b = buf[i]!;
    if (b === COMMA || b === CLOSE_OBJECT || b === CLOSE_ARRAY || isSpace(b)) break;
    i++;
  }
  if (i === pos) fail('value expected', pos);
  return i;
}

/** The items of the container opening at `pos`, each read by `item`, and the container's end. */
function items<T extends Span>(
  buf: Buffer,
  pos: number,
  open: number,
  close: number,
  item: (start: number) => T,
): { items: T[]; end: number } {
  if (buf[pos] !== open) fail(`'${String.fromCharCode(open)}' expected`, pos);
  const out: T[] = [];
  let i = skipSpace(buf, pos + 1);
  if (buf[i] === close) return { items: out, end: i + 1 };
  for (;;) {
    const it = item(i);
    out.push(it);
    i = skipSpace(buf, it.end);
    if (buf[i] === close) return { items: out, end: i + 1 };
    if (buf[i] !== COMMA) fail("',' expected", i);
    i = skipSpace(buf, i + 1);
  }
}

function decodeString(buf: Buffer, start: number, end: number): string {
  const raw = buf.subarray(start, end);
  // Escaped keys (`"\u0069nstance"`) must compare as the client's JSON parser will read them.
  if (!raw.includes(BACKSLASH)) return raw.toString('utf8', 1, raw.length - 1);
  try {
    return JSON.parse(raw.toString('utf8')) as string;
  } catch {
    fail('invalid string escape', start);
  }
}

function members(buf: Buffer, pos: number): { items: Member[]; end: number } {
  return items(buf, pos, OPEN_OBJECT, CLOSE_OBJECT, (start) => {
    if (buf[start] !== QUOTE) fail('member name expected', start);
    const keyEnd = skipString(buf, start);
    const colon = skipSpace(buf, keyEnd);
    if (buf[colon] !== COLON) fail("':' expected", colon);
    const valueStart = skipSpace(buf, colon + 1);
    return { key: decodeString(buf, start, keyEnd), start, valueStart, end: skipValue(buf, valueStart) };
  });
}

function elements(buf: Buffer, pos: number): { items: Span[]; end: number } {
  return items(buf, pos, OPEN_ARRAY, CLOSE_ARRAY, (start) => ({ start, end: skipValue(buf, start) }));
}

/** The value of member `key` of the object at `pos` (the last one, as JSON parsers read duplicates). */
function memberValue(buf: Buffer, pos: number, key: string): number | undefined {
  if (buf[pos] !== OPEN_OBJECT) return undefined;
  return members(buf, pos)
    .items.filter((m) => m.key === key)
    .at(-1)?.valueStart;
}

/** A replacement of the bytes [start, end) by `text` ('' = cut out). */
interface Edit extends Span {
  readonly text: string;
}

/**
 * Edits cutting `drop`ped items out of a container, commas included, so that the kept items keep their
 * own separators: a run of dropped items goes with the comma after it, a run at the end with the one before.
 */
function cutItems<T extends Span>(list: readonly T[], drop: (item: T) => boolean, out: Edit[]): void {
  let i = 0;
  while (i < list.length) {
    if (!drop(list[i]!)) {
      i++;
      continue;
    }
    let j = i;
    while (j + 1 < list.length && drop(list[j + 1]!)) j++;
    if (j + 1 < list.length) out.push({ start: list[i]!.start, end: list[j + 1]!.start, text: '' });
    else if (i > 0) out.push({ start: list[i - 1]!.end, end: list[j]!.end, text: '' });
    else out.push({ start: list[i]!.start, end: list[j]!.end, text: '' });
    i = j + 1;
  }
}

function applyEdits(buf: Buffer, edits: readonly Edit[]): Buffer {
  if (edits.length === 0) return buf;
  const parts: Buffer[] = [];
  let at = 0;
  for (const e of [...edits].sort((a, b) => a.start - b.start)) {
    parts.push(buf.subarray(at, e.start));
    if (e.text !== '') parts.push(Buffer.from(e.text));
    at = e.end;
  }
  parts.push(buf.subarray(at));
  return Buffer.concat(parts);
}

/** Label names as the API path encodes them (`/label/<name>/values`); a bad escape stays raw. */
function pathLabel(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * The JSON API response `raw` of the request path `path` with the `labels` removed (spec §10). Throws
 * JsonSyntaxError when the parts to rewrite are not well-formed JSON.
 */
export function filterJson(path: string, raw: Buffer, labels: readonly string[]): Buffer {
  const listed = (name: string) => labels.includes(name);
  const edits: Edit[] = [];
  const root = skipSpace(raw, 0);
  const data = memberValue(raw, root, 'data');
  if (data === undefined) return raw;
  const cutLabels = (labelSet: number) => {
    if (raw[labelSet] === OPEN_OBJECT) cutItems(members(raw, labelSet).items, (m) => listed(m.key), edits);
  };
  const valuesOf = /\/label\/([^/]+)\/values$/.exec(path);
  if (/(^|\/)(query|query_range)$/.test(path)) {
    const result = memberValue(raw, data, 'result');
    if (result !== undefined && raw[result] === OPEN_ARRAY)
      for (const r of elements(raw, result).items) {
        const metric = memberValue(raw, r.start, 'metric');
        if (metric !== undefined) cutLabels(metric);
      }
  } else if (/(^|\/)series$/.test(path)) {
    if (raw[data] === OPEN_ARRAY) for (const s of elements(raw, data).items) cutLabels(s.start);
  } else if (/(^|\/)labels$/.test(path)) {
    if (raw[data] === OPEN_ARRAY) {
      const names = elements(raw, data).items;
      cutItems(names, (n) => raw[n.start] === QUOTE && listed(decodeString(raw, n.start, n.end)), edits);
    }
  } else if (valuesOf && listed(pathLabel(valuesOf[1]!))) {
    edits.push({ start: data, end: skipValue(raw, data), text: 'null' });
  }
  return applyEdits(raw, edits);
}
