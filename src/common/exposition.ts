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

/** Sorted label names (and, for encoding, the rendered `{…}`) of one labels object. */
interface Prepared {
  readonly names: string[];
  rendered?: string;
}

/**
 * Per-pass cache of prepared label sets: a unit's labels object is shared by its dozen families, so its
 * names are sorted and rendered once per pass instead of once per sample. Not kept across passes, so that
 * a labels object reused by a collector with other values is never served stale.
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

/** The samples of a family in wire order (a sorted copy; stable, so equal series keep emission order). */
export function wireOrder(f: MetricFamily, cache: LabelCache): Sample[] {
  const samples = f.samples.slice();
  if (!keepsOrder(f.type)) samples.sort((a, b) => cache.compare(a, b));
  return samples;
}

/** Size at which encodeChunks hands over what it rendered. */
const CHUNK_CHARS = 64 * 1024;

/**
 * Renders families in pieces of about 64 KiB, so that a scrape of thousands of units is streamed instead of
 * built as one string; empty families are omitted. Families must have unique names.
 */
export function* encodeChunks(families: Iterable<MetricFamily>): Generator<string> {
  const list = [...families].filter((f) => f.samples.length > 0).sort((a, b) => byteCompare(a.name, b.name));
  const cache = new LabelCache();
  let out = '';
  for (const f of list) {
    out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of wireOrder(f, cache)) {
      out += `${s.name ?? f.name}${cache.rendered(s.labels)} ${formatFloat(s.value)}\n`;
      if (out.length >= CHUNK_CHARS) {
        yield out;
        out = '';
      }
    }
  }
  if (out !== '') yield out;
}

/** Renders families as one string; empty families are omitted. Families must have unique names. */
export function encode(families: Iterable<MetricFamily>): string {
  let out = '';
  for (const chunk of encodeChunks(families)) out += chunk;
  return out;
}
