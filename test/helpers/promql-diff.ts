// Differential check of ceems_lb's PromQL reading against Prometheus' own: for every generated query the LB
// allows, Prometheus (`/api/v1/format_query`, its parse-and-print) must (a) parse the raw text, (b) print
// the raw text and the forwarded canonical text identically, and (c) hold the same selectors the LB
// checked. Shared by test/integration/lb-differential.test.ts and bench/fuzz-promql.ts.

import { Pool } from 'undici';
import { type AccessDecision, type AccessPolicy, checkQueries } from '../../src/lb/access.js';
import { parseQuery, type Selector } from '../../src/lb/promql.js';
import { type GeneratedQuery, UNRESTRICTED_METRIC } from './promql-gen.js';

export const POLICY: AccessPolicy = {
  restrictingLabel: 'uuid',
  unrestrictedMetrics: new Set([UNRESTRICTED_METRIC]),
};

export type Formatted =
  | { readonly ok: true; readonly text: string }
  | { readonly ok: false; readonly error: string };

/** Prometheus' parse-and-print over a keep-alive pool; each distinct text is sent once. */
export class PrometheusFormatter {
  private readonly pool: Pool;
  private readonly cache = new Map<string, Formatted>();
  requests = 0;

  constructor(
    url: string,
    private readonly concurrency = 8,
  ) {
    this.pool = new Pool(url, { connections: concurrency });
  }

  async formatAll(queries: readonly string[]): Promise<Formatted[]> {
    const todo = [...new Set(queries)].filter((q) => !this.cache.has(q));
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        const q = todo[next++]!;
        this.cache.set(q, await this.format(q));
      }
    };
    await Promise.all(Array.from({ length: this.concurrency }, worker));
    return queries.map((q) => this.cache.get(q)!);
  }

  private async format(query: string): Promise<Formatted> {
    this.requests++;
    const res = await this.pool.request({
      path: '/api/v1/format_query',
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query }).toString(),
    });
    const text = await res.body.text();
    if (res.statusCode !== 200 && res.statusCode !== 400)
      throw new Error(`format_query answered HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
    const body = JSON.parse(text) as { status: string; data?: string; error?: string };
    return body.status === 'success' ? { ok: true, text: body.data! } : { ok: false, error: body.error! };
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** JSON with every non-ASCII character escaped, so invisible spaces and look-alikes show. */
export const json = (s: string) =>
  JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** Selectors as a sorted list of sorted matcher lists: order-free, duplicates kept. */
export function selectorSet(selectors: readonly Selector[]): string[] {
  return selectors
    .map((s) =>
      s.matchers
        .map((m) => `${m.name}${m.op}${json(m.value)}`)
        .sort()
        .join(','),
    )
    .map((s) => `{${s}}`)
    .sort();
}

/**
 * Selectors the lezer grammar reads in Prometheus' print `text`, or the reason it cannot. Prometheus prints
 * U+FFFD raw inside strings although its own lexer refuses it there: it is read back as its escape.
 */
function lezerSelectors(text: string): string[] | string {
  try {
    return selectorSet(parseQuery(text.replaceAll('\uFFFD', '\\ufffd')).selectors);
  } catch (e) {
    return `unparseable: ${(e as Error).message}`;
  }
}

const same = (a: string[] | string, b: string[] | string) => JSON.stringify(a) === JSON.stringify(b);

export interface Decided {
  readonly index: number;
  readonly item: GeneratedQuery;
  readonly decision: AccessDecision;
}

/** The LB's decision on each generated query, alone, in its own grammar. */
export function decide(items: readonly GeneratedQuery[], policy = POLICY): Decided[] {
  return items.map((item, index) => ({
    index,
    item,
    decision: checkQueries([item.query], item.grammar, policy),
  }));
}

export type DisagreementKind =
  /**
   * (a) the LB allowed text Prometheus refuses, and Prometheus accepts what the LB forwards: the LB would
   * run a query Prometheus would not have run as written. (When Prometheus refuses both, nothing runs and
   * the outcome is the same: counted in `refusedByBoth`.)
   */
  | 'prometheus-rejects'
  /** (b) Prometheus reads the raw and the forwarded text differently (or refuses only the latter). */
  | 'forwarded-differs'
  /** (c) Prometheus' reading of the raw text holds other selectors than the LB checked. */
  | 'selectors-differ';

export interface Disagreement {
  readonly seed: number;
  readonly index: number;
  readonly item: GeneratedQuery;
  readonly kinds: readonly DisagreementKind[];
  /** Prometheus would run the forwarded text with selectors the LB did not check. */
  readonly unsafe: boolean;
  readonly forwarded: string;
  readonly formatQuery: Formatted;
  readonly formatForwarded: Formatted;
  readonly lbSelectors: readonly string[];
  readonly prometheusSelectors: readonly string[] | string;
}

export interface DiffReport {
  readonly seed: number;
  readonly total: number;
  readonly allowed: number;
  readonly denied: number;
  readonly invalid: number;
  readonly disagreements: readonly Disagreement[];
  /** Per feature: allowed queries using it, and disagreements among them. */
  readonly features: ReadonlyMap<string, { allowed: number; disagreements: number }>;
  /** Queries the LB refused as invalid that Prometheus parses (not disagreements: stricter is safe). */
  readonly refusedButParsed: readonly Decided[];
  /** Allowed queries that Prometheus refuses both as written and as forwarded (syntax newer than it). */
  readonly refusedByBoth: number;
  readonly prometheusRequests: number;
  readonly ms: number;
}

/** Runs the LB's check and Prometheus' parse-and-print on every query; returns counts and disagreements. */
export async function differential(
  formatter: PrometheusFormatter,
  items: readonly GeneratedQuery[],
  seed: number,
  policy = POLICY,
): Promise<DiffReport> {
  const t0 = performance.now();
  const before = formatter.requests;
  const decided = decide(items, policy);
  const allowed = decided.filter((d) => d.decision.kind === 'allow');
  const forwardedOf = (d: Decided) => (d.decision.kind === 'allow' ? d.decision.queries[0]! : '');
  const raw = await formatter.formatAll(allowed.map((d) => d.item.query));
  const fwd = await formatter.formatAll(allowed.map(forwardedOf));
  const invalid = decided.filter((d) => d.decision.kind === 'invalid');
  const parsed = await formatter.formatAll(invalid.map((d) => d.item.query));
  const disagreements: Disagreement[] = [];
  const features = new Map<string, { allowed: number; disagreements: number }>();
  let refusedByBoth = 0;
  allowed.forEach((d, i) => {
    const fq = raw[i]!;
    const ff = fwd[i]!;
    const lb = selectorSet(parseQuery(d.item.query, d.item.grammar).selectors);
    const kinds: DisagreementKind[] = [];
    let prometheus: string[] | string = 'Prometheus refused the query';
    if (!fq.ok) {
      if (ff.ok) kinds.push('prometheus-rejects');
      else refusedByBoth++;
    } else {
      if (!ff.ok || ff.text !== fq.text) kinds.push('forwarded-differs');
      prometheus = lezerSelectors(fq.text);
      if (!same(prometheus, lb)) kinds.push('selectors-differ');
    }
    const unsafe = ff.ok && !same(lezerSelectors(ff.text), lb);
    for (const f of d.item.features) {
      const c = features.get(f) ?? { allowed: 0, disagreements: 0 };
      c.allowed++;
      if (kinds.length > 0) c.disagreements++;
      features.set(f, c);
    }
    if (kinds.length === 0 && !unsafe) return;
    disagreements.push({
      seed,
      index: d.index,
      item: d.item,
      kinds,
      unsafe,
      forwarded: forwardedOf(d),
      formatQuery: fq,
      formatForwarded: ff,
      lbSelectors: lb,
      prometheusSelectors: prometheus,
    });
  });
  return {
    seed,
    total: items.length,
    allowed: allowed.length,
    denied: decided.filter((d) => d.decision.kind === 'deny').length,
    invalid: invalid.length,
    disagreements,
    features,
    refusedButParsed: invalid.filter((_, i) => parsed[i]!.ok),
    refusedByBoth,
    prometheusRequests: formatter.requests - before,
    ms: performance.now() - t0,
  };
}

const shown = (f: Formatted) => (f.ok ? json(f.text) : `ERROR ${f.error}`);

/** One disagreement as the lines to reproduce and read it. */
export function describeDisagreement(d: Disagreement): string {
  return [
    `seed=${d.seed} index=${d.index} grammar=${d.item.grammar} kinds=${d.kinds.join('+') || '-'}${d.unsafe ? ' UNSAFE' : ''}`,
    `  features:             ${d.item.features.filter((f) => f.startsWith('lex:')).join(' ') || '-'}`,
    `  query:                ${json(d.item.query)}`,
    `  forwarded:            ${json(d.forwarded)}`,
    `  format(query):        ${shown(d.formatQuery)}`,
    `  format(forwarded):    ${shown(d.formatForwarded)}`,
    `  LB selectors:         ${d.lbSelectors.join(' ')}`,
    `  Prometheus selectors: ${typeof d.prometheusSelectors === 'string' ? d.prometheusSelectors : d.prometheusSelectors.join(' ')}`,
  ].join('\n');
}

/** An error message without positions and quoted text, to group like errors. */
const errorShape = (message: string) =>
  message
    .replace(/^invalid parameter "query": /, '')
    .replace(/\d+:\d+: /g, '')
    .replace(/"(?:[^"\\]|\\.)*"(?:\.\.\.)?|'(?:[^'\\]|\\.)*'|\\\S+/g, '…')
    .slice(0, 100);

/** What groups a disagreement with its likes: its kinds and Prometheus' error or the lexical features. */
function groupKey(d: Disagreement): string {
  const why = d.formatQuery.ok
    ? d.item.features.filter((f) => f.startsWith('lex:')).join(' ') || 'no lexical feature'
    : errorShape(d.formatQuery.error) +
      (d.formatForwarded.ok ? ' (forwarded text accepted)' : ' (forwarded text refused too)');
  return `${d.unsafe ? 'UNSAFE ' : ''}${d.kinds.join('+')}: ${why}`;
}

/** Counts, the lexical features behind disagreements, and up to `perGroup` examples of each kind. */
export function formatReport(r: DiffReport, perGroup = 3): string {
  const unsafe = r.disagreements.filter((d) => d.unsafe).length;
  const lines = [
    `PromQL differential, seed ${r.seed}: ${r.total} queries in ${(r.ms / 1000).toFixed(1)} s ` +
      `(${r.prometheusRequests} format_query requests): allowed ${r.allowed}, denied ${r.denied}, ` +
      `invalid ${r.invalid}, disagreements ${r.disagreements.length} (unsafe ${unsafe}); ` +
      `allowed but refused by Prometheus as written and as forwarded: ${r.refusedByBoth}`,
  ];
  if (r.disagreements.length > 0) {
    const kinds = new Map<string, number>();
    for (const d of r.disagreements) for (const k of d.kinds) kinds.set(k, (kinds.get(k) ?? 0) + 1);
    lines.push(`  by kind: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}`);
    const blamed = [...r.features]
      .filter(([f, c]) => f.startsWith('lex:') && c.disagreements > 0)
      .sort((a, b) => b[1].disagreements / b[1].allowed - a[1].disagreements / a[1].allowed);
    lines.push('  lexical features, most to blame first (disagreements / allowed queries using it):');
    for (const [f, c] of blamed.slice(0, 20)) lines.push(`    ${f}: ${c.disagreements}/${c.allowed}`);
    const groups = new Map<string, Disagreement[]>();
    for (const d of r.disagreements) groups.set(groupKey(d), [...(groups.get(groupKey(d)) ?? []), d]);
    for (const [key, ds] of [...groups].sort((a, b) => b[1].length - a[1].length)) {
      lines.push(`  --- ${ds.length} × ${key}`);
      for (const d of ds.slice(0, perGroup)) lines.push(describeDisagreement(d).replace(/^/gm, '    '));
    }
  }
  const refused = new Map<string, Decided[]>();
  for (const d of r.refusedButParsed) {
    const key = errorShape(d.decision.kind === 'invalid' ? d.decision.message : '');
    refused.set(key, [...(refused.get(key) ?? []), d]);
  }
  lines.push(`  refused by the LB although Prometheus parses them (safe side): ${r.refusedButParsed.length}`);
  for (const [key, ds] of [...refused].sort((a, b) => b[1].length - a[1].length))
    lines.push(`    ${ds.length} × ${key}, e.g. index ${ds[0]!.index}: ${json(ds[0]!.item.query)}`);
  return lines.join('\n');
}
