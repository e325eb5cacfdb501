// A real Prometheus (the testbed's Debian package) for ceems_tool integration tests: own config and TSDB in a
// temporary directory, 127.0.0.1 on a free port, rules loaded by rewriting the config and POST /-/reload,
// stopped by pid (its directory is removed then).

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { waitFor } from '../../helpers/wait.js';

export interface RealPrometheus {
  url: string;
  dir: string;
  /** The configuration file Prometheus runs with. */
  configFile: string;
  /** Rewrites the configuration with these rule files and reloads it. */
  loadRules(files: string[]): Promise<void>;
  /** Rewrites the configuration with these `metric_relabel_configs` per job and reloads it. */
  setMetricRelabelConfigs(byJob: Record<string, unknown[]>): Promise<void>;
  /** Instant query at now; the samples of the result vector. */
  /** An instant query, at `time` (Unix seconds) when given, else now. */
  query(q: string, time?: number): Promise<{ metric: Record<string, string>; value: number }[]>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, 'close');
  return port;
}

/** A scrape target: its address, and the `instance` label of the node it stands for (default: the address). */
export interface ScrapeTarget {
  address: string;
  instance?: string;
  /** More keys of the job's scrape config (`scheme`, `basic_auth`, `tls_config`, ...). */
  scrapeConfig?: Record<string, unknown>;
}

/** Starts Prometheus scraping `targets` (job name → host:port or target) every second. */
export async function startPrometheus(
  targets: Record<string, string | ScrapeTarget>,
): Promise<RealPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'ceems-tool-prom-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let rules: string[] = [];
  let relabel: Record<string, unknown[]> = {};
  const config = () =>
    YAML.stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s', scrape_timeout: '1s' },
      ...(rules.length ? { rule_files: rules } : {}),
      scrape_configs: Object.entries(targets).map(([job, t]) => {
        const target: ScrapeTarget = typeof t === 'string' ? { address: t } : t;
        return {
          job_name: job,
          static_configs: [
            {
              targets: [target.address],
              ...(target.instance ? { labels: { instance: target.instance } } : {}),
            },
          ],
          ...target.scrapeConfig,
          ...(relabel[job] ? { metric_relabel_configs: relabel[job] } : {}),
        };
      }),
    });
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, config());
  let log = '';
  const proc: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--web.enable-lifecycle',
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  proc.stderr!.on('data', (d) => {
    log += d;
  });
  const spawnError = new Promise<never>((_, rej) =>
    proc.once('error', (e) =>
      rej(
        new Error(`cannot start prometheus (install it with the testbed's prometheus/up.sh): ${e.message}`),
      ),
    ),
  );
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
      process.kill(proc.pid, 'SIGTERM');
      await once(proc, 'exit');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.race([
      spawnError,
      waitFor('prometheus /-/ready', 30_000, async () =>
        (await fetch(`${url}/-/ready`)).ok ? true : undefined,
      ),
    ]);
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\n${log}`);
  }
  const reload = async () => {
    writeFileSync(configFile, config());
    const res = await fetch(`${url}/-/reload`, { method: 'POST' });
    if (!res.ok) throw new Error(`reload failed: HTTP ${res.status} ${await res.text()}\n${log}`);
  };
  return {
    url,
    dir,
    configFile,
    async loadRules(files) {
      rules = files;
      await reload();
    },
    async setMetricRelabelConfigs(byJob) {
      relabel = byJob;
      await reload();
    },
    async query(q, time) {
      const at = time === undefined ? '' : `&time=${time}`;
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}${at}`);
      const body = (await res.json()) as {
        status: string;
        error?: string;
        data: { result: { metric: Record<string, string>; value: [number, string] }[] };
      };
      if (body.status !== 'success') throw new Error(`query ${q} failed: ${body.error}`);
      return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
    },
    stop,
  };
}
