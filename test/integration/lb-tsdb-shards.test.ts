// Several TSDBs holding different nodes, all real Prometheus: shard A scrapes node A, shard B (served under
// `--web.route-prefix=/prom`) node B; a remote-read Prometheus and a federating one each see both shards;
// a multi-tenant gateway (Mimir-style `X-Scope-OrgID`) serves each shard as a tenant. Through ceems_lb every
// layout answers its owners with their own unit only; the API server's TSDB updater fills both units through
// the remote-read and federating endpoints, with one updater per shard, and one per tenant.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createUpdaters } from '../../src/api/updater/index.js';
import { createLogger } from '../../src/common/logger.js';
import { tempDir } from '../fixtures/lb/setup.js';
import {
  lbConfig,
  lbQuery,
  type Node,
  prometheusConfig,
  startNodes,
  stopNodes,
} from '../fixtures/lb/tsdb-layouts.js';
import { type Started, startProgram } from '../helpers/process.js';
import { type PrometheusProcess, startPrometheus } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/wait.js';

const [SHARD_A, SHARD_B, REMOTE_READ, FEDERATING] = [9362, 9363, 9364, 9365];
const PREFIX = '/prom';

/** Prometheus scraping the `/federate` endpoint of each shard (`host:port` and metrics path). */
function federationJobs(shards: Array<{ target: string; path: string }>): string {
  return [
    'scrape_configs:',
    ...shards.map(
      (s, i) =>
        `  - {job_name: shard-${i}, honor_labels: true, metrics_path: '${s.path}', params: {'match[]': ['{__name__=~"ceems_.+"}']}, static_configs: [{targets: ['${s.target}']}]}`,
    ),
  ].join('\n');
}

/**
 * Stand-in for a multi-tenant gateway such as Mimir's (which does not run here): the Prometheus API under
 * `/prometheus`, 401 `no org id` unless `X-Scope-OrgID` names a known tenant (as Mimir answers), each
 * tenant's requests forwarded to its own Prometheus. Records the tenant header of every request.
 */
function tenantGateway(tenants: Record<string, string>) {
  const seen: Array<{ tenant: string | undefined; path: string }> = [];
  const server = createServer((req, res) => {
    // Node joins repeated headers with ", ": a forged value sent beside the configured one would show.
    const tenant = req.headers['x-scope-orgid'] as string | undefined;
    seen.push({ tenant, path: req.url! });
    const upstream = tenant === undefined ? undefined : tenants[tenant];
    if (!upstream || !req.url!.startsWith('/prometheus/')) {
      res.writeHead(401, { 'content-type': 'text/plain' });
      res.end('no org id\n');
      return;
    }
    const target = new URL(upstream + req.url!.slice('/prometheus'.length));
    const up = request(
      target,
      { method: req.method, headers: { ...req.headers, host: target.host } },
      (r) => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', (e) => {
      res.writeHead(502);
      res.end(String(e));
    });
    req.pipe(up);
  });
  return { server, seen };
}

/** The value of `<query>` per uuid on a Prometheus, directly (no LB). */
async function direct(url: string, query: string): Promise<Record<string, number>> {
  const body = (await (await fetch(`${url}/api/v1/query?query=${encodeURIComponent(query)}`)).json()) as {
    data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
  };
  return Object.fromEntries(body.data.result.map((s) => [s.metric.uuid ?? '', Number(s.value[1])]));
}

describe('several TSDBs: shards, remote read, federation, route prefix, tenants', {
  timeout: 240_000,
}, () => {
  const tmp = tempDir('ceems-lb-shards-');
  let nodes: Node[] = [];
  const proms: PrometheusProcess[] = [];
  let gateway: ReturnType<typeof tenantGateway>;
  let gatewayUrl = '';
  let lb: Started;
  let shardA: PrometheusProcess;
  let shardB: PrometheusProcess;
  let remoteRead: PrometheusProcess;
  let federating: PrometheusProcess;
  const memoryOf = (n: Node) => `ceems_compute_unit_memory_used_bytes{uuid="${n.uuid}"}`;
  let tSamples = 0;

  before(async () => {
    nodes = await startNodes(tmp.dir);
    const [a, b] = nodes as [Node, Node];
    const start = async (port: number, config: string, routePrefix?: string) => {
      const p = await startPrometheus({ port, config, dir: join(tmp.dir, `prom-${port}`), routePrefix });
      proms.push(p);
      return p;
    };
    shardA = await start(SHARD_A, prometheusConfig([a.exporter.address]));
    shardB = await start(SHARD_B, prometheusConfig([b.exporter.address]), PREFIX);
    tSamples = Date.now();
    remoteRead = await start(
      REMOTE_READ,
      prometheusConfig(
        [],
        // read_recent: the local TSDB of this Prometheus is empty, every query must read the shards.
        `remote_read:\n  - {url: '${shardA.url}/api/v1/read', read_recent: true}\n  - {url: '${shardB.url}/api/v1/read', read_recent: true}`,
      ),
    );
    federating = await start(
      FEDERATING,
      prometheusConfig(
        [],
        federationJobs([
          { target: `127.0.0.1:${SHARD_A}`, path: '/federate' },
          { target: `127.0.0.1:${SHARD_B}`, path: `${PREFIX}/federate` },
        ]),
      ),
    );
    gateway = tenantGateway({ tenantA: shardA.url, tenantB: shardB.url });
    gateway.server.listen(0, '127.0.0.1');
    await once(gateway.server, 'listening');
    gatewayUrl = `http://127.0.0.1:${(gateway.server.address() as AddressInfo).port}/prometheus`;
    const tenant = (id: string) => ({
      web: { url: gatewayUrl, http_headers: { 'X-Scope-OrgID': { values: [id] } } },
    });
    const config = lbConfig(join(tmp.dir, 'lb'), nodes, {
      'remote-read': [{ web: { url: remoteRead.url } }],
      federated: [{ web: { url: federating.url } }],
      prefixed: [{ web: { url: shardB.url } }],
      'tenant-a': [tenant('tenantA')],
      'tenant-b': [tenant('tenantB')],
    });
    lb = await startProgram('ceems_lb', [`--config.file=${config}`, '--web.listen-address=127.0.0.1:0']);
    // Every layout holds at least 3 samples of each unit before the tests start (a range query then has
    // a sample at one of its steps).
    for (const p of [remoteRead, federating])
      await waitFor(`${p.url} to hold 3 samples of both shards' units`, 60_000, async () => {
        const got = await direct(p.url, 'count_over_time(ceems_compute_unit_memory_used_bytes[1m]) >= 3');
        assert.deepEqual(Object.keys(got).sort(), nodes.map((n) => n.uuid).sort());
        return true;
      });
  });

  after(async () => {
    await lb?.stop();
    if (gateway) {
      gateway.server.closeAllConnections();
      await new Promise((r) => (gateway.server as Server).close(r));
    }
    for (const p of proms.reverse()) await p.stop();
    await stopNodes(nodes);
    tmp.cleanup();
  });

  it('holds each node in its own shard only', async () => {
    const [a, b] = nodes as [Node, Node];
    assert.deepEqual(await direct(shardA.url, 'ceems_compute_unit_memory_used_bytes'), {
      [a.uuid]: a.memoryUsed,
    });
    assert.deepEqual(await direct(shardB.url, 'ceems_compute_unit_memory_used_bytes'), {
      [b.uuid]: b.memoryUsed,
    });
    const unprefixed = await fetch(`http://127.0.0.1:${SHARD_B}/api/v1/query?query=up`);
    assert.equal(unprefixed.status, 404, 'shard B answers under its route prefix only');
  });

  // Prometheus' remote read selects series but serves no label values from the remotes (the federating
  // Prometheus holds copies, so it does).
  for (const [cluster, labelValues] of [
    ['remote-read', false],
    ['federated', true],
  ] as const) {
    it(`${cluster}: each owner sees their unit from its shard, nobody else's`, async () => {
      for (const n of nodes) {
        const own = await lbQuery(lb.url, cluster, n.owner, memoryOf(n), { post: true });
        assert.equal(own.status, 200, own.text);
        assert.deepEqual(own.values, { [n.uuid]: n.memoryUsed });
        const foreign = nodes.find((o) => o !== n)!;
        assert.equal((await lbQuery(lb.url, cluster, n.owner, memoryOf(foreign))).status, 403);
        const both = `${memoryOf(n)} or ${memoryOf(foreign)}`;
        assert.equal((await lbQuery(lb.url, cluster, n.owner, both)).status, 403);
        const asOwner = { headers: { 'X-Grafana-User': n.owner, 'X-Ceems-Cluster-Id': cluster } };
        const match = new URLSearchParams({ 'match[]': `{uuid="${n.uuid}"}` });
        const series = await fetch(`${lb.url}/api/v1/series?${match}`, asOwner);
        const data = ((await series.json()) as { data: Array<Record<string, string>> }).data;
        assert.ok(data.length > 0 && data.every((s) => s.uuid === n.uuid), JSON.stringify(data));
        const values = await fetch(`${lb.url}/api/v1/label/uuid/values?${match}`, asOwner);
        assert.deepEqual(((await values.json()) as { data: string[] }).data, labelValues ? [n.uuid] : []);
        assert.equal((await fetch(`${lb.url}/api/v1/label/uuid/values`, asOwner)).status, 403);
      }
      const any = await lbQuery(lb.url, cluster, 'alice', 'count(ceems_compute_unit_memory_used_bytes)');
      assert.equal(any.status, 403, any.text);
      const admin = await lbQuery(lb.url, cluster, 'adm', 'count(ceems_compute_unit_memory_used_bytes)');
      assert.match(admin.text, /"value":\[[0-9.]+,"2"\]/, 'the admin sees both shards merged');
    });
  }

  it('prefixed: a backend URL with the route prefix reaches the Prometheus under it', async () => {
    const [a, b] = nodes as [Node, Node];
    const own = await lbQuery(lb.url, 'prefixed', b.owner, memoryOf(b));
    assert.equal(own.status, 200, own.text);
    assert.deepEqual(own.values, { [b.uuid]: b.memoryUsed });
    assert.equal((await lbQuery(lb.url, 'prefixed', a.owner, memoryOf(b))).status, 403);
    const range = await fetch(
      `${lb.url}/api/v1/query_range?${new URLSearchParams({ query: memoryOf(b), start: String(tSamples / 1000), end: String(Date.now() / 1000), step: '1' })}`,
      { headers: { 'X-Grafana-User': b.owner, 'X-Ceems-Cluster-Id': 'prefixed' } },
    );
    assert.equal(range.status, 200);
    assert.match(await range.text(), new RegExp(`"uuid":"${b.uuid}"`));
  });

  it('tenants: the configured X-Scope-OrgID header selects the tenant, a client cannot choose another', async () => {
    const [a, b] = nodes as [Node, Node];
    gateway.seen.length = 0;
    const own = await lbQuery(lb.url, 'tenant-a', a.owner, memoryOf(a));
    assert.deepEqual(own.values, { [a.uuid]: a.memoryUsed }, own.text);
    const ownB = await lbQuery(lb.url, 'tenant-b', b.owner, memoryOf(b));
    assert.deepEqual(ownB.values, { [b.uuid]: b.memoryUsed }, ownB.text);
    // A client's own tenant header is replaced by the configured one (never sent beside it).
    const forged = await lbQuery(lb.url, 'tenant-a', a.owner, memoryOf(a), {
      headers: { 'X-Scope-OrgID': 'tenantB', 'x-scope-orgid': 'tenantB' },
    });
    assert.deepEqual(forged.values, { [a.uuid]: a.memoryUsed }, forged.text);
    assert.deepEqual(
      gateway.seen.map((s) => `${s.tenant} ${s.path.split('?')[0]}`),
      [
        'tenantA /prometheus/api/v1/query',
        'tenantB /prometheus/api/v1/query',
        'tenantA /prometheus/api/v1/query',
      ],
    );
    // Routing to the other tenant with a ceems_id matcher still checks ownership there.
    const override = await lbQuery(
      lb.url,
      'tenant-a',
      a.owner,
      `ceems_compute_unit_memory_used_bytes{uuid="${b.uuid}",ceems_id="tenant-b"}`,
    );
    assert.equal(override.status, 403, override.text);
  });

  describe('the TSDB updater', () => {
    const logger = createLogger({ level: 'error' });
    const ratio = (n: Node) => (n.memoryUsed * 100) / n.memoryTotal;
    /** Memory use ratio of each unit over the window, from the raw exporter series (no recording rules). */
    const query =
      'avg_over_time(avg by (uuid) (ceems_compute_unit_memory_used_bytes{uuid=~"{{.UUIDs}}"} * 100 / ceems_compute_unit_memory_total_bytes{uuid=~"{{.UUIDs}}"})[{{.Range}}:])';
    const updater = (id: string, web: Record<string, unknown>) => ({
      id,
      updater: 'tsdb' as const,
      web: web as { url: string },
      extra_config: { queries: { avg_cpu_mem_usage: { global: query } } },
    });

    /** Runs the updaters in order over fresh units of both nodes, as the collection cycle does. */
    async function runChain(configs: ReturnType<typeof updater>[]) {
      const all = createUpdaters(configs, logger, tmp.dir);
      const units = nodes.map((n) => ({
        uuid: n.uuid,
        started_at_ts: tSamples - 60_000,
        ended_at_ts: 0,
        total_time_seconds: {},
      }));
      const end = Date.now();
      try {
        for (const u of all.values()) await u.update('hpc', units, tSamples, end);
      } finally {
        for (const u of all.values()) await u.close();
      }
      return Object.fromEntries(
        units.map((u) => [u.uuid, (u as { avg_cpu_mem_usage?: Record<string, number> }).avg_cpu_mem_usage]),
      );
    }

    const layouts: Array<[string, () => ReturnType<typeof updater>[]]> = [
      ['through the remote-read Prometheus', () => [updater('global', { url: remoteRead.url })]],
      ['through the federating Prometheus', () => [updater('federation', { url: federating.url })]],
      [
        'with one updater per shard (shard B under its route prefix)',
        () => [updater('shard-a', { url: shardA.url }), updater('shard-b', { url: shardB.url })],
      ],
      [
        'with one updater per shard in the other order',
        () => [updater('shard-b', { url: shardB.url }), updater('shard-a', { url: shardA.url })],
      ],
      [
        'with one updater per tenant of the gateway',
        () =>
          ['tenantA', 'tenantB'].map((t) =>
            updater(t, { url: gatewayUrl, http_headers: { 'X-Scope-OrgID': { values: [t] } } }),
          ),
      ],
    ];
    for (const [name, configs] of layouts) {
      it(`fills every unit ${name}`, async () => {
        await waitFor(
          '8 s of samples in the shards (the window must exceed 4 scrape intervals)',
          30_000,
          () => Date.now() - tSamples > 8000,
        );
        const got = await runChain(configs());
        for (const n of nodes) {
          const v = got[n.uuid]?.global;
          assert.ok(
            v !== undefined && Math.abs(v - ratio(n)) < 1e-9 * ratio(n),
            `${n.uuid}: ${JSON.stringify(got[n.uuid])}, want ${ratio(n)}`,
          );
        }
      });
    }

    it('a shard alone fills only the units of its nodes', async () => {
      const [a, b] = nodes as [Node, Node];
      const got = await runChain([updater('shard-a', { url: shardA.url })]);
      assert.deepEqual(got[b.uuid], {});
      assert.ok(got[a.uuid]?.global !== undefined);
    });
  });
});
