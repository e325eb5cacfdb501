// The web view's LB client against a fake ceems_lb: series are read as the viewing user (the LB then
// applies its own ownership check), aligned on one time axis and trimmed to the period with data; node
// power sources are read as the LB's service user; LB refusals reach the caller with their status.

import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { energySource, LbClient, LbError, panelQueries } from '../../../src/web/lb.js';
import { parseUserMap, webViewOptions } from '../../../src/web/options.js';

interface Seen {
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
}

describe('LB client', () => {
  let server: Server;
  let url: string;
  const seen: Seen[] = [];
  before(async () => {
    server = createServer((req, res) => {
      const u = new URL(req.url!, 'http://x');
      seen.push({ path: u.pathname, query: u.searchParams, headers: req.headers });
      const q = u.searchParams.get('query') ?? '';
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.headers['x-grafana-user'] === 'intruder')
        return json(403, {
          status: 'error',
          errorType: 'forbidden',
          error: 'user do not have permissions to view unit metrics',
        });
      if (u.pathname === '/api/v1/query') {
        const result = q.includes('estimated')
          ? [
              { metric: { hostname: 'n1' }, value: [0, '1'] },
              { metric: { hostname: 'n2' }, value: [0, '1'] },
            ]
          : [
              { metric: { hostname: 'n2' }, value: [0, '1'] },
              { metric: { hostname: 'n3' }, value: [0, '1'] },
            ];
        return json(200, { status: 'success', data: { resultType: 'vector', result } });
      }
      const start = Number(u.searchParams.get('start'));
      // samples from start+20 to start+40 every 10 s; the GPU query has none
      const values = q.includes('gpu') ? [] : [20, 30, 40].map((d) => [start + d, String(d)]);
      return json(200, {
        status: 'success',
        data: { resultType: 'matrix', result: values.length ? [{ metric: {}, values }] : [] },
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  test('a unit chart is read as the viewer, on the unit’s cluster, aligned and trimmed to its data', async () => {
    seen.length = 0;
    const lb = new LbClient(url, 5000);
    const chart = await lb.unitChart('power', '4242', 'usr1', 'slurm-0', 1000, 1100);
    assert.equal(seen.length, 2, 'host and GPU power');
    for (const s of seen) {
      assert.equal(s.path, '/api/v1/query_range');
      assert.equal(s.headers['x-grafana-user'], 'usr1');
      assert.equal(s.headers['x-ceems-cluster-id'], 'slurm-0');
      assert.match(s.query.get('query')!, /\{uuid="4242"\}/);
      assert.equal(s.query.get('step'), '1s');
    }
    assert.equal(chart.unit, 'W');
    assert.deepEqual([chart.x[0], chart.x.at(-1), chart.x.length], [1020, 1040, 21]);
    assert.deepEqual(
      chart.series.map((s) => s.label),
      ['host'],
    );
    assert.deepEqual(
      chart.series[0]!.values.filter((v) => v !== null),
      [20, 30, 40],
    );
  });

  test('an LB refusal keeps its status', async () => {
    const lb = new LbClient(url, 5000);
    await assert.rejects(
      lb.unitChart('cpu', '4242', 'intruder', 'slurm-0', 1000, 1100),
      (e) => e instanceof LbError && e.status === 403,
    );
  });

  test('unit ids outside the LB’s literal alphabet never reach PromQL', () => {
    for (const bad of ['4242"} or up{', '42.*', '', '42 42'])
      assert.throws(() => panelQueries('power', bad), /not a unit id/);
  });

  test('power sources: read as the service user, measured wins over estimated, cached a minute', async () => {
    seen.length = 0;
    let now = 0;
    const lb = new LbClient(url, 5000, () => now);
    const sources = await lb.powerSources('slurm-0');
    assert.deepEqual(Object.fromEntries(sources), { n1: 'estimated', n2: 'measured', n3: 'measured' });
    assert.ok(seen.every((s) => s.headers['x-grafana-user'] === 'ceems-int-svc'));
    await lb.powerSources('slurm-0');
    assert.equal(seen.length, 2, 'cached');
    now = 61_000;
    await lb.powerSources('slurm-0');
    assert.equal(seen.length, 4, 'refreshed after a minute');
  });

  test('the energy source of a unit from the sources of its nodes', () => {
    const m = new Map([
      ['n1', 'estimated'],
      ['n2', 'measured'],
    ]);
    assert.equal(energySource(['n1'], m), 'estimated');
    assert.equal(energySource(['n2'], m), 'measured');
    assert.equal(energySource(['n1', 'n2'], m), 'mixed');
    assert.equal(energySource(['n1', 'n9'], m), 'unknown');
    assert.equal(energySource([], m), 'unknown');
  });
});

describe('web view options', () => {
  test('flags: LB URL and basic-auth login map; malformed values name their flag', () => {
    const o = webViewOptions(['X-Grafana-User'], 'http://lb:9030/', 'alice.s=alice, bob=bob');
    assert.equal(o.lbUrl, 'http://lb:9030');
    assert.deepEqual(Object.fromEntries(o.basicAuthUsers), { 'alice.s': 'alice', bob: 'bob' });
    assert.equal(webViewOptions([], '', '').lbUrl, undefined);
    assert.equal(webViewOptions([], undefined, undefined).basicAuthUsers.size, 0);
    assert.throws(() => webViewOptions([], 'not a url', ''), /--web.ui.lb-url: 'not a url' is not a URL/);
    assert.throws(
      () => webViewOptions([], '', 'alice'),
      /--web.ui.basic-auth-users: invalid login=user pair/,
    );
    assert.throws(() => parseUserMap('alice'), /invalid login=user pair/);
    assert.throws(() => parseUserMap('=alice'), /invalid login=user pair/);
  });
});
