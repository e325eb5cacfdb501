// The testbed's real Prometheus (shared/testbed/prometheus) for integration tests and benchmarks: one
// instance per port on 127.0.0.1, scraping every second, stopped and purged by down.sh; and the same
// binary started directly when a test needs flags or config the testbed script does not offer.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ROOT } from './process.js';
import { waitFor } from './wait.js';

/** Debian's package, installed by the testbed scripts and scripts/test.sh. */
const PROMETHEUS_BIN = '/usr/bin/prometheus';

/** The testbed folder: $CEEMS_TESTBED_DIR (set by scripts/test.sh), else ../shared/testbed. */
export const TESTBED = process.env.CEEMS_TESTBED_DIR ?? resolve(ROOT, '../shared/testbed');

export interface TestbedPrometheus {
  url: string;
  /** Stops the instance and removes its TSDB. */
  stop(): void;
}

/**
 * Starts Prometheus on 127.0.0.1:`port` with 1 s scrape and evaluation intervals; `scrape` are up.sh's
 * target arguments (`job=host:port`, `--scrape-config FILE`). Returns once it is ready, before any scrape.
 */
export function startTestbedPrometheus(port: number, scrape: string[]): TestbedPrometheus {
  const script = (name: string, args: string[]) =>
    execFileSync('bash', [join(TESTBED, 'prometheus', name), '--port', String(port), ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 300_000,
    });
  script('up.sh', ['--interval', '1s', '--no-wait', ...scrape]);
  return { url: `http://127.0.0.1:${port}`, stop: () => script('down.sh', ['--purge']) };
}

export interface PrometheusProcess {
  /** Base URL including the route prefix, without trailing slash. */
  url: string;
  pid: number;
  /** SIGKILL (a crash): no shutdown, the port refuses connections at once. */
  kill(): Promise<void>;
  /** Starts it again on the same port, data and config (after kill or stop). */
  restart(): Promise<void>;
  /** SIGTERM, waits for the exit, removes the data directory. */
  stop(): Promise<void>;
}

/**
 * Debian's Prometheus started directly (the testbed script has no route prefix, remote_read or SIGKILL):
 * on 127.0.0.1:`port` with the YAML `config`, data under `dir`; returns once `<prefix>/-/ready` answers.
 */
export async function startPrometheus(opts: {
  port: number;
  config: string;
  dir: string;
  routePrefix?: string;
}): Promise<PrometheusProcess> {
  mkdirSync(opts.dir, { recursive: true });
  const configFile = join(opts.dir, 'prometheus.yml');
  writeFileSync(configFile, opts.config);
  const url = `http://127.0.0.1:${opts.port}${opts.routePrefix ?? ''}`;
  const args = [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${join(opts.dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${opts.port}`,
    ...(opts.routePrefix ? [`--web.route-prefix=${opts.routePrefix}`] : []),
  ];
  let proc: ChildProcess;
  let log = '';
  const launch = async () => {
    // A server left on the port would answer the readiness probe in place of this one.
    if (
      await fetch(`${url}/-/ready`).then(
        () => true,
        () => false,
      )
    )
      throw new Error(`port ${opts.port} already answers HTTP: a Prometheus left behind by an earlier run?`);
    log = '';
    proc = spawn(PROMETHEUS_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => {
      log = (log + d).slice(-4000);
    });
    await waitFor(`Prometheus on ${url} to be ready`, 60_000, async () => {
      const ready = await fetch(`${url}/-/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (!ready) throw new Error(`exit code ${proc.exitCode}, log:\n${log}`);
      return true;
    });
  };
  const exit = async (signal: NodeJS.Signals) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    process.kill(proc.pid!, signal);
    await once(proc, 'exit');
  };
  await launch();
  return {
    url,
    get pid() {
      return proc.pid!;
    },
    kill: () => exit('SIGKILL'),
    restart: launch,
    async stop() {
      await exit('SIGTERM');
      rmSync(opts.dir, { recursive: true, force: true });
    },
  };
}
