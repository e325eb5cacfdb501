import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AccessPolicy, adminClusterOverride, checkQueries } from '../../../src/lb/access.js';
import { type Grammar, ParseCache, PromQLParseError, parseQuery } from '../../../src/lb/promql.js';
import { readCorpus } from '../../fixtures/lb/setup.js';
import { ROOT } from '../../helpers/process.js';

const policy: AccessPolicy = {
  restrictingLabel: 'uuid',
  unrestrictedMetrics: new Set(['ceems_emissions_gCo2_kWh']),
};
const corpus = (name: string) =>
  readCorpus(`${ROOT}/test/fixtures/lb/${name}`).map((q) => q.replace(/^\[\w+\] /, '').split(' ‖ '));
const requests = [...corpus('legit-queries.txt'), ...corpus('attack-queries.txt')];

describe('ParseCache', () => {
  it('gives the access check the decision of a fresh parse, first time and on every hit, in both grammars', () => {
    const cache = new ParseCache();
    for (let round = 0; round < 3; round++) {
      for (const queries of requests) {
        for (const grammar of ['expr', 'selector'] as Grammar[]) {
          const label = `${JSON.stringify(queries)} (${grammar}, round ${round})`;
          assert.deepEqual(
            checkQueries(queries, grammar, policy, cache.parse),
            checkQueries(queries, grammar, policy),
            label,
          );
          assert.equal(
            adminClusterOverride(queries, grammar, cache.parse),
            adminClusterOverride(queries, grammar),
            label,
          );
        }
      }
    }
  });

  it('keeps a text parsed with one grammar apart from the same text with the other', () => {
    const cache = new ParseCache();
    assert.equal(cache.parse('sum(foo{uuid="1"})', 'expr').selectors.length, 1);
    assert.throws(() => cache.parse('sum(foo{uuid="1"})', 'selector'), PromQLParseError);
    assert.throws(() => cache.parse('sum(foo{uuid="1"})', 'selector'), /expected a series selector/);
    assert.equal(cache.parse('sum(foo{uuid="1"})', 'expr').canonical, 'sum(foo{uuid="1"})');
    assert.equal(cache.size, 2);
  });

  it('answers a repeated text from memory, failures too', () => {
    const cache = new ParseCache();
    const first = cache.parse('rate(foo{uuid="1"}[5m])', 'expr');
    assert.equal(cache.parse('rate(foo{uuid="1"}[5m])', 'expr'), first);
    const failure = (() => {
      try {
        cache.parse('sum(foo', 'expr');
      } catch (e) {
        return e;
      }
    })();
    assert.ok(failure instanceof PromQLParseError);
    assert.throws(
      () => cache.parse('sum(foo', 'expr'),
      (e) => e === failure,
    );
    assert.equal(cache.size, 2);
  });

  it('drops the least recently used entries beyond its entry bound', () => {
    const cache = new ParseCache(2);
    const a = cache.parse('a{uuid="1"}', 'expr');
    cache.parse('b{uuid="1"}', 'expr');
    cache.parse('a{uuid="1"}', 'expr'); // a is now the most recent
    cache.parse('c{uuid="1"}', 'expr'); // evicts b
    assert.equal(cache.size, 2);
    assert.equal(cache.parse('a{uuid="1"}', 'expr'), a, 'a kept');
    assert.equal(cache.size, 2, 'a was a hit');
    const b = cache.parse('b{uuid="1"}', 'expr');
    assert.deepEqual(b, parseQuery('b{uuid="1"}'), 'b parsed again');
  });

  it('bounds the characters it keeps and does not keep a text larger than that', () => {
    const long = `foo{uuid=~"${Array.from({ length: 200 }, (_, i) => i + 1).join('|')}"}`;
    const cache = new ParseCache(100, long.length * 2 + 100);
    cache.parse(long, 'expr');
    assert.equal(cache.size, 1);
    cache.parse(`${long} + 1`, 'expr'); // both do not fit: the older goes
    assert.equal(cache.size, 1);
    const tiny = new ParseCache(100, 10);
    assert.equal(tiny.parse(long, 'expr').canonical, parseQuery(long).canonical);
    assert.equal(tiny.size, 0);
  });

  it('bounds each grammar on its own: selectors never push out expressions', () => {
    const cache = new ParseCache(2);
    const kept = cache.parse('a{uuid="1"}', 'expr');
    for (let i = 0; i < 10; i++) cache.parse(`{uuid="${i}"}`, 'selector');
    assert.equal(cache.size, 3);
    assert.equal(cache.parse('a{uuid="1"}', 'expr'), kept);
  });
});
