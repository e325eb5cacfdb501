// The canonical query the load balancer forwards (issue: what is checked is what runs): printed from the
// parse tree the access rule walked, it must mean the same to Prometheus as the tree did to the rule;
// text that Prometheus' lexer reads differently from the lezer grammar is refused.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type AccessPolicy, checkQueries } from '../../../src/lb/access.js';
import { PromQLParseError, parseQuery, quoteString, unquoteString } from '../../../src/lb/promql.js';
import { readCorpus } from '../../fixtures/lb/setup.js';
import { ROOT } from '../../helpers/process.js';

const policy: AccessPolicy = {
  restrictingLabel: 'uuid',
  unrestrictedMetrics: new Set(['ceems_emissions_gCo2_kWh']),
};
const canonical = (q: string) => parseQuery(q).canonical;
const refused = (q: string, why: RegExp) =>
  assert.throws(
    () => parseQuery(q),
    (e: Error) => e instanceof PromQLParseError && why.test(e.message),
    JSON.stringify(q),
  );

describe('canonical query', () => {
  it('drops comments, so a query that ends with one is accepted (it was refused before)', () => {
    assert.equal(canonical('a{uuid="1"} # my panel'), 'a{uuid="1"}');
    assert.equal(canonical('# why\nsum by (uuid) ( # inner\n a{uuid="1"}\n)'), 'sum by (uuid) (a{uuid="1"})');
    assert.equal(canonical('a{uuid="1"} # CRLF line end\r\n+ b{uuid="1"}'), 'a{uuid="1"} + b{uuid="1"}');
    const d = checkQueries(['a{uuid="1"} # mine'], 'expr', policy);
    assert.equal(d.kind, 'allow');
    assert.deepEqual(d.kind === 'allow' && d.queries, ['a{uuid="1"}']);
  });

  it('refuses a carriage return inside a comment: Prometheus ends the comment there', () => {
    const attack = '(ceems_compute_unit_cpus{uuid="1"} #x\ror {__name__=~"ceems_compute_unit_cpus"}\n)';
    refused(attack, /carriage return inside a comment/);
    assert.equal(checkQueries([attack], 'expr', policy).kind, 'invalid');
    for (const cr of ['#\r\ra', '#x\rx\n', '# \r \n']) refused(`a{uuid="1"} ${cr}`, /carriage return/);
  });

  it('refuses every character outside strings and comments that Prometheus does not know', () => {
    for (const sp of [
      '\u00a0',
      '\u0085',
      '\u1680',
      '\u2000',
      '\u200a',
      '\u2028',
      '\u2029',
      '\u202f',
      '\u205f',
      '\u3000',
      '\ufeff',
      '\v',
      '\f',
    ]) {
      refused(`a{uuid="1"}${sp}+ b{uuid="1"}`, /unexpected/);
      refused(`a{uuid="1"${sp}}`, /unexpected/);
    }
    // inside strings and comments they are data
    assert.equal(canonical('a{uuid="1", job="x\u2028y"} # \u00a0'), 'a{uuid="1", job="x\u2028y"}');
  });

  it('re-quotes every string with double quotes and escapes Prometheus reads back to the same value', () => {
    assert.equal(canonical("a{uuid='1', job=`C:\\x`}"), 'a{uuid="1", job="C:\\\\x"}');
    assert.equal(
      canonical('a{uuid="1\\u0030", x="\\x41\\101\\n\\t\\a"}'),
      'a{uuid="10", x="AA\\n\\t\\u0007"}',
    );
    assert.equal(
      canonical('label_replace(a{uuid="1"}, "dst", "$1", \'src\', `(.*)`)'),
      'label_replace(a{uuid="1"}, "dst", "$1", "src", "(.*)")',
    );
    assert.equal(quoteString('a"b\\c\u0000\u007f\ufffd\u2028é'), '"a\\"b\\\\c\\u0000\\u007f\\ufffd\u2028é"');
    for (const v of ['', 'a"b', '\\', '\r\n\t', '\u0000\u001f\u007f', '\ufffd', 'é😀', '\u2028']) {
      assert.equal(unquoteString(quoteString(v)), v);
    }
  });

  it('keeps a carriage return of a raw string (Prometheus does not strip it)', () => {
    assert.equal(unquoteString('`1\r2`'), '1\r2');
    const d = checkQueries(['a{uuid=`10\r01`}'], 'expr', policy);
    assert.equal(d.kind, 'deny', 'a uuid with a CR is no literal id');
  });

  it('refuses byte escapes above ASCII and raw U+FFFD, which cannot be printed back as the same bytes', () => {
    refused('a{uuid="1", x="\\xff"}', /non-ASCII byte escape/);
    refused('a{uuid="1", x="\\377"}', /non-ASCII byte escape/);
    refused('a{uuid="1", x="\ufffd"}', /invalid UTF-8 rune/);
    assert.equal(canonical('a{uuid="1", x="\\ufffd\\x7f"}'), 'a{uuid="1", x="\\ufffd\\u007f"}');
  });

  it('refuses comments inside a range or subquery, where Prometheus reads durations only', () => {
    for (const q of [
      'a{uuid="1"}[ #c\n5m]',
      'a{uuid="1"}[5m #c\n]',
      'a{uuid="1"}[5m: #c\n1m]',
      'a{uuid="1"}[5m:1m #c\n]',
    ])
      refused(q, /comment inside a range/);
    assert.equal(canonical('a{uuid="1"} #c\n[5m]'), 'a{uuid="1"}[5m]');
  });

  it('refuses Prometheus keywords as metric names (Prometheus reads a keyword there)', () => {
    for (const kw of ['sum', 'SUM', 'by', 'offset', 'start', 'inf', 'and', 'count_values', 'group_left']) {
      assert.throws(() => parseQuery(`${kw}{uuid="1"}`), PromQLParseError, kw);
    }
    assert.equal(canonical('rate{uuid="1"}'), 'rate{uuid="1"}');
  });

  it('prints every construct with its tokens in order', () => {
    const cases: Array<[string, string]> = [
      ['sum(rate(a{uuid=~"1|2"}[5m])) by (uuid)', 'sum(rate(a{uuid=~"1|2"}[5m])) by (uuid)'],
      ['sum  without(x,y)(a{uuid="1"})', 'sum without (x, y) (a{uuid="1"})'],
      [
        'a{uuid="1"} / ignoring(x) group_right(y) b{uuid="1"}',
        'a{uuid="1"} / ignoring (x) group_right (y) b{uuid="1"}',
      ],
      ['a{uuid="1"} > bool on() b{uuid="1"}', 'a{uuid="1"} > bool on () b{uuid="1"}'],
      [
        'max_over_time(a{uuid="1"}[1h:5m] offset -1d @ end())',
        'max_over_time(a{uuid="1"}[1h:5m] offset -1d @ end())',
      ],
      ['a{uuid="1"} @ 1.5e3 offset 1h30m', 'a{uuid="1"} @ 1.5e3 offset 1h30m'],
      ['- -a{uuid="1"} ^ 0x1F % .5', '--a{uuid="1"} ^ 0x1F % .5'],
      [
        'topk(3, a{uuid="1"}) unless a{uuid="1"} or vector(Inf)',
        'topk(3, a{uuid="1"}) unless a{uuid="1"} or vector(Inf)',
      ],
      ['count_values("v", a{uuid="1"})', 'count_values("v", a{uuid="1"})'],
      ['{__name__="a", "uuid"="1"}', '{__name__="a", "uuid"="1"}'],
      ['(((a{uuid="1"})))[5m:]', '(((a{uuid="1"})))[5m:]'],
      ['- # sign\n 5', '-5'],
      ['NaN', 'NaN'],
    ];
    for (const [q, want] of cases) assert.equal(canonical(q), want, q);
  });

  it('is a fixed point with the same selectors, over the legitimate and attack corpora', () => {
    let printed = 0;
    for (const file of ['legit-queries.txt', 'attack-queries.txt']) {
      for (const line of readCorpus(join(ROOT, 'test/fixtures/lb', file))) {
        const query = line.replace(/^\[[a-z]+\] /, '');
        for (const q of query.split(' ‖ ')) {
          for (const grammar of ['expr', 'selector'] as const) {
            let parsed: ReturnType<typeof parseQuery>;
            try {
              parsed = parseQuery(q, grammar);
            } catch {
              continue;
            }
            const again = parseQuery(parsed.canonical, grammar);
            assert.equal(again.canonical, parsed.canonical, q);
            assert.deepEqual(again.selectors, parsed.selectors, q);
            printed++;
          }
        }
      }
    }
    assert.ok(printed > 150, `only ${printed} corpus queries parsed`);
  });
});
