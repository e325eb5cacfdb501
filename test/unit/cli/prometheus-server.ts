// A real Prometheus (the testbed's Debian package) for ceems_tool integration tests: own config and TSDB in a
// temporary directory, 127.0.0.1 on a free port, rules loaded by rewriting the config and POST /-/reload,
// stopped by pid (its directory is removed then).

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../../helpers/wait.js';

export interface RealPrometheus {
  url: string;
  dir: string;
  /** Rewrites the configuration with these rule files and reloads it. */
  loadRules(files: string[]): Promise<void>;
  /** Instant query at now; the samples of the result vector. */
  query(q: string): Promise<{ metric: Record<string, string>; value: number }[]>;
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

/** Starts Prometheus scraping `targets` (job name → host:port) every second. */
export async function startPrometheus(targets: Record<string, string>): Promise<RealPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'ceems-tool-prom-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = (rules: string[]) =>
    [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      '  scrape_timeout: 1s',
      ...(rules.length ? ['rule_files:', ...rules.map((r) => `  - ${JSON.stringify(r)}`)] : []),
      'scrape_configs:',
      ...Object.entries(targets).flatMap(([job, t]) => [
        `  - job_name: ${JSON.stringify(job)}`,
        '    static_configs:',
        `      - targets: [${JSON.stringify(t)}]`,
      ]),
      '',
    ].join('\n');
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, config([]));
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
  return {
    url,
    dir,
    async loadRules(files) {
      writeFileSync(configFile, config(files));
      const res = await fetch(`${url}/-/reload`, { method: 'POST' });
      if (!res.ok) throw new Error(`reload failed: HTTP ${res.status} ${await res.text()}\n${log}`);
    },
    async query(q) {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`);
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
