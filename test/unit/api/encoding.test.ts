import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  encodeError,
  encodeSuccess,
  formatMetricValue,
  STAT_STRUCT,
  UNIT_STRUCT,
  USER_STRUCT,
} from '../../../src/api/jsonenc.js';
import { fnv1a64 } from '../../../src/api/routes/usage.js';
import {
  convertDatetimezone,
  formatDatetime,
  formatDatetimezone,
  midnightDatetime,
  parseDatetime,
  parseDatetimezone,
} from '../../../src/api/timefmt.js';

describe('Go-compatible JSON (§6.3)', () => {
  test('metric values: integers as integers, others with 8 decimals, NaN/Inf as 0', () => {
    assert.equal(formatMetricValue(2962), '2962');
    assert.equal(formatMetricValue(21.234646591), '21.23464659');
    assert.equal(formatMetricValue(133.0442607), '133.04426070');
    assert.equal(formatMetricValue(-0.5), '-0.50000000');
    assert.equal(formatMetricValue(Number.NaN), '0');
    assert.equal(formatMetricValue(Number.POSITIVE_INFINITY), '0');
  });

  test('struct order, omitempty, sorted map keys, HTML-safe escapes, trailing newline', () => {
    const body = encodeSuccess(UNIT_STRUCT, [
      {
        tags: { z: 1, a: 'x<y>&\u2028' },
        uuid: '',
        name: '',
        created_at_ts: 0,
        avg_cpu_usage: { b: 1.5, a: Number.NaN },
        total_time_seconds: {},
        allocation: { n: 1.25, big: 1e21 },
      },
    ]);
    assert.equal(
      body,
      '{"status":"success","data":[{"uuid":"","allocation":{"big":1e+21,"n":1.25},"avg_cpu_usage":{"a":0,"b":1.50000000},"tags":{"a":"x\\u003cy\\u003e\\u0026\\u2028","z":1}}]}\n',
    );
  });

  test('lists, null data, warnings, errors', () => {
    assert.equal(
      encodeSuccess(USER_STRUCT, [{ cluster_id: 'c', name: 'n', projects: [], tags: ['t'] }]),
      '{"status":"success","data":[{"cluster_id":"c","name":"n","tags":["t"]}]}\n',
    );
    assert.equal(
      encodeSuccess(STAT_STRUCT, [], ['failed to scan 2 rows']),
      '{"status":"success","data":[],"warnings":["failed to scan 2 rows"]}\n',
    );
    assert.equal(encodeSuccess(undefined, null), '{"status":"success","data":null}\n');
    assert.equal(
      encodeError('bad_data', 'a <b>'),
      '{"status":"error","data":null,"errorType":"bad_data","error":"a \\u003cb\\u003e"}\n',
    );
  });
});

describe('time layouts (§1)', () => {
  const t = Date.UTC(2024, 4, 6, 11, 45, 0); // summer: Paris = UTC+2
  test('format and parse in an IANA zone', () => {
    assert.equal(formatDatetime(t, 'Europe/Paris'), '2024-05-06T13:45:00');
    assert.equal(formatDatetimezone(t, 'Europe/Paris'), '2024-05-06T13:45:00+0200');
    assert.equal(formatDatetimezone(t, 'America/St_Johns'), '2024-05-06T09:15:00-0230');
    assert.equal(formatDatetimezone(t, 'UTC'), '2024-05-06T11:45:00+0000');
    assert.equal(parseDatetimezone('2024-05-06T13:45:00+0200'), t);
    assert.equal(parseDatetimezone('Unknown'), undefined);
    assert.equal(parseDatetime('2024-05-06T13:45:00', 'Europe/Paris'), t);
    assert.equal(parseDatetime('2024-05-06T13:45', 'Europe/Paris'), t);
    assert.equal(parseDatetime('2024-05-06', 'UTC'), Date.UTC(2024, 4, 6));
    assert.equal(parseDatetime('bad', 'UTC'), undefined);
  });

  test('DST edges, local midnight, zone conversion', () => {
    // 2024-03-31 02:30 does not exist in Paris; 03:30 CEST is 01:30Z
    assert.equal(
      formatDatetimezone(Date.UTC(2024, 2, 31, 1, 30), 'Europe/Paris'),
      '2024-03-31T03:30:00+0200',
    );
    assert.equal(
      formatDatetimezone(Date.UTC(2024, 2, 31, 0, 30), 'Europe/Paris'),
      '2024-03-31T01:30:00+0100',
    );
    // 23:30Z on May 5 is already May 6 in Paris (D-API-11: local midnight)
    assert.equal(midnightDatetime(Date.UTC(2024, 4, 5, 23, 30), 'Europe/Paris'), '2024-05-06T00:00:00');
    assert.equal(convertDatetimezone('2024-05-06T13:45:00+0200', 'Asia/Kolkata'), '2024-05-06T17:15:00+0530');
    assert.equal(convertDatetimezone('N/A', 'UTC'), 'N/A');
  });
});

describe('usage cache key', () => {
  test('FNV-1a 64 reference vectors', () => {
    assert.equal(fnv1a64(''), 'cbf29ce484222325');
    assert.equal(fnv1a64('a'), 'af63dc4c8601ec8c');
    assert.equal(fnv1a64('foobar'), '85944171f73967e8');
  });
});
