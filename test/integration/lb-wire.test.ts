// ceems_lb on the wire as clients see it: label-filtered answers of a real Prometheus are its very bytes
// minus the removed items (spec lb.md §10), and a Pyroscope client that sends protobuf without a
// Content-Type (as the original CEEMS (Go) accepts) is checked and forwarded with the body it was checked on.

import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createOwnershipDb, pbString, tempDir, writeYaml } from '../fixtures/lb/setup.js';
import { type Started, startProgram } from '../helpers/process.js';
import { type PrometheusProcess, startPrometheus } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/wait.js';

/** Fixed port of this test's Prometheus (range 9310–9319 of this test file). */
const PROMETHEUS_PORT = 9310;
const FILTERED = ['instance', 'job'];

/** Series whose label values a re-encoder would spell differently (Go escapes <, > and & as \u003c…). */
const ODD_METRICS = [
  '# TYPE odd_info gauge',
  'odd_info{note="a<b && c>d",path="/x?y=1&z=2"} 1',
  'odd_info{note="plain",path="/"} 2',
  '',
].join('\n');

async function listening(srv: Server): Promise<string> {
  srv.listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function send(url: string, o: { method?: string; headers?: Record<string, string>; body?: Buffer } = {}) {
  return new Promise<Answer>((resolve, reject) => {
    const req = request(url, { method: o.method ?? 'GET', headers: o.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

/**
 * Between the LB and Prometheus: passes requests through (asking for identity encoding) and keeps the
 * exact bytes Prometheus answered, by the `tag` parameter (URL or form body); serves ODD_METRICS to scrape.
 */
function recordingProxy(prometheus: () => string, recorded: Map<string, Buffer>): Server {
  return createServer((req, res) => {
    if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(ODD_METRICS);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const headers: Record<string, string> = {};
      if (req.headers['content-type']) headers['content-type'] = req.headers['content-type'];
      const answer = await send(`${prometheus()}${req.url}`, {
        method: req.method!,
        headers,
        body: Buffer.concat(chunks),
      });
      const tag =
        new URL(req.url!, 'http://x').searchParams.get('tag') ??
        new URLSearchParams(Buffer.concat(chunks).toString()).get('tag');
      if (tag) recorded.set(tag, answer.body);
      res.writeHead(answer.status, { 'content-type': String(answer.headers['content-type']) });
      res.end(answer.body);
    });
  });
}

/** Spec §10 applied to the parsed document: the oracle for what the client must read. */
function expectedDocument(path: string, doc: { data?: unknown }): unknown {
  const drop = (set: Record<string, unknown> | undefined) => {
    for (const l of FILTERED) if (set) delete set[l];
  };
  const data = doc.data as { result?: Array<{ metric: Record<string, unknown> }> } | unknown[] | null;
  if (/\/query(_range)?$/.test(path)) {
    const result = (data as { result?: unknown }).result;
    // a scalar result is `[time, "value"]`: nothing to filter
    if ((data as { resultType?: string }).resultType !== 'scalar' && Array.isArray(result))
      for (const r of result) drop(r.metric);
  } else if (path.endsWith('/series')) for (const s of data as Record<string, unknown>[]) drop(s);
  else if (path.endsWith('/labels')) doc.data = (data as string[]).filter((l) => !FILTERED.includes(l));
  else if (FILTERED.some((l) => path.endsWith(`/label/${l}/values`))) doc.data = null;
  return doc;
}

/** True when `short` is `long` with some bytes deleted and nothing changed or added. */
function isSubsequence(short: Buffer, long: Buffer): boolean {
  let i = 0;
  for (let j = 0; j < long.length && i < short.length; j++) if (long[j] === short[i]) i++;
  return i === short.length;
}

describe('ceems_lb wire details', { timeout: 180_000 }, () => {
  const tmp = tempDir('ceems-lb-wire-');
  const recorded = new Map<string, Buffer>();
  let prometheus: PrometheusProcess | undefined;
  const proxy = recordingProxy(() => prometheus!.url, recorded);
  let lb: Started;
  let start = 0;
  let end = 0;

  before(async () => {
    const proxyUrl = await listening(proxy);
    const proxyHost = new URL(proxyUrl).host;
    prometheus = await startPrometheus({
      port: PROMETHEUS_PORT,
      dir: `${tmp.dir}/prometheus`,
      // An unreachable remote_read makes every query answer with `warnings` (secondary querier errors).
      config: [
        'global: {scrape_interval: 1s}',
        'scrape_configs:',
        `  - {job_name: prometheus, static_configs: [{targets: ["127.0.0.1:${PROMETHEUS_PORT}"]}]}`,
        `  - {job_name: odd, static_configs: [{targets: ["${proxyHost}"]}]}`,
        'remote_read:',
        '  - {url: "http://127.0.0.1:1/read", read_recent: true}',
        '',
      ].join('\n'),
    });
    await waitFor('five scrapes of both targets', 60_000, async () => {
      const r = await fetch(`${prometheus!.url}/api/v1/query?query=count_over_time(odd_info[1m])`);
      const body = (await r.json()) as { data?: { result?: Array<{ value: [number, string] }> } };
      const counts = body.data?.result?.map((x) => Number(x.value[1])) ?? [];
      if (counts.length < 2 || counts.some((c) => c < 5)) throw new Error(JSON.stringify(body));
      return true;
    });
    end = Math.floor(Date.now() / 1000);
    start = end - 4;
    // An admin's requests are forwarded as sent: the comparison is about the answers.
    createOwnershipDb(tmp.dir, {
      units: ['filtered', 'untouched'].map((cluster) => ({ cluster, uuid: '1', project: 'p', user: 'u' })),
      projects: [],
      admins: ['boss'],
    });
    const config = writeYaml(`${tmp.dir}/config.yml`, {
      ceems_api_server: { data: { path: tmp.dir } },
      ceems_lb: {
        backends: [
          { id: 'filtered', tsdb: [{ web: { url: proxyUrl }, filter_labels: FILTERED }] },
          { id: 'untouched', tsdb: [{ web: { url: proxyUrl }, filter_labels: ['not_a_label'] }] },
        ],
      },
    });
    lb = await startProgram('ceems_lb', [`--config.file=${config}`, '--web.listen-address=127.0.0.1:0']);
  });

  after(async () => {
    await lb?.stop();
    await prometheus?.stop();
    proxy.close();
    tmp.cleanup();
  });

  /** The API calls of spec §10 with the shapes a real Prometheus gives: stats, warnings, empty results. */
  const calls = (): Array<{ path: string; query: Record<string, string>; post?: boolean }> => [
    { path: '/api/v1/query', query: { query: 'up', time: String(end), stats: 'all' } },
    { path: '/api/v1/query', query: { query: 'odd_info', time: String(end) } },
    { path: '/api/v1/query', query: { query: 'odd_info', time: String(end) }, post: true },
    { path: '/api/v1/query', query: { query: 'nothing_here', time: String(end) } },
    { path: '/api/v1/query', query: { query: 'scalar(up{job="odd"})', time: String(end) } },
    { path: '/api/v1/query', query: { query: 'odd_info / 0', time: String(end) } },
    {
      path: '/api/v1/query_range',
      query: {
        query: '{__name__=~"up|odd_info"}',
        start: String(start),
        end: String(end),
        step: '1',
        stats: 'all',
      },
    },
    {
      path: '/api/v1/query_range',
      query: { query: 'nothing_here', start: String(start), end: String(end), step: '1' },
    },
    {
      path: '/api/v1/series',
      query: { 'match[]': '{__name__=~"up|odd_info"}', start: String(start), end: String(end) },
    },
    { path: '/api/v1/series', query: { 'match[]': 'nothing_here' } },
    { path: '/api/v1/labels', query: {} },
    { path: '/api/v1/label/job/values', query: {} },
    { path: '/api/v1/label/instance/values', query: {} },
    { path: '/api/v1/label/note/values', query: {} },
    { path: '/api/v1/label/nothing_here/values', query: {} },
  ];

  async function throughLb(cluster: string, i: number, call: ReturnType<typeof calls>[number]) {
    const tag = `${cluster}-${i}`;
    const params = new URLSearchParams({ ...call.query, tag }).toString();
    const headers: Record<string, string> = { 'X-Grafana-User': 'boss', 'X-Ceems-Cluster-Id': cluster };
    const answer = call.post
      ? await send(`${lb.url}${call.path}`, {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
          body: Buffer.from(params),
        })
      : await send(`${lb.url}${call.path}?${params}`, { headers });
    const backend = recorded.get(tag);
    assert.ok(backend, `${tag}: Prometheus was not asked (LB answered ${answer.status}: ${answer.body})`);
    return { answer, backend, label: `${call.path} ${JSON.stringify(call.query)}` };
  }

  it('passes a real Prometheus answer through byte for byte when no listed label is in it', async () => {
    for (const [i, call] of calls().entries()) {
      const { answer, backend, label } = await throughLb('untouched', i, call);
      assert.equal(answer.status, 200, label);
      assert.equal(answer.body.toString(), backend.toString(), label);
      assert.equal(answer.headers['content-length'], String(backend.length), label);
    }
  });

  it('answers the real Prometheus bytes minus the filtered labels, keeping escapes, stats and warnings', async () => {
    let sawEscapes = false;
    let sawWarnings = false;
    for (const [i, call] of calls().entries()) {
      const { answer, backend, label } = await throughLb('filtered', i, call);
      assert.equal(answer.status, 200, label);
      const want = expectedDocument(call.path, JSON.parse(backend.toString()));
      assert.deepEqual(JSON.parse(answer.body.toString()), want, label);
      if (!FILTERED.some((l) => call.path.endsWith(`/label/${l}/values`))) {
        assert.ok(
          isSubsequence(answer.body, backend),
          `${label}: bytes changed, not only removed:\n${answer.body}\n${backend}`,
        );
      }
      sawEscapes ||= backend.includes('\\u003c');
      sawWarnings ||= backend.includes('"warnings":[');
    }
    assert.ok(sawEscapes, 'a Prometheus answer held Go-escaped characters');
    assert.ok(sawWarnings, 'a Prometheus answer held warnings');
  });

  it('replaces the values of a filtered label by null and keeps the rest of the answer', async () => {
    const call = { path: '/api/v1/label/job/values', query: {} };
    const { answer, backend } = await throughLb('filtered', 100, call);
    const data = backend.toString().match(/"data":(\[[^\]]*\])/)![1]!;
    assert.equal(answer.body.toString(), backend.toString().replace(`"data":${data}`, '"data":null'));
  });
});

describe('ceems_lb Pyroscope bodies without Content-Type', { timeout: 60_000 }, () => {
  const tmp = tempDir('ceems-lb-pyro-');
  const seen: Array<{ headers: IncomingHttpHeaders; body: Buffer }> = [];
  const pyroscope = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': 'application/proto' });
      res.end();
    });
  });
  let lb: Started;

  before(async () => {
    const pyroUrl = await listening(pyroscope);
    createOwnershipDb(tmp.dir, {
      units: [{ cluster: 'pyro', uuid: '1001', project: 'acc1', user: 'alice' }],
      projects: [{ cluster: 'pyro', name: 'acc1', users: ['alice'] }],
      admins: ['boss'],
    });
    const config = writeYaml(`${tmp.dir}/config.yml`, {
      ceems_api_server: { data: { path: tmp.dir } },
      ceems_lb: { backends: [{ id: 'pyro', pyroscope: [{ web: { url: pyroUrl } }] }] },
    });
    lb = await startProgram('ceems_lb', [`--config.file=${config}`, '--web.listen-address=127.0.0.1:0']);
  });

  after(async () => {
    await lb?.stop();
    pyroscope.close();
    tmp.cleanup();
  });

  const call = (rpc: string, body: Buffer, headers: Record<string, string> = {}) =>
    send(`${lb.url}/querier.v1.QuerierService/${rpc}`, {
      method: 'POST',
      headers: { 'X-Grafana-User': 'alice', 'X-Ceems-Cluster-Id': 'pyro', ...headers },
      body,
    });

  it('reads a protobuf body sent without Content-Type and forwards it named application/proto', async () => {
    const body = Buffer.concat([
      pbString(1, 'process_cpu:cpu:nanoseconds:cpu:nanoseconds'),
      pbString(2, '{service_name = "1001"}'),
      Buffer.from([0x18, 0x01, 0x20, 0x02]),
    ]);
    const before = seen.length;
    const ok = await call('SelectMergeStacktraces', body);
    assert.equal(ok.status, 200, ok.body.toString());
    const forwarded = seen.at(-1)!;
    assert.equal(seen.length, before + 1);
    assert.equal(forwarded.headers['content-type'], 'application/proto');
    // the selector the check parsed, printed canonically, in the body the backend reads
    assert.deepEqual(
      forwarded.body,
      Buffer.concat([
        pbString(1, 'process_cpu:cpu:nanoseconds:cpu:nanoseconds'),
        pbString(2, '{service_name="1001"}'),
        Buffer.from([0x18, 0x01, 0x20, 0x02]),
      ]),
    );
  });

  it('still checks the selectors of such a body strictly', async () => {
    const before = seen.length;
    const foreign = await call('LabelNames', pbString(1, '{service_name="2001"}'));
    assert.equal(foreign.status, 403, foreign.body.toString());
    const unrestricted = await call('LabelNames', pbString(1, '{service_name=~".+"}'));
    assert.equal(unrestricted.status, 403);
    const broken = await call('LabelNames', pbString(1, '{service_name="1001"'));
    assert.equal(broken.status, 400);
    assert.match(broken.body.toString(), /"errorType":"bad_data","error":"invalid query: /);
    const notProtobuf = await call('LabelNames', Buffer.from('{"matchers":["{service_name=\\"1001\\"}"]}'));
    assert.equal(notProtobuf.status, 400, 'JSON without its Content-Type is not protobuf');
    assert.equal(seen.length, before, 'nothing reached the backend');
    const other = await call('LabelNames', pbString(1, '{service_name="1001"}'), {
      'content-type': 'text/plain',
    });
    assert.equal(other.status, 400);
    assert.equal(
      other.body.toString(),
      '{"status":"error","data":null,"errorType":"bad_data","error":"unsupported request body"}\n',
    );
  });
});
