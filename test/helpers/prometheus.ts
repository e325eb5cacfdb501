// The testbed's real Prometheus (shared/testbed/prometheus) for integration tests and benchmarks: one
// instance per port on 127.0.0.1, scraping every second, stopped and purged by down.sh.

import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { ROOT } from './process.js';

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
