// Rows encoded straight from SQL (src/api/rowenc.ts) must be byte for byte what the API produced before
// issue 15: each row decoded into an object (JSON columns parsed, '' as null, a row that cannot be decoded
// skipped and counted), then encoded by jsonenc's encodeSuccess. That pipeline is kept here as the
// reference and both are run on hand-picked and random rows.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  encodeSuccess,
  type FieldSpec,
  formatMetricValue,
  PROJECT_STRUCT,
  UNIT_STRUCT,
  USAGE_STRUCT,
  USER_STRUCT,
} from '../../../src/api/jsonenc.js';
import {
  METRIC_FIELDS,
  PROJECT_FIELDS,
  UNIT_FIELDS,
  USAGE_FIELDS,
  USER_FIELDS,
} from '../../../src/api/models.js';
import { encodeQuery, metricMapText, RowEncoder, type RowEncoderOptions } from '../../../src/api/rowenc.js';
import { openDatabase, type SQLOutputValue } from '../../../src/common/sqlite.js';
import { sqliteReader } from '../../../src/common/sqlreader.js';

/** The decoding of rows before issue 15 (src/api/rows.ts). */
function referenceDecode(
  rows: readonly Record<string, unknown>[],
  jsonColumns: ReadonlySet<string>,
  transform?: (row: Record<string, unknown>) => void,
) {
  const data: Record<string, unknown>[] = [];
  let failed = 0;
  for (const row of rows) {
    try {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(row)) {
        out[k] = jsonColumns.has(k) && typeof v === 'string' ? (v === '' ? null : JSON.parse(v)) : v;
      }
      transform?.(out);
      data.push(out);
    } catch {
      failed++;
    }
  }
  return { data, warnings: failed > 0 ? [`failed to scan ${failed} rows`] : [] };
}

function reference(
  struct: readonly FieldSpec[],
  columns: readonly string[],
  rows: readonly SQLOutputValue[][],
  opts: RowEncoderOptions,
): string {
  const objects = rows.map((r) => Object.fromEntries(columns.map((c, i) => [c, r[i]])));
  const convert = opts.convert;
  const { data, warnings } = referenceDecode(
    objects,
    opts.jsonColumns,
    convert
      ? (row) => {
          for (const c of convert.columns) if (typeof row[c] === 'string') row[c] = convert.fn(row[c]);
        }
      : undefined,
  );
  return encodeSuccess(struct, data, warnings);
}

function encoded(
  struct: readonly FieldSpec[],
  columns: readonly string[],
  rows: readonly SQLOutputValue[][],
  opts: RowEncoderOptions,
): string {
  return new RowEncoder(struct, columns, opts).encode(rows).body.toString();
}

const UNIT_JSON = new Set<string>(['allocation', 'tags', ...METRIC_FIELDS]);

/** What the reference makes of one metric map text (undefined: the row is skipped). */
function referenceMetric(text: string): string | undefined {
  const body = reference(UNIT_STRUCT, ['uuid', 'avg_cpu_usage'], [['u', text]], { jsonColumns: UNIT_JSON });
  const m = /^\{"status":"success","data":\[\{"uuid":"u"(?:,"avg_cpu_usage":(.*))?\}\]\}\n$/s.exec(body);
  return m ? (m[1] ?? '') : undefined;
}

describe('metric maps rewritten in place', () => {
  const cases: Array<[string, string | undefined]> = [
    ['{}', ''],
    ['{"a":1,"b":2}', '{"a":1,"b":2}'],
    ['{"b":2,"a":1}', '{"a":1,"b":2}'],
    [
      '{"walltime":3600,"alloc_cputime":14400.5,"alloc_gputime":0}',
      '{"alloc_cputime":14400.50000000,"alloc_gputime":0,"walltime":3600}',
    ],
    ['{"global":0.2735721180215478}', '{"global":0.27357212}'],
    ['{"x":-0}', '{"x":0}'],
    ['{"x":-0.0}', '{"x":0}'],
    ['{"x":1e3,"y":1E-3,"z":2.5e+2}', '{"x":1000,"y":0.00100000,"z":250}'],
    ['{"x":123456789012345}', '{"x":123456789012345}'],
    ['{"x":1234567890123456789}', '{"x":1234567890123456768}'],
    ['{"x":1e21,"y":-1e300}', '{"x":1e+21,"y":-1e+300}'],
    ['{"x":123456789.1}', '{"x":123456789.09999999}'],
    ['{"10":1,"9":2,"a":3}', '{"10":1,"9":2,"a":3}'],
    ['{"a":1,"a":2}', '{"a":2}'],
    ['{"b":1,"a":2,"b":3}', '{"a":2,"b":3}'],
    // assigned to the re-encoded map, `__proto__` becomes its prototype: kept as it was
    ['{"__proto__":1,"a":2}', '1'],
    ['{"":1,"a":2}', '{"":1,"a":2}'],
    ['{"a b-c.d:e":1.5}', '{"a b-c.d:e":1.50000000}'],
    ['{"<x>&":1}', '{"\\u003cx\\u003e\\u0026":1}'],
    ['{"é":1,"e":2}', '{"e":2,"é":1}'],
    ['{"q\\"":1}', '{"q\\"":1}'],
    ['{ "a": 1 }', '{"a":1}'],
    ['{"a":null,"b":"7","c":true,"d":[1],"e":{"f":1}}', '{"a":0,"b":7,"c":1,"d":1,"e":0}'],
    ['{"a":01}', undefined],
    ['{"a":1.}', undefined],
    ['{"a":-}', undefined],
    ['{"a":1', undefined],
    ['{"a":1}x', undefined],
    ['[1,2]', '{"0":1,"1":2}'],
    ['"ab"', '{"0":0,"1":0}'],
    ['5', ''],
    ['null', ''],
    ['', ''],
    ['not json', undefined],
  ];
  test('every case as the reference encodes it', () => {
    for (const [text, want] of cases) assert.equal(referenceMetric(text), want, `reference of ${text}`);
    for (const [text] of cases) {
      const fast = metricMapText(text);
      const want = referenceMetric(text);
      // The fast path either gives the reference's text or leaves the map to the general rules.
      if (fast !== undefined) assert.equal(fast, want, text);
      const rows: SQLOutputValue[][] = [['u', text]];
      assert.equal(
        encoded(UNIT_STRUCT, ['uuid', 'avg_cpu_usage'], rows, { jsonColumns: UNIT_JSON }),
        reference(UNIT_STRUCT, ['uuid', 'avg_cpu_usage'], rows, { jsonColumns: UNIT_JSON }),
        text,
      );
    }
  });

  test('the common shapes take the fast path; a map already in wire form is returned as is', () => {
    const sorted = '{"alloc_cputime":14400,"walltime":3600}';
    assert.equal(metricMapText(sorted), sorted);
    assert.equal(metricMapText('{"walltime":3600,"alloc_cputime":14400}'), sorted);
    assert.equal(
      metricMapText('{"owid_total":48.418894910719246,"rte_total":2}'),
      '{"owid_total":48.41889491,"rte_total":2}',
    );
    for (const slow of ['{"a":1,"a":2}', '{"__proto__":1}', '{ "a": 1 }', '{"a":"1"}', '{"é":1}', '{"<":1}'])
      assert.equal(metricMapText(slow), undefined, slow);
  });
});

describe('numbers of metric maps', () => {
  test('50,000 decimals, near ties and near integers included: the digits of formatMetricValue(Number(text))', () => {
    const r = random(15);
    const digits = (n: number) => Array.from({ length: n }, () => Math.floor(r.next() * 10)).join('');
    const patterns = ['', '499', '500', '501', '498', '4999999', '5000001', '000000', '999999', '99999999'];
    for (let i = 0; i < 50_000; i++) {
      const int = String(Math.floor(r.next() ** 3 * (r.next() < 0.9 ? 1e5 : 1e9)));
      let fraction = digits(Math.floor(r.next() * 12));
      const p = r.pick(patterns);
      const at = Math.floor(r.next() * 10);
      fraction =
        (fraction.padEnd(at, '0').slice(0, at) + p + digits(Math.floor(r.next() * 8))).slice(0, 20) || '0';
      const text = `${r.next() < 0.2 ? '-' : ''}${int}.${fraction}`;
      assert.equal(metricMapText(`{"a":${text}}`), `{"a":${formatMetricValue(Number(text))}}`, text);
    }
  });
});

/** Deterministic pseudo-random numbers (mulberry32). */
function random(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
  return { next, pick };
}

const NUMBERS = [
  '0',
  '-0',
  '1',
  '-7',
  '3600',
  '0.5',
  '-0.25',
  '1e3',
  '2.5E-7',
  '1e21',
  '123456789012345',
  '9007199254740993',
  '0.1',
  '99.99999999999',
  '1.000000005',
  '1234567.123456789',
];
const KEYS = [
  'a',
  'b',
  'global',
  'walltime',
  'alloc_cputime',
  '',
  'x-y',
  '10',
  '9',
  '__proto__',
  '<b>',
  'é',
  'z',
];
const STRINGS = [
  '',
  'plain',
  'slurm-0',
  'a<b>&c',
  'quote"back\\slash',
  'tab\there',
  'nl\n',
  '\u2028',
  'é😀',
  'Unknown',
  '2024-05-06T10:00:00+0200',
];

function randomText(r: ReturnType<typeof random>): string {
  const n = r.next();
  if (n < 0.15) return '{}';
  if (n < 0.18)
    return r.pick(['', 'null', '[1,"a"]', '"s"', '5', 'oops', '{"a":{"b":1}}', '{"a": 1}', '{"a":1,}']);
  const count = 1 + Math.floor(r.next() * 4);
  const parts: string[] = [];
  for (let i = 0; i < count; i++) {
    const key = JSON.stringify(r.pick(KEYS));
    const value = r.next() < 0.9 ? r.pick(NUMBERS) : r.pick(['null', '"3"', 'true', '[]', '{}']);
    parts.push(`${key}:${value}`);
  }
  return `{${parts.join(',')}}`;
}

function randomValue(
  r: ReturnType<typeof random>,
  column: string,
  json: ReadonlySet<string>,
): SQLOutputValue {
  if (r.next() < 0.05) return null;
  if (json.has(column)) {
    if (column === 'users' || column === 'projects' || (column === 'tags' && r.next() < 0.5))
      return r.pick(['[]', '["a","b"]', '["<x>"]', '', '[1,{"a":2}]', 'bad']);
    return randomText(r);
  }
  if (column.endsWith('_ts') || column === 'num_units') return r.pick([0, 1, 1714989600000, -5, 2.5]);
  return r.pick(STRINGS);
}

describe('rows encoded straight from SQL', () => {
  const models: Array<[string, readonly FieldSpec[], readonly string[], ReadonlySet<string>]> = [
    ['unit', UNIT_STRUCT, UNIT_FIELDS, UNIT_JSON],
    ['usage', USAGE_STRUCT, USAGE_FIELDS, new Set<string>(METRIC_FIELDS)],
    ['project', PROJECT_STRUCT, PROJECT_FIELDS, new Set(['users', 'tags'])],
    ['user', USER_STRUCT, USER_FIELDS, new Set(['projects', 'tags'])],
  ];
  for (const [name, struct, fields, json] of models) {
    test(`${name}: 300 random row sets, random field selections, as the reference`, () => {
      const r = random(name.length * 7919);
      for (let set = 0; set < 300; set++) {
        const columns = set % 3 === 0 ? fields : fields.filter(() => r.next() < 0.5);
        if (columns.length === 0) continue;
        const rows = Array.from({ length: 1 + Math.floor(r.next() * 5) }, () =>
          columns.map((c) => randomValue(r, c, json)),
        );
        const opts: RowEncoderOptions = { jsonColumns: json };
        if (name === 'unit' && set % 2 === 1) {
          opts.convert = {
            columns: new Set(['created_at', 'ended_at']),
            fn: (v) => {
              if (v === 'a<b>&c') throw new Error('unconvertible');
              return v.toUpperCase();
            },
          };
        }
        assert.equal(
          encoded(struct, columns, rows, opts),
          reference(struct, columns, rows, opts),
          JSON.stringify(rows),
        );
      }
    });
  }

  test('encodeQuery reads the columns by the names SQL gives them, as arrays, with a failed-row count', async () => {
    const db = openDatabase(':memory:');
    db.exec(`CREATE TABLE t (uuid text, m text, tags text);
      INSERT INTO t VALUES ('1', '{"b":0.5,"a":2}', '{"k":"v"}'), ('2', 'broken', '{}'), ('3', '{}', '{"k":"v"}')`);
    const reader = sqliteReader(() => db);
    for (let round = 0; round < 2; round++) {
      const r = await encodeQuery(
        reader,
        'SELECT uuid, m AS avg_cpu_usage, tags FROM t ORDER BY uuid',
        [],
        UNIT_STRUCT,
        {
          jsonColumns: UNIT_JSON,
        },
      );
      assert.deepEqual(
        { body: r.body.toString(), rows: r.rows, failed: r.failed },
        {
          body: '{"status":"success","data":[{"uuid":"1","avg_cpu_usage":{"a":2,"b":0.50000000},"tags":{"k":"v"}},{"uuid":"3","tags":{"k":"v"}}],"warnings":["failed to scan 1 rows"]}\n',
          rows: 2,
          failed: 1,
        },
      );
    }
    await reader.close();
  });
});
