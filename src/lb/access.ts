// Selector rule of spec lb.md §7.3 [D-LB-1]: every selector of every query string must pin the
// restricting label (`uuid` / `service_name`) to literal values, except selectors of node-level series
// named in `unrestricted_metrics` [D-LB-14]; the pinned values form the set whose ownership is checked.

import {
  type Grammar,
  type LabelMatcher,
  PromQLParseError,
  parseQuery,
  type QueryParser,
  type Selector,
} from './promql.js';

/** The uuid alphabet accepted by the original CEEMS (Go). */
const LITERAL = /^[A-Za-z0-9-]+$/;

export interface AccessPolicy {
  /** `uuid` on the TSDB listener, `service_name` on the Pyroscope listener. */
  readonly restrictingLabel: string;
  /** Exact metric names whose selectors need no restricting matcher. */
  readonly unrestrictedMetrics: ReadonlySet<string>;
}

export type AccessDecision =
  /**
   * Every selector is acceptable; `ids` must all be owned (empty = no series read at all). `queries` are
   * the canonical texts of the checked queries, in order: what is forwarded instead of the raw text.
   */
  | {
      readonly kind: 'allow';
      readonly ids: ReadonlySet<string>;
      readonly queries: readonly string[];
      readonly clusterOverride?: string;
    }
  | { readonly kind: 'deny'; readonly reason: string; readonly clusterOverride?: string }
  | { readonly kind: 'invalid'; readonly message: string };

/** Values of a positive literal matcher, or undefined when the matcher does not pin the label. */
export function literalValues(m: LabelMatcher): string[] | undefined {
  if (m.op === '=') return LITERAL.test(m.value) ? [m.value] : undefined;
  if (m.op === '=~') {
    const alternatives = m.value.split('|');
    return alternatives.every((a) => LITERAL.test(a)) ? alternatives : undefined;
  }
  return undefined;
}

function isUnrestricted(sel: Selector, policy: AccessPolicy): boolean {
  return sel.matchers.some(
    (m) => m.name === '__name__' && m.op === '=' && policy.unrestrictedMetrics.has(m.value),
  );
}

/** Checks one selector; adds its pinned values to `ids`; returns a denial reason or undefined. */
function checkSelector(sel: Selector, policy: AccessPolicy, ids: Set<string>): string | undefined {
  let pinned = false;
  for (const m of sel.matchers) {
    if (m.name !== policy.restrictingLabel) continue;
    const values = literalValues(m);
    if (!values) continue;
    pinned = true;
    for (const v of values) ids.add(v);
  }
  if (pinned || isUnrestricted(sel, policy)) return undefined;
  const text = sel.matchers.map((m) => `${m.name}${m.op}${JSON.stringify(m.value)}`).join(',');
  return `selector {${text}} does not pin ${policy.restrictingLabel} to literal values`;
}

/** Cluster id named by the last `ceems_id` matcher with `=` or `=~` (last alternative) [§6.2]. */
function clusterOverrideOf(selectors: readonly Selector[], current: string | undefined): string | undefined {
  let id = current;
  for (const s of selectors) {
    for (const m of s.matchers) {
      if (m.name !== 'ceems_id') continue;
      if (m.op === '=') id = m.value;
      else if (m.op === '=~') id = m.value.split('|').pop();
    }
  }
  return id;
}

/**
 * Applies the selector rule to every query string of a request. Parse failures win over denials so the
 * client learns about the malformed query; the cluster override is returned even for denials.
 */
export function checkQueries(
  queries: readonly string[],
  grammar: Grammar,
  policy: AccessPolicy,
  parse: QueryParser = parseQuery,
): AccessDecision {
  const ids = new Set<string>();
  const canonical: string[] = [];
  let clusterOverride: string | undefined;
  let denial: string | undefined;
  for (const q of queries) {
    let parsed: ReturnType<QueryParser>;
    try {
      parsed = parse(q, grammar);
    } catch (e) {
      if (e instanceof PromQLParseError) return { kind: 'invalid', message: e.message };
      throw e;
    }
    canonical.push(parsed.canonical);
    clusterOverride = clusterOverrideOf(parsed.selectors, clusterOverride);
    if (denial) continue;
    if (parsed.functions.has('info')) {
      denial = 'info() reads series implicitly';
      continue;
    }
    for (const s of parsed.selectors) {
      denial = checkSelector(s, policy, ids);
      if (denial) break;
    }
  }
  if (denial) return { kind: 'deny', reason: denial, clusterOverride };
  return { kind: 'allow', ids, queries: canonical, clusterOverride };
}

/** The `ceems_id` override of an admin's queries, which are not checked; malformed ones are skipped. */
export function adminClusterOverride(
  queries: readonly string[],
  grammar: Grammar,
  parse: QueryParser = parseQuery,
): string | undefined {
  let id: string | undefined;
  for (const q of queries) {
    try {
      id = clusterOverrideOf(parse(q, grammar).selectors, id);
    } catch (e) {
      if (!(e instanceof PromQLParseError)) throw e;
    }
  }
  return id;
}
