// Running ceems_tool in-process with its output captured, promtool on what it generates, the exporter
// flags of the testbed node the rules tests scrape, and fixture exporters for them.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Io, main } from '../../../src/cli/ceems_tool/main.js';

/** ceems_tool's exit code and what it wrote; `io` overrides its input and clock. */
export async function runTool(argv: string[], io: Partial<Io> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: (s) => {
      stdout += s;
    },
    stderr: (s) => {
      stderr += s;
    },
    ...io,
  });
  return { code, stdout, stderr };
}

/** `promtool <args>` must succeed (e.g. `check rules <file>`, `check config <file>`). */
export function promtool(args: string[]): void {
  const r = spawnSync('promtool', args, { encoding: 'utf8' });
  assert.ok(
    !r.error,
    `promtool not runnable (${r.error?.message}); install it: bash <testbed>/prometheus/up.sh --port 9293 --no-wait`,
  );
  assert.equal(r.status, 0, `promtool ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
}

/** ceems_exporter on the SLURM testbed node: units, CPU, memory and an estimated node power. */
export const TESTBED_EXPORTER_ARGS = [
  '--collector.disable-defaults',
  '--collector.slurm',
  '--collector.cpu',
  '--collector.meminfo',
  '--collector.estimated_power',
  '--collector.estimated_power.idle-watts=60',
  '--collector.estimated_power.max-watts=160',
  '--web.listen-address=127.0.0.1:0',
];

/** A scrape target serving `body()` in the text exposition format on 127.0.0.1 (a fixture exporter). */
export async function startExposition(
  body: () => string | Buffer,
): Promise<{ address: string; close: () => Promise<void> }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
    res.end(body());
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((res) => server.close(() => res())),
  };
}
