// PromQL parsing for access control: every vector selector of a query (inside range selectors,
// subqueries, function arguments, aggregations, binary operands, offset/@ modifiers) with its matchers,
// using the Prometheus project's lezer grammar, and the canonical text printed from that same tree, which
// is what the load balancer forwards: the backend runs exactly what was checked, whatever lexical corner
// (comments, Unicode spaces, string escapes) the lezer grammar and Prometheus' Go lexer read differently.
// The parser runs in strict mode (no error recovery, which is also what keeps garbage input cheap); text
// that Prometheus' lexer would read differently or that cannot be printed back faithfully is refused.
// Lezer gives up on chains of more than ~300 left-associative binary operators; such queries are refused
// like any other unparseable one.

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
  /** The query printed from the parse tree: no comments, one space between tokens, strings re-quoted. */
  readonly canonical: string;
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

/** U+FFFD: Prometheus' lexer reads it as a decoding error (utf8.RuneError) and refuses the string. */
const REPLACEMENT_CHAR = '\uFFFD';

/**
 * Prometheus' `strutil.Unquote` semantics (`"…"`, `'…'`, raw backquotes). `\x`/octal escapes give bytes
 * in Go; only ASCII ones (< 0x80) are accepted, since a single byte ≥ 0x80 is not a character here and
 * could not be printed back as the same bytes.
 */
export function unquoteString(lit: string): string {
  const q = lit[0];
  if (lit.length < 2 || lit[lit.length - 1] !== q || (q !== '"' && q !== "'" && q !== '`')) {
    throw new PromQLParseError(`unterminated quoted string ${lit}`);
  }
  if (lit.includes(REPLACEMENT_CHAR)) throw new PromQLParseError(`invalid UTF-8 rune in ${lit}`);
  const body = lit.slice(1, -1);
  if (q === '`') return body;
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
      if (e === 'x' && v >= 0x80) throw new PromQLParseError(`non-ASCII byte escape \\x${hex} in ${lit}`);
      if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        throw new PromQLParseError(`invalid Unicode code point \\${e}${hex} in ${lit}`);
      out += String.fromCodePoint(v);
      i += n;
    } else if (e >= '0' && e <= '7') {
      const oct = body.slice(i, i + 3);
      if (!/^[0-7]{3}$/.test(oct)) throw new PromQLParseError(`invalid octal escape \\${oct} in ${lit}`);
      if (Number.parseInt(oct, 8) >= 0x80)
        throw new PromQLParseError(`non-ASCII byte escape \\${oct} in ${lit}`);
      out += String.fromCharCode(Number.parseInt(oct, 8));
      i += 2;
    } else {
      throw new PromQLParseError(`unknown escape sequence \\${e} in ${lit}`);
    }
  }
  return out;
}

/**
 * A double-quoted literal that Prometheus unquotes back to `s`: `"` and `\` escaped, control characters,
 * DEL and U+FFFD as `\u` escapes (raw, the lexer would refuse or the reader could not see them).
 */
export function quoteString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f || ch === REPLACEMENT_CHAR)
      out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
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

/** Outside strings and comments Prometheus knows printable ASCII and these four spaces only. */
const CODE_CHARS = /^[\x20-\x7e\t\n\r]*$/;
/** Number tokens of the grammar (decimal, hex, exponent, `_` separators, durations, Inf, NaN). */
const NUMBER_TOKEN = /^[0-9A-Za-z_.]+(?:[+-][0-9_]+)?$/;
/** One-token keywords, operators and names printed as written. */
const WORD_TOKEN = /^[A-Za-z_:][A-Za-z0-9_:]*$/;
const OPERATOR_TOKEN = /^(?:[-+*/%^<>]|==|!=|<=|>=|<\/|>\/|=~|!~|=)$/;
/**
 * Words Prometheus' lexer always reads as keywords outside braces (case-insensitive): as a metric name
 * they are a syntax error there while the lezer grammar reads a selector, so they are refused here.
 */
const PROMETHEUS_KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'atan2',
  'sum',
  'avg',
  'count',
  'min',
  'max',
  'group',
  'stddev',
  'stdvar',
  'topk',
  'bottomk',
  'count_values',
  'quantile',
  'limitk',
  'limit_ratio',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'start',
  'end',
  'step',
  'range',
  'inf',
  'nan',
]);

const WALK_OWN_CHILDREN = new Set(['VectorSelector', 'StringLiteral', 'NumberDurationLiteral']);

/**
 * One walk over a lezer tree: prints the canonical query, collects selectors and function names, and
 * refuses every node it does not know (fail closed when the grammar grows).
 */
class Printer {
  readonly selectors: Selector[] = [];
  readonly functions = new Set<string>();
  /** Source ranges of string literals and comments, whose characters are not PromQL code. */
  private readonly opaque: Array<[number, number]> = [];

  constructor(private readonly query: string) {}

  private text(n: SyntaxNode): string {
    return this.query.slice(n.from, n.to);
  }

  private fail(n: SyntaxNode, what?: string): PromQLParseError {
    return what ? parseError(this.query, n.from, what) : unexpected(this.query, n.from, n.to);
  }

  /** Children of a node without comments; a comment that Prometheus would end early is refused. */
  kids(n: SyntaxNode): SyntaxNode[] {
    const out: SyntaxNode[] = [];
    for (let c = n.firstChild; c; c = c.nextSibling) {
      if (c.type.isError) throw this.fail(c);
      if (c.name === 'LineComment') {
        // Prometheus ends a comment at `\r` or `\n`, the grammar at `\n` only: a `\r` is harmless only
        // as the comment's last character (a CRLF line end).
        const cr = this.text(c).indexOf('\r');
        if (cr >= 0 && cr !== c.to - c.from - 1)
          throw this.fail(c, 'carriage return inside a comment (Prometheus ends the comment there)');
        this.opaque.push([c.from, c.to]);
        continue;
      }
      out.push(c);
    }
    return out;
  }

  /**
   * Refuses comments directly inside a node from its first `[` after `from` on (or all of them): Prometheus
   * lexes ranges and durations in a mode without comments.
   */
  private noComments(n: SyntaxNode, from?: number): void {
    let start = n.from;
    if (from !== undefined) {
      start = from;
      for (let c = n.firstChild; c; c = c.nextSibling) {
        if (c.name !== 'LineComment' || c.to <= start) continue;
        if (this.query.slice(start, c.from).includes('[')) break;
        start = c.to;
      }
      start += this.query.slice(start).indexOf('[');
    }
    for (let c = n.firstChild; c; c = c.nextSibling)
      if (c.name === 'LineComment' && c.from > start)
        throw this.fail(c, 'comment inside a range or duration (Prometheus does not read comments there)');
  }

  /** A token node's own text (keyword, operator, name), checked against the token's shape. */
  private token(n: SyntaxNode, shape: RegExp): string {
    const own = n.firstChild ? this.kids(n) : [];
    const text = own.length === 1 && !own[0]!.firstChild ? this.text(own[0]!) : this.text(n);
    if (own.length > 1 || !shape.test(text)) throw this.fail(n);
    return text;
  }

  /** A literal made of anonymous tokens (sign and number): its text without comments and spaces. */
  private compact(n: SyntaxNode): string {
    this.kids(n); // records and checks comments
    let text = '';
    let at = n.from;
    for (let c = n.firstChild; c; c = c.nextSibling) {
      text += this.query.slice(at, c.from);
      at = c.to;
    }
    return (text + this.query.slice(at, n.to)).replace(/\s+/g, '');
  }

  private number(n: SyntaxNode, signed: boolean): string {
    const text = this.compact(n);
    const sign = signed && (text[0] === '-' || text[0] === '+') ? text[0] : '';
    if (!NUMBER_TOKEN.test(text.slice(sign.length))) throw this.fail(n);
    return text;
  }

  private string(n: SyntaxNode): string {
    if (n.name !== 'StringLiteral') throw this.fail(n);
    this.opaque.push([n.from, n.to]);
    try {
      return unquoteString(this.text(n));
    } catch (e) {
      throw this.fail(n, (e as Error).message);
    }
  }

  private labelName(n: SyntaxNode): string {
    if (n.name === 'LabelName') return this.token(n, WORD_TOKEN);
    if (n.name === 'QuotedLabelName') return quoteString(this.string(this.only(n)));
    throw this.fail(n);
  }

  private only(n: SyntaxNode): SyntaxNode {
    const k = this.kids(n);
    if (k.length !== 1) throw this.fail(n);
    return k[0]!;
  }

  private groupingLabels(n: SyntaxNode): string {
    if (n.name !== 'GroupingLabels') throw this.fail(n);
    return `(${this.kids(n)
      .map((c) => this.labelName(c))
      .join(', ')})`;
  }

  private selector(n: SyntaxNode): string {
    const matchers: LabelMatcher[] = [];
    let out = '';
    for (const c of this.kids(n)) {
      if (c.name === 'Identifier') {
        const name = this.token(c, WORD_TOKEN);
        if (PROMETHEUS_KEYWORDS.has(name.toLowerCase()))
          throw this.fail(c, `keyword ${JSON.stringify(name)} used as a metric name`);
        matchers.push({ name: '__name__', op: '=', value: name });
        out += name;
        continue;
      }
      if (c.name !== 'LabelMatchers') throw this.fail(c);
      const parts: string[] = [];
      for (const m of this.kids(c)) {
        if (m.name === 'QuotedLabelName') {
          const value = this.string(this.only(m));
          matchers.push({ name: '__name__', op: '=', value });
          parts.push(quoteString(value));
          continue;
        }
        if (m.name !== 'UnquotedLabelMatcher' && m.name !== 'QuotedLabelMatcher') throw this.fail(m);
        const [nameNode, opNode, valueNode, extra] = this.kids(m);
        if (!nameNode || !opNode || !valueNode || extra || opNode.name !== 'MatchOp') throw this.fail(m);
        const name =
          nameNode.name === 'LabelName' ? this.token(nameNode, WORD_TOKEN) : this.string(this.only(nameNode));
        const opText = this.token(opNode, OPERATOR_TOKEN);
        const op = OPS[this.only(opNode).name];
        if (!op || op !== opText) throw this.fail(opNode);
        const value = this.string(valueNode);
        matchers.push({ name, op, value });
        parts.push(`${nameNode.name === 'LabelName' ? name : quoteString(name)}${op}${quoteString(value)}`);
      }
      out += `{${parts.join(', ')}}`;
    }
    if (out === '') throw this.fail(n);
    this.selectors.push({ matchers });
    return out;
  }

  /** Duration expressions inside `[…]` and after `offset`: no spaces, as Prometheus prints them. */
  private duration(n: SyntaxNode): string {
    const k = this.kids(n);
    this.noComments(n);
    const [a, b, c] = k;
    if (n.name === 'NumberDurationLiteralInDurationContext') return this.number(n, false);
    if (n.name !== 'DurationExpr' && n.name !== 'OffsetDurationExpr') throw this.fail(n);
    if (k.length === 1 && a!.name === 'NumberDurationLiteralInDurationContext') return this.duration(a!);
    if (k.length === 1 && a!.name === 'DurationExpr') return `(${this.duration(a!)})`;
    if (k.length === 1 && (a!.name === 'DurationStep' || a!.name === 'DurationRange'))
      return `${this.token(a!, WORD_TOKEN)}()`;
    if (k.length === 2 && a!.name === 'UnaryOp')
      return `${this.token(a!, OPERATOR_TOKEN)}${this.duration(b!)}`;
    if (k.length === 3 && (a!.name === 'DurationMinOf' || a!.name === 'DurationMaxOf'))
      return `${this.token(a!, WORD_TOKEN)}(${this.duration(b!)}, ${this.duration(c!)})`;
    if (k.length === 3 && b!.name !== 'DurationExpr')
      return `${this.duration(a!)} ${this.token(b!, OPERATOR_TOKEN)} ${this.duration(c!)}`;
    throw this.fail(n);
  }

  /** A `( … )` clause holding one number, e.g. `fill(0)`. */
  private fillClause(n: SyntaxNode): string {
    const [kw, value, extra] = this.kids(n);
    if (!kw || !value || extra || value.name !== 'NumberDurationLiteral') throw this.fail(n);
    return `${this.token(kw, WORD_TOKEN)}(${this.number(value, true)})`;
  }

  private binary(n: SyntaxNode, k: SyntaxNode[]): string {
    if (k.length < 3) throw this.fail(n);
    const parts = [this.expr(k[0]!), this.token(k[1]!, /^(?:[A-Za-z0-9_]+|[-+*/%^<>=!~]{1,2})$/)];
    for (const m of k.slice(2, -1)) {
      if (m.name === 'BoolModifier') parts.push(this.token(this.only(m), WORD_TOKEN));
      else if (m.name === 'MatchingModifierClause') {
        for (const c of this.kids(m))
          parts.push(c.name === 'GroupingLabels' ? this.groupingLabels(c) : this.token(c, WORD_TOKEN));
      } else if (m.name === 'FillModifier') {
        for (const c of this.kids(m)) parts.push(this.fillClause(c));
      } else throw this.fail(m);
    }
    parts.push(this.expr(k[k.length - 1]!));
    return parts.join(' ');
  }

  private callBody(n: SyntaxNode): string {
    if (n.name !== 'FunctionCallBody') throw this.fail(n);
    return `(${this.kids(n)
      .map((c) => this.expr(c))
      .join(', ')})`;
  }

  expr(n: SyntaxNode): string {
    // Nodes that read their own children walk them once, there.
    const k = WALK_OWN_CHILDREN.has(n.name) ? [] : this.kids(n);
    switch (n.name) {
      case 'VectorSelector':
        return this.selector(n);
      case 'StringLiteral':
        return quoteString(this.string(n));
      case 'NumberDurationLiteral':
        return this.number(n, true);
      case 'ParenExpr':
        if (k.length !== 1) throw this.fail(n);
        return `(${this.expr(k[0]!)})`;
      case 'UnaryExpr': {
        const [op, e, extra] = k;
        if (!op || !e || extra || op.name !== 'UnaryOp') throw this.fail(n);
        return `${this.token(op, /^[-+]$/)}${this.expr(e)}`;
      }
      case 'BinaryExpr':
        return this.binary(n, k);
      case 'FunctionCall': {
        const [id, body, extra] = k;
        if (!id || !body || extra || id.name !== 'FunctionIdentifier') throw this.fail(n);
        const name = this.token(id, WORD_TOKEN);
        this.functions.add(name.toLowerCase());
        return `${name}${this.callBody(body)}`;
      }
      case 'AggregateExpr': {
        const op = k[0];
        if (op?.name !== 'AggregateOp' || k.length > 3) throw this.fail(n);
        const parts = [this.token(op, WORD_TOKEN)];
        for (const c of k.slice(1)) {
          if (c.name === 'FunctionCallBody') {
            parts.push(this.callBody(c));
          } else if (c.name === 'AggregateModifier') {
            const [kw, labels, extra] = this.kids(c);
            if (!kw || !labels || extra) throw this.fail(c);
            parts.push(
              ` ${this.token(kw, WORD_TOKEN)} ${this.groupingLabels(labels)}${parts.length === 1 ? ' ' : ''}`,
            );
          } else throw this.fail(c);
        }
        return parts.join('');
      }
      case 'MatrixSelector': {
        const [e, d, extra] = k;
        if (!e || !d || extra) throw this.fail(n);
        this.noComments(n, e.to);
        return `${this.expr(e)}[${this.duration(d)}]`;
      }
      case 'SubqueryExpr': {
        const [e, range, step, extra] = k;
        if (!e || !range || extra) throw this.fail(n);
        this.noComments(n, e.to);
        return `${this.expr(e)}[${this.duration(range)}:${step ? this.duration(step) : ''}]`;
      }
      case 'OffsetExpr': {
        const [e, kw, d, extra] = k;
        if (!e || !kw || !d || extra || kw.name !== 'Offset') throw this.fail(n);
        return `${this.expr(e)} ${this.token(kw, WORD_TOKEN)} ${this.duration(d)}`;
      }
      case 'StepInvariantExpr': {
        const [e, at, t, extra] = k;
        if (!e || !at || !t || extra || at.name !== 'At') throw this.fail(n);
        const time =
          t.name === 'NumberDurationLiteral'
            ? this.number(t, true)
            : t.name === 'AtModifierPreprocessors'
              ? `${this.token(t, WORD_TOKEN)}()`
              : undefined;
        if (time === undefined) throw this.fail(t);
        return `${this.expr(e)} @ ${time}`;
      }
      case 'AnchoredExpr':
      case 'SmoothedExpr': {
        const [e, kw, extra] = k;
        if (!e || !kw || extra) throw this.fail(n);
        return `${this.expr(e)} ${this.token(kw, WORD_TOKEN)}`;
      }
      default:
        throw this.fail(n);
    }
  }

  /** Refuses characters outside strings and comments that Prometheus' lexer does not know. */
  checkCode(): void {
    this.opaque.sort((a, b) => a[0] - b[0]);
    let at = 0;
    for (const [from, to] of [...this.opaque, [this.query.length, this.query.length] as [number, number]]) {
      const code = this.query.slice(at, from);
      if (!CODE_CHARS.test(code)) {
        const bad = at + [...code].findIndex((ch) => !CODE_CHARS.test(ch));
        const cp = this.query.codePointAt(bad)!;
        throw parseError(
          this.query,
          bad,
          `unexpected character U+${cp.toString(16).toUpperCase().padStart(4, '0')}`,
        );
      }
      at = Math.max(at, to);
    }
  }
}

/** Parses a query, returns its selectors and canonical text; throws PromQLParseError for anything refused. */
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
  const printer = new Printer(query);
  const top = tree.topNode;
  if (top.name !== 'PromQL') throw unexpected(query, top.from, top.to);
  const [expr, extra] = printer.kids(top);
  if (!expr) throw parseError(query, 0, 'no expression found in input');
  if (extra) throw unexpected(query, extra.from, extra.to);
  if (grammar === 'selector' && expr.name !== 'VectorSelector') {
    throw parseError(query, expr.from, 'expected a series selector such as {label="value"}');
  }
  const canonical = printer.expr(expr);
  printer.checkCode();
  return { selectors: printer.selectors, functions: printer.functions, canonical };
}

/** A query parser: `parseQuery` itself or a ParseCache's `parse`. */
export type QueryParser = (query: string, grammar: Grammar) => ParsedQuery;

/**
 * `parseQuery` remembering its recent answers (failures too): dashboards send the same query texts on every
 * refresh, and a parse is a pure function of the exact text and the grammar, so a hit is what a new parse
 * would return. Least recently used entries go first; each grammar has its own entries, bounded in number
 * and in characters kept, so that texts of one grammar never push out the other's.
 */
export class ParseCache {
  private readonly grammars: Record<Grammar, RecentParses>;

  constructor(maxEntries = 4096, maxChars = 4 * 1024 * 1024) {
    this.grammars = {
      expr: new RecentParses('expr', maxEntries, maxChars),
      selector: new RecentParses('selector', maxEntries, maxChars),
    };
  }

  readonly parse: QueryParser = (query, grammar) => this.grammars[grammar].parse(query);

  get size(): number {
    return this.grammars.expr.size + this.grammars.selector.size;
  }
}

type ParseOutcome = ParsedQuery | PromQLParseError;

/** One grammar's parses, keyed by the text itself (hashed once; a prefixed copy would be hashed again). */
class RecentParses {
  private readonly entries = new Map<string, ParseOutcome>();
  private chars = 0;

  constructor(
    private readonly grammar: Grammar,
    private readonly maxEntries: number,
    private readonly maxChars: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  parse(query: string): ParsedQuery {
    let outcome = this.entries.get(query);
    if (outcome === undefined) {
      try {
        outcome = parseQuery(query, this.grammar);
      } catch (e) {
        if (!(e instanceof PromQLParseError)) throw e;
        outcome = e;
      }
      this.remember(query, outcome);
    } else {
      this.entries.delete(query); // most recently used last
      this.entries.set(query, outcome);
    }
    if (outcome instanceof PromQLParseError) throw outcome;
    return outcome;
  }

  private remember(query: string, outcome: ParseOutcome): void {
    const size = (q: string, o: ParseOutcome) =>
      q.length + (o instanceof PromQLParseError ? o.message.length : o.canonical.length);
    const added = size(query, outcome);
    if (added > this.maxChars) return;
    this.entries.set(query, outcome);
    this.chars += added;
    for (const [q, o] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.chars <= this.maxChars) break;
      this.entries.delete(q);
      this.chars -= size(q, o);
    }
  }
}
