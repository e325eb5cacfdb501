// The seeded PromQL generator of the LB differential tests: same seed, same queries; every lexical corner
// it promises shows up in 10,000 queries; its queries are grammatical except where a feature is meant to
// break the lezer grammar; most pin uuid and are allowed.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parser } from '@prometheus-io/lezer-promql';
import { decide } from '../../helpers/promql-diff.js';
import { codePoint, generate, mulberry32, UNICODE_SPACES } from '../../helpers/promql-gen.js';

const N = 10_000;
const queries = generate(7, N);
const counts = new Map<string, number>();
for (const q of queries) for (const f of q.features) counts.set(f, (counts.get(f) ?? 0) + 1);
/** Each of the space-separated `names`, prefixed, is a feature of at least `min` queries. */
function need(min: number, prefix: string, names: string): void {
  for (const f of names.split(' ').map((n) => prefix + n))
    assert.ok((counts.get(f) ?? 0) >= min, `${f}: ${counts.get(f) ?? 0} < ${min}`);
}

/** Features meant to be unreadable for the lezer grammar itself. */
const BREAKS_LEZER = /^lex:(comment-cr$|keyword-metric-name|num-hex-upper|num-trailing-dot|uspace:U\+FEFF)/;

describe('PromQL generator', () => {
  it('is reproducible per seed, and a longer run extends a shorter one', () => {
    assert.deepEqual(generate(7, 500), queries.slice(0, 500));
    assert.deepEqual(generate(123, 200), generate(123, 200));
    const other = generate(8, 200).map((q) => q.query);
    const same = other.filter((q, i) => q === queries[i]!.query).length;
    assert.ok(same < 20, `seeds 7 and 8 share ${same} of 200 queries`);
  });

  it('draws uniform numbers in [0, 1)', () => {
    const rng = mulberry32(42);
    const xs = Array.from({ length: 10_000 }, rng);
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    const mean = xs.reduce((a, b) => a + b) / xs.length;
    assert.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`);
  });

  it('uses every lexical corner it promises', () => {
    const spaces = UNICODE_SPACES.map(codePoint).join(' ');
    need(100, 'lex:uspace:', spaces);
    need(2, 'lex:uspace-in-string:', spaces);
    need(500, 'lex:', 'comment-lf comment-crlf comment-cr comment-quote comment-bracket');
    need(50, 'lex:', 'comment-eof comment-cr-payload ws-cr ws-crlf ws-tab ws-lf');
    need(10, 'lex:', 'comment-cr-payload-eof');
    need(500, 'lex:', 'escape-x escape-octal escape-u escape-U');
    need(20, 'lex:', 'escape-simple escape-quote escape-other-quote escape-backslash');
    need(
      20,
      'lex:escape-odd:',
      'unknown short-hex high-byte utf8-bytes octal-overflow surrogate beyond-unicode',
    );
    need(20, 'lex:escape-odd:', 'backslash-newline backslash-cr');
    need(1000, 'lex:', 'quote-double quote-single quote-backtick');
    need(200, 'lex:', 'quoted-label-name quoted-metric-name keyword-case trailing-comma');
    need(
      20,
      'lex:',
      'cr-in-string lf-in-string hash-in-string astral-in-string replacement-char control-in-string',
    );
    need(20, 'lex:num-', 'hex hex-upper exp leading-dot trailing-dot inf nan underscore leading-zero');
    need(20, 'lex:dur-', 'compound ms year zero day-week plain-number as-number');
    need(20, 'lex:', 'keyword-metric-name');
  });

  it('uses every construct it promises', () => {
    need(200, 'syn:', 'name-matcher-eq name-matcher-re name-matcher-neq no-metric-name');
    need(100, 'syn:', 'offset offset-negative at-start at-end at-time subquery bool unary nested-parens');
    need(50, 'syn:', 'on ignoring group_left group_right label_replace label_join');
    need(100, 'syn:', 'agg-modifier-before agg-modifier-after agg-topk agg-count_values agg-quantile');
    need(50, 'syn:op-', '+ - * / % ^ == != > < >= <= atan2');
    need(100, 'syn:', 'set-and set-or set-unless selector-grammar string-expr');
    need(300, 'syn:', 'unpinned unrestricted-metric uuid-alternation');
    need(20, 'syn:', 'name-set-twice bool-not-comparison');
  });

  it('writes grammatical PromQL except where a feature is meant to break the lezer grammar', () => {
    const strict = parser.configure({ strict: true });
    const unexplained = queries.filter((q) => {
      if (q.features.some((f) => BREAKS_LEZER.test(f))) return false;
      try {
        strict.parse(q.query);
        return false;
      } catch {
        return true;
      }
    });
    assert.deepEqual(
      unexplained.slice(0, 5).map((q) => q.query),
      [],
    );
  });

  it('mostly pins uuid: most queries are allowed, some denied, some refused', () => {
    const kinds = { allow: 0, deny: 0, invalid: 0 };
    for (const d of decide(queries)) kinds[d.decision.kind]++;
    assert.ok(kinds.allow > 0.45 * N, JSON.stringify(kinds));
    assert.ok(kinds.deny > 0.02 * N, JSON.stringify(kinds));
    assert.ok(kinds.invalid > 0.1 * N, JSON.stringify(kinds));
    assert.ok(queries.every((q) => q.query.trim() !== ''));
  });
});
