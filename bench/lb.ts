// ceems_lb overhead: (1) parse + selector rule + ownership check per query, in process, over the test
// corpora; (2) query latency (p50/p99, one client) and throughput (16 clients) of a real Prometheus queried
// directly and through the load balancer, in the same run. Needs `npm run build` (the LB runs from dist/)
// and the testbed's Prometheus (started on port 9295 and stopped again).

import Fastify from 'fastify';
import { Pool } from 'undici';
import { checkQueries } from '../src/lb/access.js';
import { Authorizer, DbAuthzSource } from '../src/lb/authz.js';
import { createOwnershipDb, listen, readCorpus, tempDir, writeYaml } from '../test/fixtures/lb/setup.js';
import { ROOT, startProgram } from '../test/helpers/process.js';
import { startTestbedPrometheus, type TestbedPrometheus } from '../test/helpers/prometheus.js';

const PROM_PORT = 9295;
const USERS = 50;
const UNITS_PER_USER = 20;
const uuidOf = (user: number, unit: number) => String(100_000 + user * 100 + unit);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function checkOverhead(small: boolean, dbFile: string): Promise<void> {
  const strip = (q: string) => q.replace(/^\[\w+\] /, '').split(' ‖ ');
  const legit = readCorpus(`${ROOT}/test/fixtures/lb/legit-queries.txt`).map(strip);
  const attacks = readCorpus(`${ROOT}/test/fixtures/lb/attack-queries.txt`).map(strip);
  const policy = { restrictingLabel: 'uuid', unrestrictedMetrics: new Set(['ceems_emissions_gCo2_kWh']) };
  const reps = small ? 20 : 500;
  const timeEach = (set: string[][]) => {
    for (const qs of set) checkQueries(qs, 'expr', policy); // warm-up
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) for (const qs of set) checkQueries(qs, 'expr', policy);
    return ((performance.now() - t0) * 1000) / (reps * set.length);
  };
  console.log(
    `parse + selector rule: legit ${timeEach(legit).toFixed(1)} µs/query (${legit.length} queries), attacks ${timeEach(attacks).toFixed(1)} µs/query (${attacks.length} queries)`,
  );
  const source = new DbAuthzSource(dbFile);
  const uncached = new Authorizer(source, 0);
  const cached = new Authorizer(source);
  const n = small ? 200 : 5000;
  const ownership = async (a: Authorizer) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const u = i % USERS;
      await a.isAdmin(`user${u}`);
      await a.owns(`user${u}`, 'hpc-0', [uuidOf(u, i % UNITS_PER_USER), uuidOf(u, (i + 1) % UNITS_PER_USER)]);
    }
    return ((performance.now() - t0) * 1000) / n;
  };
  await ownership(uncached); // warm-up
  const u = await ownership(uncached);
  const c = await ownership(cached);
  console.log(
    `admin + ownership check (SQLite, 2 uuids): uncached ${u.toFixed(1)} µs, cached ${c.toFixed(1)} µs`,
  );
  await source.close();
}

async function load(
  base: string,
  path: string,
  headers: Record<string, string>,
  requests: number,
  concurrency: number,
): Promise<{ p50: number; p99: number; rps: number }> {
  const pool = new Pool(base, { connections: concurrency });
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        next++;
        const s = performance.now();
        const r = await pool.request({ path, method: 'GET', headers });
        await r.body.text();
        if (r.statusCode !== 200) throw new Error(`${base}${path}: HTTP ${r.statusCode}`);
        latencies.push(performance.now() - s);
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), rps: requests / elapsed };
}

export async function run(small: boolean): Promise<void> {
  const tmp = tempDir('ceems-lb-bench-');
  const units: Array<{ cluster: string; uuid: string; project: string; user: string }> = [];
  for (let u = 0; u < USERS; u++)
    for (let j = 0; j < UNITS_PER_USER; j++)
      units.push({ cluster: 'hpc-0', uuid: uuidOf(u, j), project: `p${u}`, user: `user${u}` });
  const dbFile = createOwnershipDb(tmp.dir, {
    units,
    projects: Array.from({ length: USERS }, (_, u) => ({
      cluster: 'hpc-0',
      name: `p${u}`,
      users: [`user${u}`],
    })),
    admins: ['boss'],
  });
  await checkOverhead(small, dbFile);

  const exporter = Fastify({ logger: false });
  exporter.get(
    '/metrics',
    async () =>
      units
        .map(
          (x) => `uuid:ceems_cpu_usage:ratio_irate{uuid="${x.uuid}",hostname="n${x.user}"} ${Math.random()}`,
        )
        .join('\n') + '\n',
  );
  const target = (await listen(exporter)).replace('http://', '');
  let prometheus: TestbedPrometheus | undefined;
  let lb: Awaited<ReturnType<typeof startProgram>> | undefined;
  try {
    prometheus = startTestbedPrometheus(PROM_PORT, [`bench=${target}`]);
    const prom = prometheus.url;
    const config = writeYaml(`${tmp.dir}/config.yml`, {
      ceems_api_server: { data: { path: tmp.dir } },
      ceems_lb: { backends: [{ id: 'hpc-0', tsdb: [{ web: { url: prom } }] }] },
    });
    lb = await startProgram('ceems_lb', [`--config.file=${config}`, '--web.listen-address=127.0.0.1:0']);
    const query = `sum by (uuid) (uuid:ceems_cpu_usage:ratio_irate{uuid=~"${uuidOf(7, 1)}|${uuidOf(7, 2)}"})`;
    const now = Math.floor(Date.now() / 1000);
    const path = `/api/v1/query_range?query=${encodeURIComponent(query)}&start=${now - 300}&end=${now + 60}&step=15`;
    const headers = { 'x-grafana-user': 'user7', 'x-ceems-cluster-id': 'hpc-0' };
    for (let i = 0; i < 100; i++) {
      const r = await fetch(`${prom}/api/v1/query?query=${encodeURIComponent(query)}`);
      if (((await r.json()) as { data: { result: unknown[] } }).data.result.length === 2) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const requests = small ? 100 : 3000;
    await load(lb.url, path, headers, Math.min(requests, 200), 4); // warm-up of both paths
    for (const [label, concurrency] of [
      ['latency, 1 client', 1],
      ['throughput, 16 clients', 16],
    ] as const) {
      const direct = await load(prom, path, headers, requests, concurrency);
      const viaLb = await load(lb.url, path, headers, requests, concurrency);
      console.log(
        `${label}: direct p50 ${direct.p50.toFixed(2)} ms p99 ${direct.p99.toFixed(2)} ms ${direct.rps.toFixed(0)} req/s | ` +
          `via LB p50 ${viaLb.p50.toFixed(2)} ms p99 ${viaLb.p99.toFixed(2)} ms ${viaLb.rps.toFixed(0)} req/s | ` +
          `added p50 ${(viaLb.p50 - direct.p50).toFixed(2)} ms, throughput ratio ${(viaLb.rps / direct.rps).toFixed(2)}`,
      );
    }
  } finally {
    await lb?.stop();
    prometheus?.stop();
    await exporter.close();
    tmp.cleanup();
  }
}
