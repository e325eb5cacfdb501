// PromQL parsing for access control: every vector selector of a query (inside range selectors,
// subqueries, function arguments, aggregations, binary operands, offset/@ modifiers) with its matchers,
// using the Prometheus project's lezer grammar. The parser runs in strict mode (no error recovery, which
// is also what keeps garbage input cheap); error nodes, unterminated or badly escaped string literals and
// stray tokens are refused as well. Lezer gives up on chains of more than ~300 left-associative binary
// operators; such queries are refused like any other unparseable one.

import type { SyntaxNode } from '@lezer/common';
import { parser } from '@prometheus-io/lezer-promql';

const strictParser = parser.configure({ strict: true });

export type MatchOp = '=' | '!=' | '=~' | '!~';

export interface LabelMatcher {
  readonly name: string;
  readonly op: MatchOp;
  readonly value: string;
}

/** One vector selector; a metric name (`foo{…}` or `{"foo",…}`) appears as a `__name__ =` matcher. */
export interface Selector {
  readonly matchers: readonly LabelMatcher[];
}

export interface ParsedQuery {
  /** Every selector in source order. */
  readonly selectors: readonly Selector[];
  /** Names of the functions called (lower case), e.g. to refuse `info`. */
  readonly functions: ReadonlySet<string>;
}

export class PromQLParseError extends Error {}

/** Grammar to parse with: a full expression (`query`) or a series selector (`match[]`, Pyroscope). */
export type Grammar = 'expr' | 'selector';

const OPS: Record<string, MatchOp> = { EqlSingle: '=', Neq: '!=', EqlRegex: '=~', NeqRegex: '!~' };
const SIMPLE_ESCAPES: Record<string, string> = {
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
};

/**
 * Go `strconv.Unquote` semantics as used by the Prometheus parser (`"…"`, `'…'`, raw backquotes).
 * `\x`/octal escapes give bytes; they are kept as code units < 256, which can never form one of the
 * ASCII identifiers the access rules compare against unless the byte itself is ASCII.
 */
export function unquoteString(lit: string): string {
  const q = lit[0];
  if (lit.length < 2 || lit[lit.length - 1] !== q || (q !== '"' && q !== "'" && q !== '`')) {
    throw new PromQLParseError(`unterminated quoted string ${lit}`);
  }
  const body = lit.slice(1, -1);
  if (q === '`') return body.replaceAll('\r', '');
  if (!body.includes('\\') && !body.includes(q) && !body.includes('\n')) return body;
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === q || c === '\n') throw new PromQLParseError(`invalid character in quoted string ${lit}`);
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = body[++i];
    if (e === undefined) throw new PromQLParseError(`unterminated escape in ${lit}`);
    if (e in SIMPLE_ESCAPES) {
      out += SIMPLE_ESCAPES[e];
    } else if (e === q) {
      out += e;
    } else if (e === 'x' || e === 'u' || e === 'U') {
      const n = e === 'x' ? 2 : e === 'u' ? 4 : 8;
      const hex = body.slice(i + 1, i + 1 + n);
      if (!new RegExp(`^[0-9A-Fa-f]{${n}}$`).test(hex))
        throw new PromQLParseError(`invalid escape \\${e}${hex} in ${lit}`);
      const v = Number.parseInt(hex, 16);
      if (e !== 'x' && (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)))
        throw new PromQLParseError(`invalid Unicode code point \\${e}${hex} in ${lit}`);
      out += String.fromCodePoint(v);
      i += n;
    } else if (e >= '0' && e <= '7') {
      const oct = body.slice(i, i + 3);
      if (!/^[0-7]{3}$/.test(oct) || Number.parseInt(oct, 8) > 255)
        throw new PromQLParseError(`invalid octal escape \\${oct} in ${lit}`);
      out += String.fromCharCode(Number.parseInt(oct, 8));
      i += 2;
    } else {
      throw new PromQLParseError(`unknown escape sequence \\${e} in ${lit}`);
    }
  }
  return out;
}

function position(query: string, offset: number): string {
  const before = query.slice(0, offset);
  const line = before.split('\n').length;
  const col = offset - (before.lastIndexOf('\n') + 1) + 1;
  return `${line}:${col}`;
}

function parseError(query: string, offset: number, what: string): PromQLParseError {
  return new PromQLParseError(`${position(query, offset)}: parse error: ${what}`);
}

function unexpected(query: string, from: number, to: number): PromQLParseError {
  if (from >= query.length) return parseError(query, from, 'unexpected end of input');
  const text = query.slice(from, Math.max(to, from + 1)).slice(0, 40);
  return parseError(query, from, `unexpected ${JSON.stringify(text)}`);
}

function stringValue(query: string, node: SyntaxNode): string {
  try {
    return unquoteString(query.slice(node.from, node.to));
  } catch (e) {
    throw parseError(query, node.from, (e as Error).message);
  }
}

function readSelector(query: string, node: SyntaxNode): Selector {
  const matchers: LabelMatcher[] = [];
  for (let c = node.firstChild; c; c = c.nextSibling) {
    if (c.name === 'Identifier') {
      matchers.push({ name: '__name__', op: '=', value: query.slice(c.from, c.to) });
      continue;
    }
    // LabelMatchers: `{` (UnquotedLabelMatcher | QuotedLabelMatcher | QuotedLabelName)* `}`
    for (let m = c.firstChild; m; m = m.nextSibling) {
      if (m.name === 'QuotedLabelName') {
        matchers.push({ name: '__name__', op: '=', value: stringValue(query, m.firstChild!) });
        continue;
      }
      if (m.name !== 'UnquotedLabelMatcher' && m.name !== 'QuotedLabelMatcher') continue;
      const nameNode = m.firstChild!;
      const opNode = nameNode.nextSibling!;
      const valueNode = opNode.nextSibling!;
      const name =
        nameNode.name === 'LabelName'
          ? query.slice(nameNode.from, nameNode.to)
          : stringValue(query, nameNode.firstChild!);
      const op = OPS[opNode.firstChild!.name];
      if (!op) throw unexpected(query, opNode.from, opNode.to);
      matchers.push({ name, op, value: stringValue(query, valueNode) });
    }
  }
  return { matchers };
}

/** Parses a query and returns its selectors; throws PromQLParseError for anything malformed. */
export function parseQuery(query: string, grammar: Grammar = 'expr'): ParsedQuery {
  if (query.trim() === '') throw new PromQLParseError('1:1: parse error: no expression found in input');
  let tree: ReturnType<typeof strictParser.parse>;
  try {
    tree = strictParser.parse(query);
  } catch (e) {
    const at = /No parse at (\d+)/.exec((e as Error).message);
    if (!at) throw e;
    const pos = Number(at[1]);
    throw unexpected(query, pos, pos + 1);
  }
  const selectors: Selector[] = [];
  const functions = new Set<string>();
  const cursor = tree.cursor();
  let top: SyntaxNode | null = null;
  do {
    const n = cursor.node;
    if (n.type.isError) throw unexpected(query, n.from, n.to);
    switch (n.name) {
      case 'PromQL':
        top = n.firstChild;
        break;
      case 'MetricName':
        // The grammar's second top rule never applies to `parser.parse`; refuse it defensively.
        throw unexpected(query, n.from, n.to);
      case 'VectorSelector':
        selectors.push(readSelector(query, n));
        break;
      case 'FunctionIdentifier':
        functions.add(query.slice(n.from, n.to).toLowerCase());
        break;
      case 'StringLiteral':
        stringValue(query, n);
        break;
    }
  } while (cursor.next());
  if (!top) throw parseError(query, 0, 'no expression found in input');
  if (top.nextSibling) throw unexpected(query, top.nextSibling.from, top.nextSibling.to);
  if (grammar === 'selector' && top.name !== 'VectorSelector') {
    throw parseError(query, top.from, 'expected a series selector such as {label="value"}');
  }
  return { selectors, functions };
}
