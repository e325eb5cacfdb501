import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encode, formatFloat } from '../../../src/common/exposition.js';

describe('formatFloat (Go strconv.FormatFloat g -1)', () => {
  const cases: [number, string][] = [
    [7, '7'],
    [123456, '123456'],
    [1234567, '1.234567e+06'],
    [1000000, '1e+06'],
    [2.5e10, '2.5e+10'],
    [0.0001, '0.0001'],
    [0.00001, '1e-05'],
    [0.75, '0.75'],
    [-3.5, '-3.5'],
    [0, '0'],
    [1e21, '1e+21'],
    [1.5e-300, '1.5e-300'],
    [Number.POSITIVE_INFINITY, '+Inf'],
    [Number.NEGATIVE_INFINITY, '-Inf'],
    [Number.NaN, 'NaN'],
  ];
  for (const [v, want] of cases) it(`${v} → ${want}`, () => assert.equal(formatFloat(v), want));
});

describe('encode', () => {
  it('sorts families by name, labels by name, samples by label values; omits empty families', () => {
    const text = encode([
      { name: 'z_metric', help: 'Z.', type: 'gauge', samples: [{ labels: {}, value: 1 }] },
      { name: 'empty', help: 'E.', type: 'gauge', samples: [] },
      {
        name: 'a_total',
        help: 'A with \\ and\nnewline',
        type: 'counter',
        samples: [
          { labels: { mode: 'user', hostname: 'n2' }, value: 2 },
          { labels: { mode: 'idle', hostname: 'n1' }, value: 1234567 },
          { labels: { hostname: 'n1', mode: 'b"q\\\n' }, value: 0.5 },
        ],
      },
    ]);
    assert.equal(
      text,
      [
        '# HELP a_total A with \\\\ and\\nnewline',
        '# TYPE a_total counter',
        'a_total{hostname="n1",mode="b\\"q\\\\\\n"} 0.5',
        'a_total{hostname="n1",mode="idle"} 1.234567e+06',
        'a_total{hostname="n2",mode="user"} 2',
        '# HELP z_metric Z.',
        '# TYPE z_metric gauge',
        'z_metric 1',
        '',
      ].join('\n'),
    );
  });

  it('keeps histogram parts in their given order with their own names', () => {
    const text = encode([
      {
        name: 'h',
        help: 'H.',
        type: 'histogram',
        samples: [
          { name: 'h_bucket', labels: { le: '0.1' }, value: 1 },
          { name: 'h_bucket', labels: { le: '+Inf' }, value: 2 },
          { name: 'h_sum', labels: {}, value: 0.3 },
          { name: 'h_count', labels: {}, value: 2 },
        ],
      },
    ]);
    assert.equal(
      text,
      '# HELP h H.\n# TYPE h histogram\nh_bucket{le="0.1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 0.3\nh_count 2\n',
    );
  });
});
