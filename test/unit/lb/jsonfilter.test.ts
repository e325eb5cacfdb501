// filter_labels without re-encoding (src/lb/jsonfilter.ts, spec lb.md §10): the answer is the backend's
// bytes minus the removed items, whatever the backend's spelling of numbers, escapes, nulls or spacing.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { filterJson, JsonSyntaxError } from '../../../src/lb/jsonfilter.js';

const filter = (path: string, body: string, labels: readonly string[] = ['instance', 'job']) =>
  filterJson(path, Buffer.from(body), labels).toString('utf8');

describe('filter_labels keeps the backend bytes', () => {
  it('removes labels from query results and keeps nulls, escapes, number spelling and unknown fields', () => {
    const body =
      '{"status":"success","data":{"resultType":"matrix","result":[' +
      '{"metric":{"__name__":"up","instance":"a:9090","job":"p","uuid":"1"},"values":null,"histograms":[[1.0,{"count":"1e3","sum":"0.5"}]]},' +
      '{"metric":{"instance":"b"},"values":[[1e3,"2"]]},' +
      '{"metric":{},"values":[]}' +
      ']},"warnings":["\\u003cwarn\\u003e"],"infos":[],"stats":{"samples":null,"big":12345678901234567890}}\n';
    assert.equal(
      filter('/api/v1/query_range', body),
      '{"status":"success","data":{"resultType":"matrix","result":[' +
        '{"metric":{"__name__":"up","uuid":"1"},"values":null,"histograms":[[1.0,{"count":"1e3","sum":"0.5"}]]},' +
        '{"metric":{},"values":[[1e3,"2"]]},' +
        '{"metric":{},"values":[]}' +
        ']},"warnings":["\\u003cwarn\\u003e"],"infos":[],"stats":{"samples":null,"big":12345678901234567890}}\n',
    );
  });

  it('keeps the separators of the kept items in pretty-printed JSON, whichever items go', () => {
    const body =
      '{ "data" : { "result" : [ { "metric" : { "a" : "1" ,\n "instance" : "i" , "job":"j" } } ] } }';
    assert.equal(
      filter('/api/v1/query', body),
      '{ "data" : { "result" : [ { "metric" : { "a" : "1" } } ] } }',
    );
    assert.equal(filter('/api/v1/query', body, ['a']), body.replace('"a" : "1" ,\n ', ''));
    assert.equal(
      filter('/api/v1/query', body, ['a', 'job']),
      '{ "data" : { "result" : [ { "metric" : { "instance" : "i" } } ] } }',
    );
    assert.equal(
      filter('/api/v1/query', body, ['a', 'instance', 'job']),
      '{ "data" : { "result" : [ { "metric" : {  } } ] } }',
    );
  });

  it('removes every duplicate and escaped spelling of a listed label', () => {
    assert.equal(
      filter(
        '/api/v1/query',
        '{"data":{"result":[{"metric":{"job":"x","\\u006aob":"y","k":"v","job":"z"}}]}}',
      ),
      '{"data":{"result":[{"metric":{"k":"v"}}]}}',
    );
  });

  it('rewrites series, labels and label values', () => {
    assert.equal(
      filter('/api/v1/series', '{"status":"success","data":[{"a":"1","job":"x"},{"job":"y"}]}'),
      '{"status":"success","data":[{"a":"1"},{}]}',
    );
    assert.equal(
      filter('/p/api/v1/labels', '{"status":"success","data":["a","instance","job","z"],"warnings":null}'),
      '{"status":"success","data":["a","z"],"warnings":null}',
    );
    assert.equal(filter('/api/v1/labels', '{"data":["instance","job"]}'), '{"data":[]}');
    assert.equal(
      filter('/api/v1/label/job/values', '{"status":"success","data":["x", "y"]}'),
      '{"status":"success","data":null}',
    );
    assert.equal(filter('/api/v1/label/j%6fb/values', '{"data":["x"]}'), '{"data":null}');
    const values = '{"status":"success","data":["x"],"infos":["i"]}';
    assert.equal(filter('/api/v1/label/uuid/values', values), values);
  });

  it('returns the very same bytes when nothing is listed or present', () => {
    for (const [path, body] of [
      [
        '/api/v1/query',
        '{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"1"]}]}}',
      ],
      ['/api/v1/query', '{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}'],
      ['/api/v1/query', '{"status":"error","errorType":"bad_data","error":"x"}'],
      ['/api/v1/series', '{"status":"success","data":null}'],
      ['/api/v1/labels', '  {"data":[]}  \n'],
    ] as const) {
      const raw = Buffer.from(body);
      assert.equal(filterJson(path, raw, ['instance']), raw, body);
    }
  });

  it('refuses what does not scan as JSON where it must rewrite', () => {
    for (const body of [
      '{"data":{"result":[{"metric":{"job":"x"',
      '{"data":{"result":[{"metric":{"job" "x"}}]}}',
      '{"data":{"result":[{"metric":{"job":"x" "a":"b"}}]}}',
      '{"data":{"result":[{"metric":{"\\u00zz":"x"}}]}}',
      '{"data":"unterminated}',
    ])
      assert.throws(() => filter('/api/v1/query', body), JsonSyntaxError, body);
  });
});
