// ceems_lb spreading one cluster over two real Prometheus replicas that scrape the same two exporters:
// both replicas answer, one is SIGKILLed while clients keep querying (every query still answers, through
// the retry of spec lb.md §9.3), access control holds throughout, and the restarted replica is put back by
// the health check.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
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

const PORTS = [9360, 9361];

/** How many `/api/v1/query` requests a Prometheus has served (its own counter). */
async function queriesServed(p: PrometheusProcess): Promise<number> {
  const text = await (await fetch(`${p.url}/metrics`)).text();
  const m = /^prometheus_http_requests_total\{code="200",handler="\/api\/v1\/query"\} (\d+)$/m.exec(text);
  return Number(m?.[1] ?? 0);
}

describe('ceems_lb over two Prometheus replicas', { timeout: 240_000 }, () => {
  const tmp = tempDir('ceems-lb-replicas-');
  let nodes: Node[] = [];
  const replicas: PrometheusProcess[] = [];
  let lb: Started;
  const memoryOf = (n: Node) => `ceems_compute_unit_memory_used_bytes{uuid="${n.uuid}"}`;

  before(async () => {
    nodes = await startNodes(tmp.dir);
    const targets = nodes.map((n) => n.exporter.address);
    for (const [i, port] of PORTS.entries())
      replicas.push(
        await startPrometheus({
          port,
          config: prometheusConfig(targets),
          dir: join(tmp.dir, `replica-${i}`),
        }),
      );
    const config = lbConfig(join(tmp.dir, 'lb'), nodes, {
      replicated: replicas.map((r) => ({ web: { url: r.url } })),
    });
    lb = await startProgram('ceems_lb', [`--config.file=${config}`, '--web.listen-address=127.0.0.1:0']);
    // Both replicas hold both units before the tests start.
    for (const r of replicas)
      await waitFor(`${r.url} to hold both units`, 60_000, async () => {
        const res = await fetch(`${r.url}/api/v1/query?query=count(ceems_compute_unit_memory_used_bytes)`);
        const text = await res.text();
        if (!text.includes('"value":[') || !/"2"\]/.test(text)) throw new Error(text);
        return true;
      });
  });

  after(async () => {
    await lb?.stop();
    for (const r of replicas) await r.stop();
    await stopNodes(nodes);
    tmp.cleanup();
  });

  it('answers from both replicas, round robin, each user only their own unit', async () => {
    const before = await Promise.all(replicas.map(queriesServed));
    for (let i = 0; i < 10; i++) {
      for (const n of nodes) {
        const own = await lbQuery(lb.url, 'replicated', n.owner, memoryOf(n), { post: i % 2 === 0 });
        assert.equal(own.status, 200, own.text);
        assert.deepEqual(own.values, { [n.uuid]: n.memoryUsed });
      }
    }
    const served = (await Promise.all(replicas.map(queriesServed))).map((n, i) => n - before[i]!);
    assert.ok(
      served.every((n) => n >= 5),
      `each replica served its share of 20 queries: ${served}`,
    );
    const other = await lbQuery(lb.url, 'replicated', 'alice', memoryOf(nodes[1]!));
    assert.equal(other.status, 403, other.text);
    const all = await lbQuery(lb.url, 'replicated', 'alice', 'sum(ceems_compute_unit_memory_used_bytes)');
    assert.equal(all.status, 403, all.text);
  });

  it('keeps answering every query while a replica is killed, and denying foreign units', async (t) => {
    const seen: string[] = [];
    const cut: string[] = [];
    let stop = false;
    // Four clients, GET and POST, owners and a user asking for someone else's unit, until told to stop.
    const client = async (k: number) => {
      let n = 0;
      while (!stop) {
        const node = nodes[(k + n) % 2]!;
        const asker = k === 3 ? 'mallory' : node.owner;
        let got: Awaited<ReturnType<typeof lbQuery>>;
        try {
          got = await lbQuery(lb.url, 'replicated', asker, memoryOf(node), { post: k % 2 === 1 });
        } catch (e) {
          // Allowed by spec §9.3: a response already started by the killed replica cannot be retried.
          cut.push(`client ${k}: ${(e as Error).message}`);
          n++;
          continue;
        }
        const ok =
          asker === 'mallory'
            ? got.status === 403
            : got.status === 200 && got.values[node.uuid] === node.memoryUsed;
        if (!ok) seen.push(`client ${k} as ${asker}: ${got.status} ${got.text.slice(0, 200)}`);
        n++;
      }
      return n;
    };
    const clients = [0, 1, 2, 3].map(client);
    await new Promise((r) => setTimeout(r, 1000));
    await replicas[1]!.kill();
    await new Promise((r) => setTimeout(r, 3000));
    stop = true;
    const counts = await Promise.all(clients);
    assert.deepEqual(seen, [], `unexpected answers (of ${counts} queries per client)`);
    // Each client has one request in flight at a time: only those under way at the kill may be cut.
    assert.ok(cut.length <= 4, `only responses in flight at the kill were cut: ${cut.join('; ')}`);
    t.diagnostic(`queries per client: ${counts}; responses cut by the kill: ${cut.length}`);
    assert.ok(
      counts.every((c) => c >= 10),
      `every client kept going: ${counts}`,
    );
    assert.match(
      lb.stderr(),
      new RegExp(`Backend marked as dead.*${PORTS[1]}|${PORTS[1]}.*Backend marked as dead`),
    );
  });

  it('puts the restarted replica back after a health check', async () => {
    await replicas[1]!.restart();
    const start = await queriesServed(replicas[1]!);
    // Health checks run every 20 s (spec §9.1); the replica takes queries again once one has seen it.
    await waitFor(
      'the restarted replica to serve queries through the LB',
      45_000,
      async () => {
        const got = await lbQuery(lb.url, 'replicated', 'alice', memoryOf(nodes[0]!));
        assert.equal(got.status, 200, got.text);
        const served = (await queriesServed(replicas[1]!)) - start;
        if (served === 0) throw new Error('the restarted replica served no query yet');
        return true;
      },
      500,
    );
  });
});
