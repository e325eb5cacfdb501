// The whole CEEMS stack on the SLURM testbed, for the end-to-end tests: ceems_exporter (slurm, cpu,
// meminfo, estimated power, OWID emissions) → the testbed's Prometheus with a rules directory filled by
// `ceems_tool tsdb create-recording-rules` → ceems_api_server (SLURM cluster + TSDB updater) → ceems_lb
// in front of that Prometheus, plus jobs of testbed users that Prometheus has scraped.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runProgram, type Started, startProgram } from './process.js';
import { startTestbedPrometheus, type TestbedPrometheus } from './prometheus.js';
import { cancelJobs, submitJob, testbedEnv } from './slurm.js';
import { waitFor } from './wait.js';

/** Estimated power of the testbed node: idle and maximum watts given to the exporter. */
export const IDLE_WATTS = 60;
export const MAX_WATTS = 160;
/** Cluster ID of the API server's config (and the LB's backend). */
export const CLUSTER = 'ceems';
/** The API server's admin user. */
export const ADMIN = 'adm';

export interface StackOptions {
  /** Port of the testbed Prometheus (each test has its own). */
  promPort: number;
  /** Prefix of the temporary directory (mode 0755, removed by stop). */
  dirPrefix: string;
  /**
   * More ceems_api_server arguments (e.g. `--web.config.file=…`), from the stack directory; called just
   * before the server starts, so it may write its files there.
   */
  apiArgs?: (dir: string) => string[];
  apiEnv?: NodeJS.ProcessEnv;
  /** Headers of every request the helper sends to the API server (the user header is added). */
  apiHeaders?: Record<string, string>;
  /** `ceems_lb.unrestricted_metrics` of the config. */
  lbUnrestrictedMetrics?: string[];
  /** Port of ceems_lb (0: the OS picks one). */
  lbPort?: number;
}

export interface StackJob {
  user: string;
  account: string;
  script: string;
  name: string;
}

export interface Stack {
  /** The temporary directory (config, data, rules). */
  dir: string;
  rulesDir: string;
  /** ceems_api_server's and ceems_lb's config file. */
  config: string;
  promUrl: string;
  exporter: Started;
  api: Started;
  /** Submits the jobs (3 min, 128M) and waits until Prometheus holds 3 samples of each; their ids. */
  runJobs(jobs: StackJob[]): Promise<string[]>;
  /** Runs ceems_tool for `country`, reloads Prometheus and waits for the jobs' per-unit power > 0. */
  recordingRules(country: string, uuids: string[]): Promise<void>;
  /** Waits until the API server's DB holds all the units (the LB checks its backends against it). */
  waitForUnits(uuids: string[]): Promise<void>;
  startLb(): Promise<Started>;
  /** Cancels the jobs, stops the programs and Prometheus, removes the directory. */
  stop(): Promise<void>;
}

/** Instant query results of the Prometheus at `url`. */
export async function promQuery(
  url: string,
  q: string,
): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
  const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = (await r.json()) as {
    status: string;
    error?: string;
    data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
  };
  if (body.status !== 'success') throw new Error(`query ${q}: ${body.error}`);
  return body.data.result;
}

/** A free loopback port (the API server must know the LB's URL before the LB can start). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', env: process.env, timeout: 60_000 });
}

/**
 * ceems_api_server's config for the testbed's SLURM cluster `CLUSTER` (admin `ADMIN`), its DB under `dir`,
 * one TSDB updater on `promUrl`, the first window from `updateFrom` (ms).
 */
export function testbedApiConfig(o: {
  dir: string;
  promUrl: string;
  updateInterval: string;
  updateFrom: number;
  cutoff: string;
}) {
  return {
    ceems_api_server: {
      data: {
        path: join(o.dir, 'data'),
        update_interval: o.updateInterval,
        time_zone: 'UTC',
        update_from: new Date(o.updateFrom).toISOString().slice(0, 19),
      },
      admin: { users: [ADMIN] },
    },
    clusters: [
      {
        id: CLUSTER,
        manager: 'slurm',
        updaters: ['tsdb-0'],
        cli: { path: '/usr/bin', environment_variables: { SLURM_CONF: testbedEnv().SLURM_CONF } },
      },
    ],
    updaters: [
      { id: 'tsdb-0', updater: 'tsdb', web: { url: o.promUrl }, extra_config: { cutoff_duration: o.cutoff } },
    ],
  };
}

/** Starts the exporter, Prometheus and the API server; on a failure stops what it started. */
export async function startTestbedStack(opts: StackOptions): Promise<Stack> {
  assert.ok(
    process.env.CEEMS_TESTBED_SLURM_JOBDIR,
    'SLURM testbed env missing: eval "$(cat /tmp/ceems-testbed/slurm/env.sh)" first',
  );
  const dir = mkdtempSync(join(tmpdir(), opts.dirPrefix));
  chmodSync(dir, 0o755); // programs run as testbed users (cacct) read below this directory
  const rulesDir = join(dir, 'rules');
  mkdirSync(rulesDir);
  const promUrl = `http://127.0.0.1:${opts.promPort}`;
  const config = join(dir, 'config.yml');
  const procs: Started[] = [];
  const jobs: string[] = [];
  let prometheus: TestbedPrometheus | undefined;
  const stop = async () => {
    cancelJobs(jobs);
    for (const p of procs.reverse()) await p.stop();
    prometheus?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const t0 = Date.now();
    const exporter = await startProgram('ceems_exporter', [
      '--collector.disable-defaults',
      '--collector.cpu',
      '--collector.meminfo',
      '--collector.slurm',
      '--collector.estimated_power',
      `--collector.estimated_power.idle-watts=${IDLE_WATTS}`,
      `--collector.estimated_power.max-watts=${MAX_WATTS}`,
      '--collector.emissions',
      '--collector.emissions.provider=owid',
      '--web.listen-address=127.0.0.1:0',
    ]);
    procs.push(exporter);
    // The exporter target and a rule-file glob (empty until ceems_tool writes the rules), appended to the
    // testbed's generated config.
    writeFileSync(
      join(dir, 'scrape.yml'),
      `  - job_name: ceems\n    static_configs:\n      - targets: ['${exporter.address}']\nrule_files:\n  - '${rulesDir}/*.rules'\n`,
    );
    prometheus = startTestbedPrometheus(opts.promPort, ['--scrape-config', join(dir, 'scrape.yml')]);

    writeFileSync(
      config,
      JSON.stringify({
        // the first window starts just before the jobs are submitted
        ...testbedApiConfig({ dir, promUrl, updateInterval: '4s', updateFrom: t0 - 60_000, cutoff: '4s' }),
        ceems_lb: {
          ...(opts.lbUnrestrictedMetrics ? { unrestricted_metrics: opts.lbUnrestrictedMetrics } : {}),
          backends: [{ id: CLUSTER, tsdb: [{ web: { url: promUrl } }] }],
        },
      }),
    );
    const api = await startProgram(
      'ceems_api_server',
      [`--config.file=${config}`, ...(opts.apiArgs?.(dir) ?? []), '--web.listen-address=127.0.0.1:0'],
      { env: opts.apiEnv },
    );
    procs.push(api);

    return {
      dir,
      rulesDir,
      config,
      promUrl,
      exporter,
      api,
      async runJobs(specs) {
        const ids: string[] = [];
        for (const j of specs) {
          const id = submitJob(j.user, j.account, j.script, { mem: '128M', minutes: 3, name: j.name });
          jobs.push(id);
          ids.push(id);
        }
        const early = await waitFor('all jobs scraped by Prometheus', 100_000, async () => {
          // a job that fails at once (e.g. bad working directory) stops the wait with its state
          const states = sh('sacct', ['-n', '-X', '-P', '-j', ids.join(','), '--format', 'jobid,state']);
          if (/FAILED|CANCELLED|TIMEOUT|OUT_OF_ME|COMPLETED/.test(states)) return states;
          const r = await promQuery(
            promUrl,
            `count_over_time(ceems_compute_unit_cpu_user_seconds_total{uuid=~"${ids.join('|')}"}[10s]) >= 3`,
          );
          return r.length === ids.length ? '' : undefined;
        });
        assert.equal(early, '', `jobs ended before being scraped:\n${early}`);
        return ids;
      },
      async recordingRules(country, uuids) {
        const gen = await runProgram('ceems_tool', [
          'tsdb',
          'create-recording-rules',
          `--url=${promUrl}`,
          `--output-dir=${rulesDir}`,
          `--country-code=${country}`,
        ]);
        assert.equal(gen.code, 0, gen.stderr);
        const reload = await fetch(`${promUrl}/-/reload`, { method: 'POST' });
        assert.equal(reload.status, 200, await reload.text());
        await waitFor('per-unit power of the jobs', 30_000, async () => {
          const p = await promQuery(
            promUrl,
            `uuid:ceems_host_power_watts:pue{uuid=~"${uuids.join('|')}"} > 0`,
          );
          if (p.length !== uuids.length) throw new Error(`series with power > 0: ${JSON.stringify(p)}`);
          return true;
        });
      },
      async waitForUnits(uuids) {
        await waitFor('all jobs in the API DB', 30_000, async () => {
          const q = uuids.map((u) => `uuid=${u}`).join('&');
          const r = await fetch(`${api.url}/api/v1/units/admin?${q}`, {
            headers: { ...opts.apiHeaders, 'X-Grafana-User': ADMIN },
            signal: AbortSignal.timeout(10_000),
          });
          const text = await r.text();
          const n = r.status === 200 ? (JSON.parse(text) as { data?: unknown[] }).data?.length : undefined;
          if (n !== uuids.length) throw new Error(`last answer: HTTP ${r.status} ${text.slice(0, 400)}`);
          return true;
        });
      },
      async startLb() {
        const lb = await startProgram('ceems_lb', [
          `--config.file=${config}`,
          `--web.listen-address=127.0.0.1:${opts.lbPort ?? 0}`,
        ]);
        procs.push(lb);
        return lb;
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
