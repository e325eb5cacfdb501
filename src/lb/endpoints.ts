// Allowed endpoints for non-admin users (spec lb.md §7.1 [D-LB-2]), matched on the exact path that
// is forwarded, after refusing every path a backend might normalise into something else.

import type { Grammar } from './promql.js';
import type { PyroscopeRpc } from './pyroscope.js';

export type LbType = 'tsdb' | 'pyroscope';

export type Endpoint =
  | { readonly type: 'tsdb'; readonly param: 'query' | 'match[]'; readonly grammar: Grammar }
  | { readonly type: 'pyroscope'; readonly rpc: PyroscopeRpc; readonly grammar: Grammar };

const TSDB_ENDPOINTS: ReadonlyArray<[RegExp, Endpoint]> = [
  [/^(\/[^/]+)*\/api\/v1\/query$/, { type: 'tsdb', param: 'query', grammar: 'expr' }],
  [/^(\/[^/]+)*\/api\/v1\/query_range$/, { type: 'tsdb', param: 'query', grammar: 'expr' }],
  [/^(\/[^/]+)*\/api\/v1\/series$/, { type: 'tsdb', param: 'match[]', grammar: 'selector' }],
  [/^(\/[^/]+)*\/api\/v1\/labels$/, { type: 'tsdb', param: 'match[]', grammar: 'selector' }],
  [/^(\/[^/]+)*\/api\/v1\/label\/[^/]+\/values$/, { type: 'tsdb', param: 'match[]', grammar: 'selector' }],
];
const PYROSCOPE_ENDPOINTS: ReadonlyArray<[RegExp, Endpoint]> = (
  ['SelectMergeStacktraces', 'LabelNames', 'LabelValues'] as const
).map((rpc) => [
  new RegExp(`^(/[^/]+)*/querier\\.v1\\.QuerierService/${rpc}$`),
  { type: 'pyroscope', rpc, grammar: 'selector' },
]);

/** True for paths a server could resolve differently from their text: dot/empty segments, encoded separators. */
export function isAmbiguousPath(path: string): boolean {
  return (
    !path.startsWith('/') ||
    path.includes('//') ||
    path.includes('\\') ||
    /(^|\/)\.\.?(\/|$)/.test(path) ||
    /%(2f|5c|2e)/i.test(path)
  );
}

/** The allowed endpoint a path names for a load-balancer type, or undefined. */
export function matchEndpoint(type: LbType, path: string): Endpoint | undefined {
  if (isAmbiguousPath(path)) return undefined;
  const table = type === 'tsdb' ? TSDB_ENDPOINTS : PYROSCOPE_ENDPOINTS;
  for (const [re, ep] of table) if (re.test(path)) return ep;
  return undefined;
}
