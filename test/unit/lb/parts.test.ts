import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { createLogger } from '../../../src/common/logger.js';
import { Backend, BackendPool, type Strategy } from '../../../src/lb/backend.js';
import { clientBaseDir } from '../../../src/lb/config.js';
import { isAmbiguousPath, matchEndpoint } from '../../../src/lb/endpoints.js';
import { BadRequestError, parseMultipart, parseUrlEncoded, queryUnescape } from '../../../src/lb/form.js';
import { protobufStrings, readPyroscopeRequest } from '../../../src/lb/pyroscope.js';

const log = createLogger({ level: 'error' });
const fakeClient = { dispatcher: undefined as never, headers: () => ({}), close: async () => {} };
const backend = (url: string) => new Backend(new URL(url), fakeClient);

function pool(strategy: Strategy, byCluster: Record<string, Backend[]>): BackendPool {
  return new BackendPool(new Map(Object.entries(byCluster)), strategy, log);
}

describe('backend selection', () => {
  it('round-robin keeps one counter per cluster and skips dead backends', () => {
    const [a, b, c] = ['http://a:1', 'http://b:1', 'http://c:1'].map(backend);
    const x = backend('http://x:1');
    const p = pool('round-robin', { one: [a!, b!, c!], two: [x] });
    assert.deepEqual(
      [p.pick('one'), p.pick('two'), p.pick('one'), p.pick('one'), p.pick('one')],
      [b, x, c, a, b],
    );
    b!.alive = false;
    assert.deepEqual([p.pick('one'), p.pick('one'), p.pick('one')], [c, a, c]);
    assert.equal(p.pick('one', new Set([a!, c!])), undefined, 'every alive backend excluded');
    assert.equal(p.pick('unknown'), undefined);
  });

  it('least-connection picks the alive backend with fewest in-flight requests, first on ties', () => {
    const [a, b, c] = ['http://a:1', 'http://b:1', 'http://c:1'].map(backend);
    const p = pool('least-connection', { one: [a!, b!, c!] });
    assert.equal(p.pick('one'), a);
    a!.inFlight = 2;
    b!.inFlight = 1;
    c!.inFlight = 1;
    assert.equal(p.pick('one'), b);
    b!.alive = false;
    assert.equal(p.pick('one'), c);
    assert.equal(p.pick('one', new Set([c!])), a);
  });

  it('health checks take an unreachable backend out and put it back when it listens again', async () => {
    const srv: Server = createServer((s) => s.destroy());
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    const b = backend(`http://127.0.0.1:${port}/prom`);
    const p = pool('round-robin', { one: [b] });
    await p.checkHealth(1000);
    assert.equal(b.alive, true);
    await new Promise<void>((r) => srv.close(() => r()));
    await p.checkHealth(1000);
    assert.equal(b.alive, false);
    assert.equal(p.pick('one'), undefined);
    const again: Server = createServer((s) => s.destroy());
    await new Promise<void>((r) => again.listen(port, '127.0.0.1', r));
    await p.checkHealth(1000);
    assert.equal(b.alive, true);
    assert.equal(p.pick('one'), b);
    await new Promise<void>((r) => again.close(() => r()));
  });

  it('splits backend URLs into origin and path prefix', () => {
    const b = backend('https://prom.example.org/sub/path/');
    assert.equal(b.origin, 'https://prom.example.org');
    assert.equal(b.basePath, '/sub/path');
    assert.deepEqual(b.hostPort, { host: 'prom.example.org', port: 443 });
  });
});

describe('allowed endpoints (spec §7.1)', () => {
  it('matches the endpoint list with any prefix of whole segments', () => {
    assert.deepEqual(matchEndpoint('tsdb', '/api/v1/query'), {
      type: 'tsdb',
      param: 'query',
      grammar: 'expr',
    });
    assert.equal(matchEndpoint('tsdb', '/prometheus/api/v1/query_range')?.type, 'tsdb');
    assert.equal(matchEndpoint('tsdb', '/api/v1/label/uuid/values')?.grammar, 'selector');
    assert.equal(matchEndpoint('tsdb', '/api/v1/querys'), undefined);
    assert.equal(matchEndpoint('tsdb', '/api/v1/query/'), undefined);
    assert.equal(matchEndpoint('tsdb', '/xapi/v1/query'), undefined);
    assert.equal(matchEndpoint('tsdb', '/api/v1/admin/tsdb/delete_series'), undefined);
    assert.equal(matchEndpoint('pyroscope', '/api/v1/query'), undefined);
    assert.deepEqual(matchEndpoint('pyroscope', '/pyro/querier.v1.QuerierService/LabelValues'), {
      type: 'pyroscope',
      rpc: 'LabelValues',
      grammar: 'selector',
    });
    assert.equal(matchEndpoint('pyroscope', '/querier.v1.QuerierService/SelectSeries'), undefined);
  });

  it('refuses paths a backend could resolve differently', () => {
    for (const p of [
      '/a/../api/v1/query',
      '/./api/v1/query',
      '//api/v1/query',
      '/api%2Fv1/query',
      '/api\\v1/query',
      '/%2e%2e/api/v1/query',
      'api/v1/query',
    ])
      assert.equal(isAmbiguousPath(p), true, p);
    assert.equal(isAmbiguousPath('/api/v1/label/a.b/values'), false);
  });

  it('allows a path variant only when the backend serves the endpoint that was matched', () => {
    // What Go's net/http + Prometheus' router would serve for a raw path: percent-decoded, then cleaned.
    const backendRoute = (raw: string) => {
      let p: string;
      try {
        p = decodeURIComponent(raw);
      } catch {
        return undefined;
      }
      return posix.normalize(p.startsWith('/') ? p : `/${p}`);
    };
    const variants = (path: string): string[] => {
      const out = [
        `${path}/`,
        `/${path}`,
        `${path};x`,
        path.toUpperCase(),
        `${path}%2F`,
        `/x/..${path}`,
        `/.${path}`,
      ];
      for (let i = 0; i < path.length; i++) {
        const hex = path.charCodeAt(i).toString(16);
        out.push(
          `${path.slice(0, i)}%${hex}${path.slice(i + 1)}`,
          `${path.slice(0, i)}%${hex.toUpperCase()}${path.slice(i + 1)}`,
        );
        if (path[i] === '/')
          out.push(`${path.slice(0, i)}//${path.slice(i + 1)}`, `${path.slice(0, i)}/./${path.slice(i + 1)}`);
        if (/[a-z]/.test(path[i]!))
          out.push(`${path.slice(0, i)}${path[i]!.toUpperCase()}${path.slice(i + 1)}`);
      }
      return out;
    };
    let checked = 0;
    for (const [type, path] of [
      ['tsdb', '/api/v1/query'],
      ['tsdb', '/api/v1/query_range'],
      ['tsdb', '/api/v1/series'],
      ['tsdb', '/api/v1/labels'],
      ['tsdb', '/api/v1/label/uuid/values'],
      ['tsdb', '/prom/api/v1/query'],
      ['pyroscope', '/querier.v1.QuerierService/SelectMergeStacktraces'],
      ['pyroscope', '/querier.v1.QuerierService/LabelValues'],
    ] as const) {
      assert.ok(matchEndpoint(type, path), path);
      for (const v of variants(path)) {
        const ep = matchEndpoint(type, v);
        checked++;
        if (ep === undefined) continue;
        // Allowed: the backend must serve the endpoint that was checked (prefix and label name may be encoded).
        const served = backendRoute(v);
        assert.deepEqual(
          served && matchEndpoint(type, served),
          ep,
          `${v} is allowed but served as ${served}`,
        );
      }
    }
    assert.ok(checked > 500, `${checked} variants`);
  });
});

describe('form parsing like Go net/http', () => {
  it('decodes urlencoded pairs, plus signs and encoded keys', () => {
    assert.deepEqual(parseUrlEncoded('query=a%7Bb%3D%22c%22%7D+x&match%5B%5D=1&&flag'), [
      ['query', 'a{b="c"} x'],
      ['match[]', '1'],
      ['flag', ''],
    ]);
  });

  it('refuses bad escapes, invalid UTF-8 and semicolon separators', () => {
    assert.throws(() => queryUnescape('%g1'), BadRequestError);
    assert.throws(() => queryUnescape('abc%'), BadRequestError);
    assert.throws(() => queryUnescape('%ff'), /invalid UTF-8/);
    assert.equal(queryUnescape('%C3%A9'), 'é');
    assert.throws(() => parseUrlEncoded('a;query=up'), /semicolon/);
  });

  it('reads multipart fields and refuses what it cannot read exactly', () => {
    const body = Buffer.from(
      '--XyZ\r\nContent-Disposition: form-data; name="query"\r\n\r\nfoo{uuid="1"}\r\n--XyZ\r\nContent-Disposition: form-data; name=time\r\nContent-Type: text/plain\r\n\r\n12\r\n--XyZ--\r\n',
    );
    assert.deepEqual(parseMultipart(body, 'multipart/form-data; boundary="XyZ"'), [
      ['query', 'foo{uuid="1"}'],
      ['time', '12'],
    ]);
    assert.throws(() => parseMultipart(body, 'multipart/form-data'), /without boundary/);
    assert.throws(() => parseMultipart(body, 'multipart/form-data; boundary=other'), /does not start/);
    assert.throws(
      () => parseMultipart(Buffer.from('--b\r\nX: y\r\n\r\nv\r\n--b--'), 'multipart/form-data; boundary=b'),
      /without a field name/,
    );
    assert.throws(
      () =>
        parseMultipart(
          Buffer.from("--b\r\nContent-Disposition: form-data; name*=UTF-8''query\r\n\r\nv\r\n--b--"),
          'multipart/form-data; boundary=b',
        ),
      /extended parameter/,
    );
  });
});

describe('Pyroscope request bodies', () => {
  const pb = (field: number, s: string) =>
    Buffer.concat([Buffer.from([(field << 3) | 2, s.length]), Buffer.from(s)]);

  it('reads every occurrence of the selector field and skips other wire types', () => {
    const msg = Buffer.concat([
      pb(1, 'cpu'),
      Buffer.from([0x18, 0x96, 0x01]),
      pb(2, '{a="1"}'),
      Buffer.from([0x25, 0, 0, 0, 0]),
      pb(2, '{b="2"}'),
    ]);
    assert.deepEqual(protobufStrings(msg, 2), ['{a="1"}', '{b="2"}']);
    assert.deepEqual(protobufStrings(msg, 1), ['cpu']);
  });

  it('refuses malformed protobuf', () => {
    assert.throws(() => protobufStrings(Buffer.from([0x12, 0x05, 0x41]), 2), /truncated/);
    assert.throws(() => protobufStrings(Buffer.from([0x13]), 2), /wire type 3/);
    assert.throws(() => protobufStrings(Buffer.from([0x18, 0xff]), 2), /varint/);
  });

  it('rebuilds a protobuf body with replaced selectors, every other field byte for byte', () => {
    const other = Buffer.concat([pb(1, 'cpu'), Buffer.from([0x18, 0x96, 0x01])]);
    const msg = Buffer.concat([
      other,
      pb(2, '{a="1"} # c'),
      Buffer.from([0x25, 1, 2, 3, 4]),
      pb(2, '{b="2"}'),
    ]);
    const req = readPyroscopeRequest('SelectMergeStacktraces', gzipSync(msg), 'application/proto', 'gzip');
    assert.deepEqual(req.selectors, ['{a="1"} # c', '{b="2"}']);
    const long = `{a="${'x'.repeat(200)}"}`; // a 2-byte length varint
    const rebuilt = req.rebuild([long, '{b="2"}']);
    assert.deepEqual(protobufStrings(rebuilt, 2), [long, '{b="2"}']);
    assert.deepEqual(protobufStrings(rebuilt, 1), ['cpu']);
    assert.deepEqual(
      rebuilt,
      Buffer.concat([
        other,
        Buffer.from([0x12, 0xce, 0x01]),
        Buffer.from(long),
        Buffer.from([0x25, 1, 2, 3, 4]),
        pb(2, '{b="2"}'),
      ]),
    );
    assert.throws(() => req.rebuild(['{a="1"}']), /fewer replacements/);
  });

  it('rebuilds a Connect JSON body with replaced selectors and keeps the other fields', () => {
    const req = readPyroscopeRequest(
      'LabelValues',
      Buffer.from('{"name":"service_name","matchers":["{a=\\"1\\"}","{b=\\"2\\"}"],"start":"1"}'),
      'application/json',
      undefined,
    );
    assert.deepEqual(req.selectors, ['{a="1"}', '{b="2"}']);
    assert.deepEqual(JSON.parse(req.rebuild(['{x="1"}', '{y="2"}']).toString()), {
      name: 'service_name',
      matchers: ['{x="1"}', '{y="2"}'],
      start: '1',
    });
  });

  it('decodes Connect JSON (both field spellings) and gzip, and refuses other types', () => {
    const pyroscopeSelectors = (...a: Parameters<typeof readPyroscopeRequest>) =>
      readPyroscopeRequest(...a).selectors;
    assert.deepEqual(
      pyroscopeSelectors(
        'SelectMergeStacktraces',
        Buffer.from('{"labelSelector":"{x=\\"1\\"}","label_selector":"{y=\\"2\\"}"}'),
        'application/json; charset=utf-8',
        undefined,
      ),
      ['{x="1"}', '{y="2"}'],
    );
    const gz = gzipSync('{"matchers":["{a=\\"1\\"}"]}');
    assert.deepEqual(pyroscopeSelectors('LabelNames', gz, 'application/json', 'gzip'), ['{a="1"}']);
    assert.throws(
      () => pyroscopeSelectors('LabelNames', gz, 'application/json', 'br'),
      /unsupported request body/,
    );
    assert.throws(
      () => pyroscopeSelectors('LabelNames', Buffer.from('x'), 'text/plain', undefined),
      /unsupported request body/,
    );
    assert.throws(
      () => pyroscopeSelectors('LabelNames', Buffer.from('{"matchers":[1]}'), 'application/json', undefined),
      /strings/,
    );
    assert.throws(
      () => pyroscopeSelectors('LabelNames', Buffer.from('[1]'), 'application/json', undefined),
      /not an object/,
    );
  });
});

describe('relative paths of backend client configs (D-LB-11)', () => {
  it('prefers the config file directory and falls back to the web config directory with a warning', () => {
    const root = mkdtempSync(join(tmpdir(), 'ceems-lb-paths-'));
    try {
      const [cfgDir, webDir] = [join(root, 'cfg'), join(root, 'web')];
      mkdirSync(cfgDir);
      mkdirSync(webDir);
      writeFileSync(join(webDir, 'ca.pem'), 'x');
      const client = { tls_config: { ca_file: 'ca.pem' } };
      const warnings: string[] = [];
      assert.equal(
        clientBaseDir(client, cfgDir, webDir, (m) => warnings.push(m)),
        webDir,
      );
      assert.match(warnings[0]!, /deprecated/);
      writeFileSync(join(cfgDir, 'ca.pem'), 'x');
      assert.equal(
        clientBaseDir(client, cfgDir, webDir, (m) => warnings.push(m)),
        cfgDir,
      );
      assert.equal(
        clientBaseDir({ tls_config: { ca_file: 'missing.pem' } }, cfgDir, webDir, () => {}),
        cfgDir,
      );
      assert.equal(warnings.length, 1);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
