import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AccessPolicy, adminClusterOverride, checkQueries } from '../../../src/lb/access.js';
import { PromQLParseError, parseQuery, unquoteString } from '../../../src/lb/promql.js';

const tsdb: AccessPolicy = {
  restrictingLabel: 'uuid',
  unrestrictedMetrics: new Set(['ceems_emissions_gCo2_kWh']),
};
const check = (q: string | string[], grammar: 'expr' | 'selector' = 'expr', policy = tsdb) =>
  checkQueries(Array.isArray(q) ? q : [q], grammar, policy);
const ids = (q: string | string[]) => {
  const d = check(q);
  assert.equal(d.kind, 'allow', `expected allow for ${q}: ${JSON.stringify(d)}`);
  return d.kind === 'allow' ? [...d.ids].sort() : [];
};
const denied = (q: string) => assert.equal(check(q).kind, 'deny', `expected deny for ${q}`);
const invalid = (q: string, grammar: 'expr' | 'selector' = 'expr') =>
  assert.equal(check(q, grammar).kind, 'invalid', `expected invalid for ${q}`);

describe('PromQL selector extraction', () => {
  it('collects selectors from every kind of sub-expression in source order', () => {
    const q =
      'sum by (uuid) (rate(a{uuid="1"}[5m] offset 1h)) / on(uuid) group_left max_over_time(b{uuid="2"}[1h:5m] @ 100) + label_replace(c{uuid="3"}, "x", "$1", "y", "(.*)") or -(d{uuid="4"})';
    const names = parseQuery(q).selectors.map((s) => s.matchers.find((m) => m.name === '__name__')?.value);
    assert.deepEqual(names, ['a', 'b', 'c', 'd']);
  });

  it('reads quoted label names and quoted metric names', () => {
    const [sel] = parseQuery('{"ceems_foo", "uuid"="42", job!~"x"}').selectors;
    assert.deepEqual(sel!.matchers, [
      { name: '__name__', op: '=', value: 'ceems_foo' },
      { name: 'uuid', op: '=', value: '42' },
      { name: 'job', op: '!~', value: 'x' },
    ]);
  });

  it('unquotes Go escapes, single quotes and raw strings', () => {
    assert.equal(unquoteString('"a\\u0034\\x41\\101\\n"'), 'a4AA\n');
    assert.equal(unquoteString("'it\\'s'"), "it's");
    assert.equal(unquoteString('`a\\d`'), 'a\\d');
    assert.throws(() => unquoteString('"\\q"'), PromQLParseError);
    assert.throws(() => unquoteString('"\\ud800"'), PromQLParseError);
    assert.throws(() => unquoteString("'\\\"'"), PromQLParseError);
    assert.throws(() => unquoteString('"abc'), PromQLParseError);
  });

  it('reports the position of a parse error', () => {
    assert.throws(() => parseQuery('foo{uuid="1"'), /^Error: 1:\d+: parse error/);
    assert.throws(() => parseQuery('sum(foo'), /parse error/);
    assert.throws(() => parseQuery(''), /no expression found/);
    assert.throws(() => parseQuery('# only a comment'), /parse error/);
  });

  it('accepts only a plain selector with the selector grammar', () => {
    assert.equal(parseQuery('foo{uuid="1"}', 'selector').selectors.length, 1);
    assert.throws(() => parseQuery('rate(foo{uuid="1"}[5m])', 'selector'), /expected a series selector/);
    assert.throws(() => parseQuery('foo{uuid="1"}[5m]', 'selector'), /expected a series selector/);
  });
});

describe('selector rule (spec lb.md §7.3 examples)', () => {
  it('allows pinned selectors and returns the ids to verify', () => {
    assert.deepEqual(ids('rate(ceems_compute_unit_cpu_user_seconds_total{uuid="4242"}[5m])'), ['4242']);
    assert.deepEqual(ids('uuid:ceems_cpu_usage:ratio_irate{uuid=~"4242|4243"}'), ['4242', '4243']);
    assert.deepEqual(ids('{__name__=~"ceems_.*",uuid="4243",gpuuuid!=""}'), ['4243']);
    assert.deepEqual(ids('foo{uuid="4242"} or foo{uuid="9999"}'), ['4242', '9999']);
  });

  it('allows selector-free expressions with nothing to verify', () => {
    for (const q of ['1+1', 'vector(1)', 'time()', '"str"', 'scalar(vector(2)) * 3'])
      assert.deepEqual(ids(q), [], q);
  });

  it('allows joins with unrestricted node-level series (D-LB-14)', () => {
    assert.deepEqual(
      ids('foo{uuid="4242"} * on(hostname) group_left ceems_emissions_gCo2_kWh{provider="owid"}'),
      ['4242'],
    );
    assert.deepEqual(ids('{__name__="ceems_emissions_gCo2_kWh"}'), []);
    denied('foo{uuid="4242"} * on(hostname) group_left ceems_ipmi_dcmi_current_watts');
    denied('{__name__=~"ceems_emissions_gCo2_kWh"}');
    denied('{__name__!="ceems_emissions_gCo2_kWh"}');
  });

  it('honours an operator-extended unrestricted list', () => {
    const policy = { ...tsdb, unrestrictedMetrics: new Set(['ceems_ipmi_dcmi_current_watts']) };
    assert.equal(
      check('foo{uuid="1"} * on(hostname) ceems_ipmi_dcmi_current_watts', 'expr', policy).kind,
      'allow',
    );
  });

  it('denies selectors that do not pin uuid to literal values', () => {
    for (const q of [
      'up',
      '{__name__=~".+"}',
      'foo{uuid=~".*"}',
      'foo{uuid=~"12.*"}',
      'foo{uuid=""}',
      'foo{uuid=~"123|"}',
      'foo{uuid!="123"}',
      'foo{uuid!~"123"}',
      'foo{UUID="123"}',
      'foo{uuid="4242"} + on() group_left bar',
      'sum by (uuid) (foo{uuid=~".+"})',
      'foo{uuid="a.b"}',
      'foo{uuid="4242 "}',
      'foo{uuid=~"(4242)"}',
      'foo{uuid=~"4242|.*"}',
      'foo{uuid="\\u0034\\u0032.*"}',
    ])
      denied(q);
  });

  it('allows narrowing matchers next to a positive literal one', () => {
    assert.deepEqual(ids('foo{uuid="1", uuid!="2", uuid=~".*"}'), ['1']);
  });

  it('decodes escapes before comparing, so escaped ids are checked as what Prometheus sees', () => {
    assert.deepEqual(ids('foo{uuid="\\u0034\\x32"}'), ['42']);
    assert.deepEqual(ids('foo{"u\\u0075id"="7"}'), ['7']);
  });

  it('denies info()', () => {
    denied('info(foo{uuid="1"})');
  });

  it('checks every query string of a request', () => {
    assert.deepEqual(ids(['a{uuid="1"}', 'b{uuid="2"}']), ['1', '2']);
    assert.equal(check(['a{uuid="1"}', 'b']).kind, 'deny');
    assert.equal(check(['a{uuid="1"}', 'b{']).kind, 'invalid');
  });

  it('rejects malformed queries as invalid', () => {
    invalid('foo{uuid="1"');
    invalid('foo{uuid="1"} +');
    invalid('foo{uuid="1" or uuid="2"}');
    invalid('foo{uuid="\\z"}');
    invalid('foo{uuid="1"} foo');
    invalid('rate(foo{uuid="1"}[5m])', 'selector');
  });

  it('uses service_name for Pyroscope selectors', () => {
    const pyro: AccessPolicy = { restrictingLabel: 'service_name', unrestrictedMetrics: new Set() };
    const d = check('{service_name="4242", __profile_type__="cpu"}', 'selector', pyro);
    assert.deepEqual(d.kind === 'allow' ? [...d.ids] : d, ['4242']);
    assert.equal(check('{uuid="4242"}', 'selector', pyro).kind, 'deny');
  });
});

describe('ceems_id cluster override (spec §6.2)', () => {
  it('takes the last = or =~ matcher (last alternative) in query order', () => {
    const d = check(['foo{uuid="1",ceems_id="a"}', 'bar{uuid="2",ceems_id=~"b|c"}']);
    assert.equal(d.kind === 'allow' && d.clusterOverride, 'c');
    const n = check('foo{uuid="1",ceems_id!="a"}');
    assert.equal(n.kind === 'allow' && n.clusterOverride, undefined);
  });

  it('is also reported for denied queries and for admins', () => {
    const d = check('up{ceems_id="x"}');
    assert.equal(d.kind === 'deny' && d.clusterOverride, 'x');
    assert.equal(adminClusterOverride(['up{ceems_id="y"}', 'broken{'], 'expr'), 'y');
  });
});
