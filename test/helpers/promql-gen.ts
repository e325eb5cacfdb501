// Seeded, grammar-based PromQL generator for the ceems_lb differential tests (lezer grammar vs Prometheus'
// Go lexer): type-correct queries whose selectors mostly pin `uuid` to owned ids, salted with the lexical
// corners where two parsers can read the same text differently — comments ending at CR, Unicode spaces,
// string escapes and quote styles, odd numbers and durations, keyword case. Same seed, same queries.

export type Grammar = 'expr' | 'selector';

export interface GeneratedQuery {
  readonly query: string;
  /** `selector` queries are one series selector, fit for `match[]`. */
  readonly grammar: Grammar;
  /** Features used: `lex:…` lexical corners, `syn:…` constructs (variety counts, blame in reports). */
  readonly features: readonly string[];
}

/** The uuids the generated selectors pin (all owned by one user in the tests). */
export const OWNED_UUIDS = ['1001', '1002', 'aaaaaaaa-1111-4111-8111-000000000001'] as const;
export const UNRESTRICTED_METRIC = 'ceems_emissions_gCo2_kWh';
/** Separators Prometheus' lexer refuses outside strings; lezer's `std.whitespace` skips all but U+FEFF. */
export const UNICODE_SPACES = [
  ...'\v\f\u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff',
];

export const codePoint = (ch: string) =>
  `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/** mulberry32: a tiny 32-bit PRNG, uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `text feature|text feature|…` as pairs (keeps the tables short). */
function pairs(table: string): Array<[string, string]> {
  return table.split('|').map((p) => p.split(' ') as [string, string]);
}

type Type = 'vector' | 'scalar' | 'matrix' | 'string';
/**
 * A generated expression; `prec` is how tightly its outermost operator binds, as in Prometheus:
 * or 1 < and/unless 2 < comparisons 3 < +- 4 < * / % atan2 and unary minus 5 < ^ 6 < atoms 9.
 */
interface Expr {
  readonly text: string;
  readonly type: Type;
  readonly prec: number;
  /** A selector, call, aggregation or parenthesis that `[…]`, `offset` and `@` may follow. */
  readonly primary?: boolean;
}
const ATOM = 9;
const UNARY = 5;
const ARITH = pairs('+ 4|- 4|* 5|/ 5|% 5|^ 6').map(([op, p]): [string, number] => [op, Number(p)]);
const COMPARE = ['==', '!=', '>', '<', '>=', '<='];
const SET_OPS = pairs('and 2|unless 2|or 1').map(([op, p]): [string, number] => [op, Number(p)]);
const METRICS = [
  'ceems_compute_unit_cpus',
  'ceems_compute_unit_cpu_user_seconds_total',
  'ceems_compute_unit_memory_used_bytes',
  'uuid:ceems_cpu_usage:ratio_irate',
  'uuid:ceems_host_power_watts:pue',
];
const RANGE_FNS = ['rate', 'irate', 'increase', 'delta', 'deriv', 'changes', 'resets', 'avg_over_time'];
const RANGE_FNS_MORE = ['max_over_time', 'sum_over_time', 'count_over_time', 'last_over_time'];
const VECTOR_FNS = ['abs', 'ceil', 'floor', 'exp', 'ln', 'sqrt', 'sgn', 'sort', 'sort_desc', 'timestamp'];
const AGGREGATORS = ['sum', 'avg', 'min', 'max', 'count', 'group', 'stddev', 'stdvar'];
const GROUP_LABELS = ['hostname', 'manager', 'uuid', 'provider', 'le', 'on', 'offset', 'bool', 'by'];
const LABELS: Array<[string, string[]]> = [
  ['hostname', ['node-a', 'node-b', 'node-\\w+']],
  ['manager', ['slurm']],
  ['provider', ['owid', 'rte']],
  ['ceems_id', ['hpc-0']],
];
const DURATIONS = ['5m', '1m', '1h', '30s', '10m', '2h'];
const ODD_DURATIONS = pairs(
  '1h30m dur-compound|1m30s dur-compound|1ms dur-ms|500ms dur-ms|1y dur-year|1d dur-day-week|2w dur-day-week|90s dur-90s|300 dur-plain-number',
);
const NUMBERS = ['1', '2', '3', '0.5', '100', '10'];
const ODD_NUMBERS = pairs(
  '0x1F num-hex|0X1f num-hex-upper|1e-3 num-exp|1E3 num-exp|.5 num-leading-dot|5. num-trailing-dot|Inf num-inf|' +
    '+Inf num-inf|-inf num-inf|INF num-inf|NaN num-nan|nan num-nan|1_000 num-underscore|017 num-leading-zero|5m dur-as-number',
);
/** Escapes Prometheus refuses or reads as bytes, inserted into double/single-quoted strings. */
const ODD_ESCAPES = pairs(
  '\\q unknown|\\8 unknown|\\x4 short-hex|\\xff high-byte|\\377 high-byte|\\xc3\\xbf utf8-bytes|\\400 octal-overflow|' +
    '\\uD800 surrogate|\\U00110000 beyond-unicode|\\\n backslash-newline|\\\r backslash-cr',
);
/** Text hidden after a CR in a comment: Prometheus reads it, a lexer ending comments at LF only does not. */
const CR_PAYLOADS = [
  ' or {__name__=~".+"}',
  ' or ceems_compute_unit_cpus{uuid="2001"}',
  ' or ceems_compute_unit_cpus',
  ' unless ceems_compute_unit_cpus{uuid="1001"}',
  ' * 2',
];
const COMMENT_BITS = ['x', ' note', '"', "'", '`', '{', '}', '(', ')', '#', ' or x', '\u00a0', '\u2028', 'é'];

class Gen {
  readonly features = new Set<string>();
  /** Probability that a separator is an adversarial one (comment, CR, Unicode space). */
  private weird = 0;
  /** Probability that a string character is written as an escape. */
  private escapes = 0;

  constructor(private readonly rng: () => number) {}

  chance(p: number): boolean {
    return this.rng() < p;
  }
  int(n: number): number {
    return Math.floor(this.rng() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  tag(f: string): void {
    this.features.add(f);
  }

  query(): GeneratedQuery {
    this.weird = this.pick([0, 0, 0, 0.03, 0.03, 0.08, 0.08, 0.2, 0.4]);
    this.escapes = this.pick([0, 0, 0, 0, 0.1, 0.5]);
    if (this.chance(0.12)) {
      this.tag('syn:selector-grammar');
      return this.finish(`${this.gap()}${this.selector()}${this.gap()}`, 'selector');
    }
    const r = this.rng();
    const type: Type = r < 0.8 ? 'vector' : r < 0.9 ? 'scalar' : r < 0.97 ? 'matrix' : 'string';
    let text = `${this.gap()}${this.expr(type, 0).text}${this.gap()}`;
    if (type === 'vector' && this.chance(0.03)) text += this.crPayload(this.chance(0.3) ? '' : '\n');
    else if (this.chance(0.05)) {
      this.tag('lex:comment-eof');
      text += `#${this.commentText()}`;
    }
    return this.finish(text, 'expr');
  }

  private finish(query: string, grammar: Grammar): GeneratedQuery {
    const features = [...this.features].sort();
    this.features.clear();
    return { query, grammar, features };
  }

  /** An optional separator between two tokens. */
  gap(required = false): string {
    if (this.chance(this.weird)) return this.weirdGap();
    if (required) return this.chance(0.9) ? ' ' : '  ';
    return this.chance(0.6) ? '' : ' ';
  }

  private weirdGap(): string {
    const r = this.rng();
    if (r < 0.4) return this.comment();
    if (r < 0.6) {
      const [ws, f] = this.pick([
        ['\n', 'ws-lf'],
        ['\t', 'ws-tab'],
        ['\r', 'ws-cr'],
        ['\r\n', 'ws-crlf'],
      ]);
      this.tag(`lex:${f}`);
      return ws!;
    }
    const u = this.pick(UNICODE_SPACES);
    this.tag(`lex:uspace:${codePoint(u)}`);
    return this.chance(0.5) ? u : ` ${u} `;
  }

  private commentText(): string {
    let t = '';
    for (let i = this.int(5) - 1; i >= 0; i--) t += this.pick(COMMENT_BITS);
    if (/["'`]/.test(t)) this.tag('lex:comment-quote');
    if (/[{}()]/.test(t)) this.tag('lex:comment-bracket');
    return t;
  }

  private comment(): string {
    const [end, f] = this.pick([
      ['\n', 'comment-lf'],
      ['\n', 'comment-lf'],
      ['\r\n', 'comment-crlf'],
      ['\r', 'comment-cr'],
    ]);
    this.tag(`lex:${f}`);
    return ` #${this.commentText()}${end}`;
  }

  /** `#…<CR><payload><end>`: the payload is code for Prometheus, comment for an LF-only lexer. */
  private crPayload(end: string, payloads = CR_PAYLOADS): string {
    this.tag(end === '' ? 'lex:comment-cr-payload-eof' : 'lex:comment-cr-payload');
    return ` #${this.commentText()}\r${this.pick(payloads)}${end}`;
  }

  /** A keyword, now and then in another case (both lexers lower-case keywords). */
  kw(word: string): string {
    if (!this.chance(0.08)) return word;
    this.tag('lex:keyword-case');
    return this.chance(0.5) ? word.toUpperCase() : word[0]!.toUpperCase() + word.slice(1);
  }

  /** A string literal whose value is `value` (unless an odd escape is injected). */
  str(value: string, odd = 0): string {
    const r = this.rng();
    let q = r < 0.65 ? '"' : r < 0.82 ? "'" : '`';
    if (q === '`' && value.includes('`')) q = '"';
    this.tag(q === '"' ? 'lex:quote-double' : q === "'" ? 'lex:quote-single' : 'lex:quote-backtick');
    if (q === '`') {
      if (value.includes('\n')) this.tag('lex:lf-in-raw-string');
      return `\`${value}\``;
    }
    const parts = [...value].map((ch) => this.char(ch, q));
    if (this.chance(odd)) {
      const [esc, f] = this.pick(ODD_ESCAPES);
      this.tag(`lex:escape-odd:${f}`);
      parts.splice(this.int(parts.length + 1), 0, esc);
    }
    if (this.chance(odd / 2)) {
      this.tag('lex:escape-other-quote');
      parts.splice(this.int(parts.length + 1), 0, q === '"' ? "\\'" : '\\"');
    }
    return q + parts.join('') + q;
  }

  private char(ch: string, q: string): string {
    const c = ch.codePointAt(0)!;
    if (ch === q || ch === '\\') {
      this.tag(ch === '\\' ? 'lex:escape-backslash' : 'lex:escape-quote');
      return `\\${ch}`;
    }
    const simple: Record<string, string> = { '\n': 'n', '\r': 'r', '\t': 't', '\v': 'v', '\f': 'f' };
    if (ch !== '\n' && !this.chance(this.escapes)) return ch;
    if (simple[ch] && (ch === '\n' || this.chance(0.7))) {
      this.tag('lex:escape-simple');
      return `\\${simple[ch]}`;
    }
    const hex = (n: number) => {
      const h = c.toString(16).padStart(n, '0');
      return this.chance(0.3) ? h.toUpperCase() : h;
    };
    const r = this.rng();
    if (c < 0x80 && r < 0.3) {
      this.tag('lex:escape-x');
      return `\\x${hex(2)}`;
    }
    if (c < 0x80 && r < 0.5) {
      this.tag('lex:escape-octal');
      return `\\${c.toString(8).padStart(3, '0')}`;
    }
    if (c <= 0xffff && r < 0.8) {
      this.tag('lex:escape-u');
      return `\\u${hex(4)}`;
    }
    this.tag('lex:escape-U');
    return `\\U${hex(8)}`;
  }

  /** A label value salted with characters that are only safe inside strings. */
  private oddValue(base: string): string {
    if (!this.chance(0.15)) return base;
    const r = this.rng();
    let extra: string;
    if (r < 0.4) {
      extra = this.pick(UNICODE_SPACES);
      this.tag(`lex:uspace-in-string:${codePoint(extra)}`);
    } else {
      const [s, f] = this.pick([
        ['\r', 'cr-in-string'],
        ['#', 'hash-in-string'],
        ['"\'`', 'quotes-in-string'],
        ['}', 'brace-in-string'],
        ['\u{1F600}', 'astral-in-string'],
        ['\uFFFD', 'replacement-char'],
        ['\n', 'lf-in-string'],
        ['é', 'latin1-in-string'],
        ['\u0000\u0007\u007f', 'control-in-string'],
      ]);
      extra = s!;
      this.tag(`lex:${f}`);
    }
    const at = this.int(base.length + 1);
    return base.slice(0, at) + extra + base.slice(at);
  }

  private matcher(name: string, op: string, value: string, odd = 0.02): string {
    let n = name;
    if (this.chance(0.04)) {
      this.tag('lex:quoted-label-name');
      n = this.str(name);
    }
    return `${n}${this.gap()}${op}${this.gap()}${this.str(value, odd)}`;
  }

  private uuidMatcher(): string {
    const r = this.rng();
    if (r < 0.22) {
      this.tag('syn:uuid-alternation');
      const ids = OWNED_UUIDS.filter(() => this.chance(0.6));
      return this.matcher('uuid', '=~', (ids.length > 0 ? ids : [OWNED_UUIDS[0]]).join('|'));
    }
    return this.matcher('uuid', '=', this.pick(OWNED_UUIDS));
  }

  /** A vector selector: mostly pinned to owned uuids, sometimes unpinned (denied) or unrestricted. */
  selector(): string {
    this.tag('syn:selector');
    const unrestricted = this.chance(0.06);
    let metric = unrestricted ? UNRESTRICTED_METRIC : this.pick(METRICS);
    if (!unrestricted && this.chance(0.01)) {
      this.tag('lex:keyword-metric-name');
      metric = this.pick(['sum', 'by', 'offset', 'start', 'bool', 'Inf', 'nan', 'step']);
    }
    const ms: string[] = [];
    if (unrestricted) this.tag('syn:unrestricted-metric');
    if (!unrestricted && this.chance(0.06)) {
      this.tag('syn:unpinned');
      const bad = this.pick(['', 'uuid=~".+"', 'uuid!="1001"', 'uuid=~"100."', 'uuid=~"1001|.*"']);
      if (bad) ms.push(bad);
    } else if (!unrestricted || this.chance(0.3)) ms.push(this.uuidMatcher());
    for (let i = this.int(3) - 1; i > 0; i--) {
      const [name, values] = this.pick(LABELS);
      ms.push(this.matcher(name, this.pick(['=', '=', '!=', '=~']), this.oddValue(this.pick(values!)), 0.1));
    }
    if (this.chance(0.05)) {
      this.tag('syn:keyword-label');
      ms.push(this.matcher(this.pick(['on', 'offset', 'bool', 'by', 'inf', 'nan', 'group_left']), '!=', 'x'));
    }
    ms.sort(() => this.rng() - 0.5);
    const r = this.rng();
    let name = metric;
    if (r < 0.1) {
      this.tag('syn:name-matcher-eq');
      ms.unshift(`__name__${this.gap()}=${this.gap()}${this.str(metric)}`);
      name = '';
    } else if (r < 0.14) {
      this.tag('lex:quoted-metric-name');
      ms.unshift(this.str(metric));
      name = '';
    } else if (r < 0.18 && !unrestricted) {
      this.tag('syn:name-matcher-re');
      ms.unshift(`__name__=~${this.str(`${metric}|ceems_compute_unit_cpus`)}`);
      name = '';
    } else if (r < 0.21) {
      this.tag('syn:name-matcher-neq');
      ms.push(`__name__!=${this.str('up')}`);
      // Prometheus refuses a `__name__` matcher next to a metric name; the lezer grammar does not.
      if (this.chance(0.7)) name = '';
      else this.tag('syn:name-set-twice');
    } else if (r < 0.24 && ms.length > 0) {
      this.tag('syn:no-metric-name');
      name = '';
    }
    if (ms.length === 0) return name;
    let inner = ms.map((m) => `${this.gap()}${m}${this.gap()}`).join(',');
    if (this.chance(0.05)) {
      this.tag('lex:trailing-comma');
      inner += ',';
    }
    if (this.chance(0.01)) inner += this.crPayload('\n', [', hostname=~".*"', ', uuid!="1001"']);
    return `${name}${name ? this.gap() : ''}{${inner}}`;
  }

  duration(): string {
    if (!this.chance(0.2)) return this.pick(DURATIONS);
    const [d, f] = this.pick(ODD_DURATIONS);
    this.tag(`lex:${f}`);
    return d;
  }

  number(): string {
    if (!this.chance(0.2)) return this.pick(NUMBERS);
    const [n, f] = this.pick(ODD_NUMBERS);
    this.tag(`lex:${f}`);
    return n;
  }

  /** `offset` and `@` after a selector, range selector or subquery (in either order). */
  private modifiers(text: string): string {
    const mods: string[] = [];
    if (this.chance(0.15)) {
      this.tag('syn:offset');
      let d = this.chance(0.1) ? '0s' : this.duration();
      if (d === '0s') this.tag('lex:dur-zero');
      if (this.chance(0.2)) {
        this.tag('syn:offset-negative');
        d = `-${this.gap()}${d}`;
      }
      mods.push(`${this.kw('offset')}${this.gap(true)}${d}`);
    }
    if (this.chance(0.1)) {
      const r = this.rng();
      let t: string;
      if (r < 0.3) {
        this.tag(r < 0.15 ? 'syn:at-start' : 'syn:at-end');
        t = `${this.kw(r < 0.15 ? 'start' : 'end')}${this.gap()}(${this.gap()})`;
      } else {
        this.tag('syn:at-time');
        t = this.pick(['1700000000', '1.5e3', '-10', '1700000000.5', '0x10', '5m']);
      }
      mods.push(`@${this.gap()}${t}`);
    }
    if (mods.length === 2 && this.chance(0.5)) mods.reverse();
    return [text, ...mods].join(this.gap(true));
  }

  private paren(e: Expr): Expr {
    let inner = `${this.gap()}${e.text}${this.gap()}`;
    if (e.type === 'vector' && this.chance(0.02)) inner += this.crPayload(this.chance(0.8) ? '\n' : '\r\n');
    if (e.text.startsWith('(')) this.tag('syn:nested-parens');
    return { text: `(${inner})`, type: e.type, prec: ATOM, primary: true };
  }

  /** `e` as an operand binding at least as tightly as `prec`. */
  private operand(e: Expr, prec: number): string {
    return e.prec >= prec ? e.text : this.paren(e).text;
  }

  private call(name: string, args: string[], type: Type): Expr {
    const body = args.map((a) => `${this.gap()}${a}${this.gap()}`).join(',');
    return { text: `${name}${this.gap()}(${body})`, type, prec: ATOM, primary: true };
  }

  private matrix(depth: number): Expr {
    if (depth < 3 && this.chance(0.2)) {
      this.tag('syn:subquery');
      const v = this.expr('vector', depth + 1);
      const base = v.primary ? v.text : this.paren(v).text;
      const step = this.chance(0.3) ? '' : `${this.gap()}${this.duration()}`;
      const text = `${base}${this.gap()}[${this.gap()}${this.duration()}${this.gap()}:${step}${this.gap()}]`;
      return { text: this.modifiers(text), type: 'matrix', prec: ATOM };
    }
    const text = `${this.selector()}${this.gap()}[${this.gap()}${this.duration()}${this.gap()}]`;
    return { text: this.modifiers(text), type: 'matrix', prec: ATOM };
  }

  private grouping(): string {
    const labels = GROUP_LABELS.filter(() => this.chance(0.25)).map((l) => {
      if (!this.chance(0.03)) return l;
      this.tag('lex:quoted-label-name');
      return this.str(l);
    });
    const trailing = labels.length > 0 && this.chance(0.05) ? ',' : '';
    if (trailing) this.tag('lex:trailing-comma');
    return `(${labels.map((l) => `${this.gap()}${l}${this.gap()}`).join(',')}${trailing})`;
  }

  private aggregation(depth: number): Expr {
    const r = this.rng();
    let op: string;
    const args: string[] = [];
    if (r < 0.12) {
      op = this.pick(['topk', 'bottomk']);
      args.push(this.pick(['3', '1', '5']));
    } else if (r < 0.2) {
      op = 'quantile';
      args.push(this.pick(['0.9', '0.5', '.99']));
    } else if (r < 0.26) {
      op = 'count_values';
      args.push(this.str(this.oddValue('x'), 0.05));
    } else op = this.pick(AGGREGATORS);
    this.tag(`syn:agg-${op}`);
    args.push(this.expr('vector', depth + 1).text);
    const body = args.map((a) => `${this.gap()}${a}${this.gap()}`).join(',');
    const kw = this.kw(op);
    if (this.chance(0.4))
      return { text: `${kw}${this.gap()}(${body})`, type: 'vector', prec: ATOM, primary: true };
    const mod = `${this.kw(this.chance(0.7) ? 'by' : 'without')}${this.gap()}${this.grouping()}`;
    const before = this.chance(0.5);
    this.tag(before ? 'syn:agg-modifier-before' : 'syn:agg-modifier-after');
    const text = before
      ? `${kw}${this.gap(true)}${mod}${this.gap()}(${body})`
      : `${kw}${this.gap()}(${body})${this.gap()}${mod}`;
    return { text, type: 'vector', prec: ATOM, primary: true };
  }

  private binary(type: 'vector' | 'scalar', depth: number): Expr {
    const r = this.rng();
    if (type === 'vector' && r < 0.25) {
      const [op, prec] = this.pick(SET_OPS);
      this.tag(`syn:set-${op}`);
      const l = this.expr('vector', depth + 1);
      const rr = this.expr('vector', depth + 1);
      const m = this.chance(0.3) ? `${this.gap(true)}${this.matching(false)}` : '';
      const text = `${this.operand(l, prec)}${this.gap(true)}${this.kw(op)}${m}${this.gap(true)}${this.operand(rr, prec + 1)}`;
      return { text, type, prec };
    }
    const cmp = r < 0.45;
    const [op, prec]: [string, number] = cmp
      ? [this.pick(COMPARE), 3]
      : this.chance(0.08)
        ? ['atan2', 5]
        : this.pick(ARITH);
    // Operand types: scalar op scalar for scalars; for vectors at least one vector side.
    const lt: Type = type === 'scalar' || this.chance(0.25) ? 'scalar' : 'vector';
    const rt: Type = type === 'scalar' || (lt === 'vector' && this.chance(0.4)) ? 'scalar' : 'vector';
    const both = lt === 'vector' && rt === 'vector';
    if (op === 'atan2' && !both) return this.binary(type, depth);
    const l = this.expr(lt, depth + 1);
    const rr = this.expr(rt, depth + 1);
    const mods: string[] = [];
    if (cmp && (type === 'scalar' || this.chance(0.3))) {
      this.tag('syn:bool');
      mods.push(this.kw('bool'));
    } else if (!cmp && this.chance(0.01)) {
      this.tag('syn:bool-not-comparison');
      mods.push(this.kw('bool'));
    }
    if (both && this.chance(0.3)) mods.push(this.matching(true));
    this.tag(`syn:op-${op}`);
    const right = op === '^';
    const mid = [op, ...mods].join(this.gap(true));
    // A word (`atan2`, `bool`, `on`) must be kept apart from the operands.
    const word = /[a-z]/i.test(mid);
    const left = this.operand(l, right ? prec + 1 : prec);
    const rightText = this.operand(rr, right ? prec : prec + 1);
    // A bare `group_left` takes a following `(` as its label list (both parsers): give it an empty one.
    const list = /group_(left|right)$/i.test(mid) && rightText.startsWith('(') ? '()' : '';
    const text = `${left}${this.gap(word)}${mid}${list}${this.gap(word)}${rightText}`;
    return { text, type, prec };
  }

  /** `on(…)`/`ignoring(…)`, with `group_left/right(…)` when the operator allows grouping. */
  private matching(grouping: boolean): string {
    const on = this.chance(0.6);
    this.tag(on ? 'syn:on' : 'syn:ignoring');
    const labels = ['hostname', 'manager', 'ceems_id'].filter(() => this.chance(0.4));
    const list = (ls: string[]) =>
      `${this.gap()}(${ls.map((l) => `${this.gap()}${l}${this.gap()}`).join(',')})`;
    let text = `${this.kw(on ? 'on' : 'ignoring')}${list(labels)}`;
    if (grouping && this.chance(0.4)) {
      const side = this.chance(0.5) ? 'group_left' : 'group_right';
      this.tag(`syn:${side}`);
      const extra = this.chance(0.5) ? list(['provider', 'uuid'].filter(() => this.chance(0.5))) : '';
      text += `${this.gap(true)}${this.kw(side)}${extra}`;
    }
    return text;
  }

  private vector(depth: number): Expr {
    const r = depth >= 4 ? this.rng() * 0.3 : this.rng();
    if (r < 0.22) {
      const s = this.selector();
      const text = this.modifiers(s);
      return { text, type: 'vector', prec: ATOM, primary: text === s };
    }
    if (r < 0.3) {
      this.tag('syn:range-function');
      return this.call(
        this.pick(this.chance(0.7) ? RANGE_FNS : RANGE_FNS_MORE),
        [this.matrix(depth).text],
        'vector',
      );
    }
    if (r < 0.36) {
      this.tag('syn:function');
      return this.call(this.pick(VECTOR_FNS), [this.expr('vector', depth + 1).text], 'vector');
    }
    if (r < 0.4) {
      const f = this.pick(['label_replace', 'label_join']);
      this.tag(`syn:${f}`);
      const v = this.expr('vector', depth + 1).text;
      const strs =
        f === 'label_replace'
          ? [
              this.str('dst'),
              this.str('$1', 0.05),
              this.str(this.oddValue('hostname')),
              this.str('(.*)', 0.05),
            ]
          : [this.str('dst'), this.str(this.oddValue(','), 0.05), this.str('hostname'), this.str('uuid')];
      return this.call(f, [v, ...strs], 'vector');
    }
    if (r < 0.43) {
      const f = this.pick([
        'quantile_over_time',
        'predict_linear',
        'histogram_quantile',
        'round',
        'clamp_min',
      ]);
      this.tag(`syn:${f}`);
      if (f === 'quantile_over_time') return this.call(f, ['0.9', this.matrix(depth).text], 'vector');
      if (f === 'predict_linear') return this.call(f, [this.matrix(depth).text, '3600'], 'vector');
      if (f === 'histogram_quantile')
        return this.call(f, ['0.9', this.expr('vector', depth + 1).text], 'vector');
      return this.call(
        f,
        [this.expr('vector', depth + 1).text, this.expr('scalar', depth + 1).text],
        'vector',
      );
    }
    if (r < 0.45) {
      this.tag('syn:vector-fn');
      return this.call('vector', [this.expr('scalar', depth + 1).text], 'vector');
    }
    if (r < 0.6) return this.aggregation(depth);
    if (r < 0.8) return this.binary('vector', depth);
    if (r < 0.9) return this.unary('vector', depth);
    return this.paren(this.expr('vector', depth + 1));
  }

  private unary(type: 'vector' | 'scalar', depth: number): Expr {
    this.tag('syn:unary');
    const e = this.expr(type, depth + 1);
    const op = this.chance(0.8) ? '-' : '+';
    return { text: `${op}${this.gap()}${this.operand(e, UNARY + 1)}`, type, prec: UNARY };
  }

  private scalar(depth: number): Expr {
    const r = depth >= 4 ? this.rng() * 0.6 : this.rng();
    if (r < 0.6) {
      const n = this.number();
      return { text: n, type: 'scalar', prec: /^[-+]/.test(n) ? UNARY : ATOM };
    }
    if (r < 0.7) {
      this.tag('syn:scalar-fn');
      return this.call('scalar', [this.expr('vector', depth + 1).text], 'scalar');
    }
    if (r < 0.76) return this.call(this.pick(['time', 'pi']), [], 'scalar');
    if (r < 0.88) return this.binary('scalar', depth);
    if (r < 0.94) return this.unary('scalar', depth);
    return this.paren(this.expr('scalar', depth + 1));
  }

  expr(type: Type, depth: number): Expr {
    switch (type) {
      case 'vector':
        return this.vector(depth);
      case 'scalar':
        return this.scalar(depth);
      case 'matrix':
        return this.matrix(depth);
      case 'string':
        this.tag('syn:string-expr');
        return { text: this.str(this.oddValue('text'), 0.1), type, prec: ATOM };
    }
  }
}

/** `n` queries from `seed`; the same arguments always give the same list. */
export function generate(seed: number, n: number): GeneratedQuery[] {
  const g = new Gen(mulberry32(seed));
  return Array.from({ length: n }, () => g.query());
}
