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

/** Label names of a sample in wire order. */
function sortedNames(labels: Labels): string[] {
  return Object.keys(labels).sort(byteCompare);
}

/** Key identifying a series (name + sorted labels), used for duplicate detection. */
export function seriesKey(name: string, labels: Labels): string {
  let key = name;
  for (const k of sortedNames(labels)) key += `\xff${k}\xfe${labels[k]}`;
  return key;
}

interface Prepared {
  sample: Sample;
  names: string[];
}

function compareValues(a: Prepared, b: Prepared): number {
  const n = Math.min(a.names.length, b.names.length);
  for (let i = 0; i < n; i++) {
    const an = a.names[i]!;
    const bn = b.names[i]!;
    if (an !== bn) return byteCompare(an, bn);
    const av = a.sample.labels[an]!;
    const bv = b.sample.labels[bn]!;
    if (av !== bv) return byteCompare(av, bv);
  }
  return a.names.length - b.names.length;
}

function writeSample(out: string[], name: string, p: Prepared): void {
  const { names, sample } = p;
  let line = name;
  if (names.length > 0) {
    line += '{';
    for (let i = 0; i < names.length; i++) {
      if (i > 0) line += ',';
      line += `${names[i]}="${escapeLabelValue(sample.labels[names[i]!]!)}"`;
    }
    line += '}';
  }
  out.push(`${line} ${formatFloat(sample.value)}\n`);
}

/** Renders families; empty families are omitted. Families must have unique names. */
export function encode(families: Iterable<MetricFamily>): string {
  const list = [...families].filter((f) => f.samples.length > 0).sort((a, b) => byteCompare(a.name, b.name));
  const out: string[] = [];
  for (const f of list) {
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`);
    // histogram/summary parts keep their given order (buckets ascending, then _sum, _count)
    const prepared = f.samples.map((sample) => ({ sample, names: sortedNames(sample.labels) }));
    if (f.type !== 'histogram' && f.type !== 'summary') prepared.sort(compareValues);
    for (const p of prepared) writeSample(out, p.sample.name ?? f.name, p);
  }
  return out.join('');
}
