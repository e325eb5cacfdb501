// Prometheus text exposition format 0.0.4, byte-compatible with client_golang's promhttp
// (family order by name, label order by name, samples sorted by label values, Go float formatting).

export type MetricType = 'counter' | 'gauge' | 'untyped' | 'histogram' | 'summary';
export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  /** Sample name when it differs from the family name (histogram/summary parts). */
  readonly name?: string;
  readonly labels: Labels;
  readonly value: number;
}

export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly samples: Sample[];
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8; escaping=underscores';

/** Go `strconv.FormatFloat(v, 'g', -1, 64)`. */
export function formatFloat(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const abs = Math.abs(v);
  // JS prints plain decimals with the same shortest digits in Go's plain range [1e-4, 1e6)
  if (abs >= 1e-4 && abs < 1e6) return String(v);
  const exp = v.toExponential(); // shortest round-trip digits, e.g. "1.234567e+6"
  const e = Number(exp.slice(exp.indexOf('e') + 1));
  return e < -4 || e >= 6 ? goExponent(exp) : String(v);
}

function goExponent(exp: string): string {
  const i = exp.indexOf('e');
  const mantissa = exp.slice(0, i);
  const sign = exp[i + 1] === '-' ? '-' : '+';
  const digits = exp.slice(i + 2);
  return `${mantissa}e${sign}${digits.length < 2 ? `0${digits}` : digits}`;
}

export function escapeLabelValue(v: string): string {
  if (!/[\\"\n]/.test(v)) return v;
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function escapeHelp(v: string): string {
  if (!/[\\\n]/.test(v)) return v;
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function byteCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Label names of a sample in wire order (already in order when the object was built that way). */
function sortedNames(labels: Labels): string[] {
  const names = Object.keys(labels);
  for (let i = 1; i < names.length; i++) if (names[i - 1]! > names[i]!) return names.sort(byteCompare);
  return names;
}

/** Key identifying a series (name + sorted labels), used for duplicate detection. */
export function seriesKey(name: string, labels: Labels): string {
  let key = name;
  for (const k of sortedNames(labels)) key += `\xff${k}\xfe${labels[k]}`;
  return key;
}

/** Sorted label names of one labels object, and what sorting and encoding derive from them. */
interface Prepared {
  readonly names: string[];
  /** Sort key (see LabelCache.key); null when a name or value holds a NUL. */
  key?: string | null;
  rendered?: string;
}

/**
 * Per-pass cache of prepared label sets: a unit's labels object is shared by its dozen families, so its
 * names are sorted, its sort key built and its `{…}` rendered once per pass instead of once per sample.
 * Not kept across passes, so that a labels object reused by a collector with other values is never stale.
 */
export class LabelCache {
  private readonly map = new Map<Labels, Prepared>();

  get(labels: Labels): Prepared {
    let p = this.map.get(labels);
    if (!p) {
      p = { names: sortedNames(labels) };
      this.map.set(labels, p);
    }
    return p;
  }

  /**
   * `n1 NUL v1 NUL n2 NUL v2 NUL …` in name order: plain string order of two keys is the wire order of
   * their label sets (NUL sorts below every other code unit, so a shorter name or value, or fewer labels,
   * come first as `compare` has it); null when a name or value holds a NUL itself.
   */
  key(labels: Labels): string | null {
    const p = this.get(labels);
    if (p.key === undefined) {
      let k = '';
      for (const n of p.names) {
        const v = labels[n]!;
        if (n.includes('\0') || v.includes('\0')) {
          k = null as unknown as string;
          break;
        }
        k += `${n}\0${v}\0`;
      }
      p.key = k;
    }
    return p.key;
  }

  rendered(labels: Labels): string {
    const p = this.get(labels);
    if (p.rendered === undefined) {
      const { names } = p;
      let s = '';
      if (names.length > 0) {
        s = '{';
        for (let i = 0; i < names.length; i++) {
          if (i > 0) s += ',';
          s += `${names[i]}="${escapeLabelValue(labels[names[i]!]!)}"`;
        }
        s += '}';
      }
      p.rendered = s;
    }
    return p.rendered;
  }

  /** Wire order of two samples of a family: label by label in name order (names, then values). */
  compare(a: Sample, b: Sample): number {
    if (a.labels === b.labels) return 0;
    const an = this.get(a.labels).names;
    const bn = this.get(b.labels).names;
    const n = Math.min(an.length, bn.length);
    for (let i = 0; i < n; i++) {
      const x = an[i]!;
      const y = bn[i]!;
      if (x !== y) return byteCompare(x, y);
      const av = a.labels[x]!;
      const bv = b.labels[y]!;
      if (av !== bv) return byteCompare(av, bv);
    }
    return an.length - bn.length;
  }
}

/** Whether a family's samples keep their given order (histogram/summary parts: buckets, _sum, _count). */
export function keepsOrder(type: MetricType): boolean {
  return type === 'histogram' || type === 'summary';
}

/**
 * The samples of a family in wire order, as a new array; stable, so equal series keep emission order. By
 * sort keys compared as plain strings (one key per labels object), or label by label when a key cannot be
 * made. Samples that come in order (a unit collector's, walked in directory order) cost one pass.
 */
export function wireOrder(f: MetricFamily, cache: LabelCache): Sample[] {
  const samples = f.samples;
  if (keepsOrder(f.type)) return samples.slice();
  const n = samples.length;
  const keys: string[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const k = cache.key(samples[i]!.labels);
    if (k === null) return samples.slice().sort((a, b) => cache.compare(a, b));
    keys[i] = k;
  }
  let sorted = true;
  for (let i = 1; i < n && sorted; i++) sorted = keys[i - 1]! <= keys[i]!;
  if (sorted) return samples.slice();
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => {
    const x = keys[a]!;
    const y = keys[b]!;
    return x < y ? -1 : x > y ? 1 : a - b;
  });
  return order.map((i) => samples[i]!);
}

/**
 * Families their producer already put in wire order (FamilySet's duplicate check sorts every family of a
 * scrape), with their sample count then: encodeChunks writes them as they are instead of sorting them again
 * (a sort key per labels object and two arrays per family). One that got samples since is sorted as usual.
 */
const inWireOrder = new WeakMap<MetricFamily, number>();

/** Records that `f`'s samples are in wire order now (see inWireOrder). */
export function markWireOrder(f: MetricFamily): void {
  inWireOrder.set(f, f.samples.length);
}

/** Size of the pieces encodeChunks hands over. */
const CHUNK_BYTES = 64 * 1024;

/**
 * Renders families in pieces of 64 KiB written straight into buffers (no string per line), so that a scrape
 * of thousands of units is streamed instead of built whole; empty families are omitted. Families must have
 * unique names. Each piece is a new buffer: the caller may keep it (a socket does until it is sent).
 */
export function* encodeChunks(families: Iterable<MetricFamily>): Generator<Buffer> {
  const list = [...families].filter((f) => f.samples.length > 0).sort((a, b) => byteCompare(a.name, b.name));
  const cache = new LabelCache();
  let buf = Buffer.allocUnsafe(CHUNK_BYTES);
  let pos = 0;
  // UTF-8 takes at most 3 bytes per UTF-16 unit: `text` fits when that many bytes are left
  const room = (chars: number) => pos + 3 * chars <= buf.length;
  for (const f of list) {
    const header = `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    if (!room(header.length)) {
      if (pos > 0) yield buf.subarray(0, pos);
      buf = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, 3 * header.length));
      pos = 0;
    }
    pos += buf.write(header, pos);
    const samples = inWireOrder.get(f) === f.samples.length ? f.samples : wireOrder(f, cache);
    // an index loop: for-of allocates an iterator result per sample until the generator is optimised
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i]!;
      const name = s.name ?? f.name;
      const labels = cache.rendered(s.labels);
      const value = formatFloat(s.value);
      const chars = name.length + labels.length + value.length + 2;
      if (!room(chars)) {
        if (pos > 0) yield buf.subarray(0, pos);
        buf = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, 3 * chars));
        pos = 0;
      }
      pos += buf.write(name, pos);
      if (labels !== '') pos += buf.write(labels, pos);
      buf[pos++] = 32; // ' '
      pos += buf.write(value, pos, 'latin1');
      buf[pos++] = 10; // '\n'
    }
  }
  if (pos > 0) yield buf.subarray(0, pos);
}

/** Renders families as one string; empty families are omitted. Families must have unique names. */
export function encode(families: Iterable<MetricFamily>): string {
  return Buffer.concat([...encodeChunks(families)]).toString('utf8');
}
