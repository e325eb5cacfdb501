// ceems_lb overhead against its floor, in the same run:
// (1) in process: parse + selector rule per query over the test corpora, and the admin + ownership check;
// (2) a real Prometheus (the testbed's, on 127.0.0.1:9380) queried directly (the floor) and through ceems_lb
//     by the same closed-loop load generator with 1, 16 and 64 clients, and through a bare Node.js proxy
//     (the floor of any proxy on this runtime): throughput, p50/p99, added p50 and
//     the CPU seconds per 1000 queries of Prometheus, the proxies and the load generator (from /proc, so they
//     do not depend on how many cores the machine has). Needs `npm run build` (the LB runs from dist/).

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import Fastify from 'fastify';
import { Pool } from 'undici';
import { openDatabase } from '../src/common/sqlite.js';
import { checkQueries } from '../src/lb/access.js';
import { Authorizer, DbAuthzSource } from '../src/lb/authz.js';
import { ParseCache, parseQuery, type QueryParser } from '../src/lb/promql.js';
import { createOwnershipDb, listen, readCorpus, tempDir, writeYaml } from '../test/fixtures/lb/setup.js';
import { ROOT, type Started, startProgram } from '../test/helpers/process.js';

const PROM_PORT = 9380; // in this bench's fixed range (9380–9389)
const USERS = 50;
const UNITS_PER_USER = 20;
const uuidOf = (user: number, unit: number) => String(100_000 + user * 100 + unit);

/**
 * The testbed folder, found like scripts/test.sh does: $CEEMS_TESTBED_DIR, else $CEEMS_SHARED_DIR/testbed,
 * else `shared/testbed` next to the checkout or next to any folder above it (a worktree nested deeper).
 */
export function findTestbed(root: string, env: NodeJS.ProcessEnv = process.env): string {
  const valid = (dir: string) => existsSync(join(dir, 'prometheus', 'up.sh'));
  const explicit = env.CEEMS_TESTBED_DIR ?? (env.CEEMS_SHARED_DIR && join(env.CEEMS_SHARED_DIR, 'testbed'));
  if (explicit) {
    if (!valid(explicit))
      throw new Error(`no testbed at ${explicit} (from CEEMS_TESTBED_DIR/CEEMS_SHARED_DIR)`);
    return explicit;
  }
  const tried: string[] = [];
  for (let dir = resolve(root, '..'); ; dir = dirname(dir)) {
    const candidate = join(dir, 'shared', 'testbed');
    if (valid(candidate)) return candidate;
    tried.push(candidate);
    if (dir === dirname(dir)) break;
  }
  throw new Error(`testbed not found (tried ${tried.join(', ')}); set CEEMS_TESTBED_DIR or CEEMS_SHARED_DIR`);
}

interface Prometheus {
  url: string;
  pid: number;
  stop(): void;
}

/** The testbed's Prometheus on `port`, scraping `targets` every second; `pid` is Prometheus itself. */
function startPrometheus(testbed: string, port: number, targets: string[]): Prometheus {
  const script = (name: string, args: string[]) =>
    execFileSync('bash', [join(testbed, 'prometheus', name), '--port', String(port), ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 300_000,
    });
  const env = script('up.sh', ['--interval', '1s', '--no-wait', ...targets]);
  const data = /CEEMS_TESTBED_PROMETHEUS_DATA=(\S+)/.exec(env)?.[1];
  if (!data) throw new Error(`prometheus/up.sh printed no data directory:\n${env}`);
  const pid = Number(readFileSync(join(dirname(data), 'prometheus.pid'), 'utf8').trim());
  return { url: `http://127.0.0.1:${port}`, pid, stop: () => script('down.sh', ['--purge']) };
}

/** CPU seconds (user + system, every thread) a process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ (100 on Linux)
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function checkOverhead(small: boolean, dbFile: string): Promise<void> {
  const strip = (q: string) => q.replace(/^\[\w+\] /, '').split(' ‖ ');
  const legit = readCorpus(`${ROOT}/test/fixtures/lb/legit-queries.txt`).map(strip);
  const attacks = readCorpus(`${ROOT}/test/fixtures/lb/attack-queries.txt`).map(strip);
  const policy = { restrictingLabel: 'uuid', unrestrictedMetrics: new Set(['ceems_emissions_gCo2_kWh']) };
  const reps = small ? 20 : 500;
  const timeEach = (set: string[][], parse: QueryParser) => {
    for (const qs of set) checkQueries(qs, 'expr', policy, parse); // warm-up (fills a cache)
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) for (const qs of set) checkQueries(qs, 'expr', policy, parse);
    return ((performance.now() - t0) * 1000) / (reps * set.length);
  };
  const figures = (set: string[][]) =>
    `${timeEach(set, parseQuery).toFixed(1)} µs/query parsed, ${timeEach(set, new ParseCache().parse).toFixed(1)} µs from the LB's parse cache (${set.length} queries)`;
  console.log(`parse + selector rule: legit ${figures(legit)}; attacks ${figures(attacks)}`);
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

interface Run {
  rps: number;
  p50: number;
  p99: number;
  /** CPU milliseconds per query of Prometheus, the proxy in between (0 for direct runs) and the generator. */
  prom: number;
  proxy: number;
  gen: number;
}

/** `requests` GETs of `path` from `clients` closed-loop clients (each waits for its answer). */
async function load(
  base: string,
  path: string,
  headers: Record<string, string>,
  requests: number,
  clients: number,
  pids: { prom: number; proxy?: number },
): Promise<Run> {
  const pool = new Pool(base, { connections: clients });
  const latencies: number[] = [];
  let next = 0;
  const before = {
    prom: cpuSeconds(pids.prom),
    proxy: pids.proxy ? cpuSeconds(pids.proxy) : 0,
    gen: process.cpuUsage(),
  };
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
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
  const gen = process.cpuUsage(before.gen);
  const perQuery = (seconds: number) => (seconds * 1000) / requests;
  const run: Run = {
    rps: requests / elapsed,
    p50: 0,
    p99: 0,
    prom: perQuery(cpuSeconds(pids.prom) - before.prom),
    proxy: pids.proxy ? perQuery(cpuSeconds(pids.proxy) - before.proxy) : 0,
    gen: perQuery((gen.user + gen.system) / 1e6),
  };
  await pool.close();
  latencies.sort((a, b) => a - b);
  run.p50 = percentile(latencies, 50);
  run.p99 = percentile(latencies, 99);
  return run;
}

/** Where the load goes: straight to Prometheus, through the bare Node.js proxy, through ceems_lb. */
interface Target {
  url: string;
  /** The proxy's pid; undefined for Prometheus itself. */
  pid: number | undefined;
}
type Paths = { direct: Target; bare: Target; lb: Target };
type Comparison = { [K in keyof Paths]: Run } & { bareRatios: number[]; lbRatios: number[] };

/** Direct, bare-proxy and LB runs, alternated `rounds` times so that load from other work hits all alike. */
async function compare(
  paths: Paths,
  promPid: number,
  path: string,
  headers: Record<string, string>,
  requests: number,
  clients: number,
  rounds: number,
): Promise<Comparison> {
  const runs: { [K in keyof Paths]: Run[] } = { direct: [], bare: [], lb: [] };
  for (let i = 0; i < rounds; i++) {
    for (const k of ['direct', 'bare', 'lb'] as const) {
      const t = paths[k];
      runs[k].push(await load(t.url, path, headers, requests, clients, { prom: promPid, proxy: t.pid }));
    }
  }
  const mid = (rs: Run[]): Run => ({
    rps: median(rs.map((r) => r.rps)),
    p50: median(rs.map((r) => r.p50)),
    p99: median(rs.map((r) => r.p99)),
    prom: median(rs.map((r) => r.prom)),
    proxy: median(rs.map((r) => r.proxy)),
    gen: median(rs.map((r) => r.gen)),
  });
  const ratios = (rs: Run[]) => rs.map((r, i) => r.rps / runs.direct[i]!.rps);
  return {
    direct: mid(runs.direct),
    bare: mid(runs.bare),
    lb: mid(runs.lb),
    bareRatios: ratios(runs.bare),
    lbRatios: ratios(runs.lb),
  };
}

function report(label: string, c: Comparison, cpuBound: boolean): void {
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  const ratio = (rs: number[]) =>
    `${median(rs).toFixed(2)}${rs.length > 1 ? ` (rounds ${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)})` : ''}`;
  const { direct, bare, lb } = c;
  console.log(
    `${label}: direct ${direct.rps.toFixed(0)} req/s p50 ${ms(direct.p50)} p99 ${ms(direct.p99)} | ` +
      `via LB ${lb.rps.toFixed(0)} req/s p50 ${ms(lb.p50)} p99 ${ms(lb.p99)} | ` +
      `ratio ${ratio(c.lbRatios)}, added p50 ${(lb.p50 - direct.p50).toFixed(2)} ms | ` +
      `bare proxy ${bare.rps.toFixed(0)} req/s, ratio ${ratio(c.bareRatios)}`,
  );
  // What the three processes cost per query bounds what two shared cores can serve: direct (P + G) vs
  // via a proxy (P' + L + G'); the ratio cannot exceed their quotient whatever the proxy does with its time.
  const bound = (r: Run) => ((direct.prom + direct.gen) / (r.prom + r.proxy + r.gen)).toFixed(2);
  console.log(
    `  CPU s per 1000 queries: Prometheus ${direct.prom.toFixed(3)} direct / ${bare.prom.toFixed(3)} via bare proxy / ${lb.prom.toFixed(3)} via LB, ` +
      `LB ${lb.proxy.toFixed(3)} (${(lb.proxy / lb.prom).toFixed(2)}× Prometheus'), bare proxy ` +
      `${bare.proxy.toFixed(3)} (LB ${(lb.proxy / bare.proxy).toFixed(2)}× bare), load generator ` +
      `${direct.gen.toFixed(3)} / ${lb.gen.toFixed(3)}` +
      (cpuBound ? `; CPU-bound ratio on shared cores: LB ${bound(lb)}, bare proxy ${bound(bare)}` : ''),
  );
}

/** Restricts every thread of `pid` to `cpus` (taskset list syntax); returns the previous list. */
function pin(pid: number, cpus: string): string {
  const out = execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { encoding: 'utf8' });
  return /current affinity list: (\S+)/.exec(out)?.[1] ?? '0-1023';
}

/** bench/lib/bare-proxy.ts in front of `backend`, as its own process (its CPU is read like the LB's). */
async function startBareProxy(backend: string): Promise<{ url: string; pid: number; stop(): void }> {
  const proc = spawn(process.execPath, [join(ROOT, 'bench/lib/bare-proxy.ts'), backend], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const port = await new Promise<string>((res, rej) => {
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d: string) => {
      out += d;
      const m = /listening (\d+)/.exec(out);
      if (m) res(m[1]!);
    });
    proc.once('exit', (code) => rej(new Error(`bare proxy exited with ${code}: ${out}`)));
  });
  return { url: `http://127.0.0.1:${port}`, pid: proc.pid!, stop: () => proc.kill() };
}

export async function run(small: boolean): Promise<void> {
  const testbed = findTestbed(ROOT);
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
  // As the API server keeps it: WAL mode, its writer connection open. A DB in rollback-journal mode costs
  // the LB's admin check 8 system calls (locks, hot-journal stats, header read) instead of 2 per request.
  const apiServerDb = openDatabase(dbFile);
  apiServerDb.exec('PRAGMA journal_mode = WAL');
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
  let prometheus: Prometheus | undefined;
  let lb: Started | undefined;
  let bare: Awaited<ReturnType<typeof startBareProxy>> | undefined;
  const restore: Array<() => void> = [];
  try {
    prometheus = startPrometheus(testbed, PROM_PORT, [`bench=${target}`]);
    const prom = prometheus.url;
    const config = writeYaml(`${tmp.dir}/config.yml`, {
      ceems_api_server: { data: { path: tmp.dir } },
      ceems_lb: { backends: [{ id: 'hpc-0', tsdb: [{ web: { url: prom } }] }] },
    });
    lb = await startProgram('ceems_lb', [`--config.file=${config}`, '--web.listen-address=127.0.0.1:0']);
    bare = await startBareProxy(prom);
    const query = `sum by (uuid) (uuid:ceems_cpu_usage:ratio_irate{uuid=~"${uuidOf(7, 1)}|${uuidOf(7, 2)}"})`;
    const now = Math.floor(Date.now() / 1000);
    const path = `/api/v1/query_range?query=${encodeURIComponent(query)}&start=${now - 300}&end=${now + 60}&step=15`;
    const headers = { 'x-grafana-user': 'user7', 'x-ceems-cluster-id': 'hpc-0' };
    for (let i = 0; i < 100; i++) {
      const r = await fetch(`${prom}/api/v1/query?query=${encodeURIComponent(query)}`);
      if (((await r.json()) as { data: { result: unknown[] } }).data.result.length === 2) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const paths: Paths = {
      direct: { url: prom, pid: undefined },
      bare: { url: bare.url, pid: bare.pid },
      lb: { url: lb.url, pid: lb.pid },
    };
    const requests = small ? 200 : 5000;
    const rounds = small ? 1 : 3;
    for (const t of Object.values(paths)) // warm-up of every path
      await load(t.url, path, headers, small ? 200 : 2000, 4, { prom: prometheus.pid, proxy: t.pid });
    console.log(
      `${availableParallelism()} cores, load average ${loadavg()[0]!.toFixed(2)} before the runs; median of ${rounds} alternated direct/bare proxy/LB round(s) of ${requests} queries`,
    );
    for (const line of [
      'How to read the ratios: the load generator is the same for every path (closed loop, keep-alive).',
      '- shared cores: generator, LB and Prometheus on every core. Each CPU second the LB spends is taken',
      '  from Prometheus or the generator, so via LB / direct cannot exceed (P + G) / (P + L + G) with the',
      "  CPU per query of Prometheus, LB and generator (printed as 'CPU-bound ratio'), however fast the LB is.",
      "- bare proxy: bench/lib/bare-proxy.ts, node:http + undici with no checks: any Node.js proxy's floor;",
      "  'LB n× bare' is the LB's CPU per query over that floor (its access control, routing, headers).",
      "- Prometheus' own CPU per query grows as it gets less busy (about twice as much with 1 client as with",
      '  16 here): behind a proxy that slows the loop it costs more per query than when saturated directly.',
      "- CPU s per 1000 queries do not depend on the number of cores: 'LB n× Prometheus'' is how much CPU the",
      "  LB needs per unit of Prometheus' CPU for this query (2 series, 25 steps: about the cheapest range",
      '  query, so the LB weighs most here; heavier queries cost Prometheus more and the LB the same).',
      "- pinned: Prometheus alone on CPU 1 in every run, the proxies on the generator's CPU 0: Prometheus keeps",
      '  the same CPU with and without a proxy, as when the LB runs next to Grafana.',
    ])
      console.log(line);
    console.log('shared cores:');
    const summary: string[] = [];
    for (const clients of [1, 16, 64]) {
      const label = clients === 1 ? 'latency, 1 client' : `throughput, ${clients} clients`;
      const result = await compare(paths, prometheus.pid, path, headers, requests, clients, rounds);
      report(label, result, clients > 1);
      summary.push(
        clients === 1
          ? `added p50 ${(result.lb.p50 - result.direct.p50).toFixed(2)} ms (target ≤ 0.3)`
          : `${clients} clients ${median(result.lbRatios).toFixed(2)} (bare proxy ${median(result.bareRatios).toFixed(2)})`,
      );
    }
    if (availableParallelism() >= 2) {
      // The same runs with Prometheus alone on CPU 1 and the load generator (plus the proxies) on CPU 0:
      // Prometheus has the same CPU with and without a proxy, whose own CPU comes out of the client's core.
      restore.push(
        ...[prometheus.pid, process.pid, lb.pid, bare.pid].map((pid, i) => {
          const previous = pin(pid, i === 0 ? '1' : '0');
          return () => pin(pid, previous);
        }),
      );
      console.log('pinned: Prometheus alone on CPU 1, load generator and proxies on CPU 0');
      for (const clients of [16, 64]) {
        const result = await compare(paths, prometheus.pid, path, headers, requests, clients, rounds);
        report(`throughput, ${clients} clients`, result, false);
        summary.push(
          `pinned ${clients} clients ${median(result.lbRatios).toFixed(2)} (bare proxy ${median(result.bareRatios).toFixed(2)})`,
        );
      }
    }
    console.log(`targets of issue 15 (not asserted): ${summary.join(', ')} (ratio target ≥ 0.8)`);
  } finally {
    for (const r of restore) {
      try {
        r();
      } catch {
        // the process is gone already
      }
    }
    await lb?.stop();
    bare?.stop();
    prometheus?.stop();
    await exporter.close();
    apiServerDb.close();
    tmp.cleanup();
  }
}
