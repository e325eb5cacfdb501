import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../../helpers/process.js';

/** Starts the test server in `mode` and resolves once its stdout says `ready`; output collects both streams. */
async function startServer(args: string[], ready: string) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'test/fixtures/program/server.ts'), ...args],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const run = { child, out: '' };
  child.stdout.on('data', (d) => (run.out += d));
  child.stderr.on('data', (d) => (run.out += d));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no "${ready}" after 20 s; output:\n${run.out}`)), 20_000);
    child.stdout.on('data', () => {
      if (!run.out.includes(ready)) return;
      clearTimeout(t);
      resolve();
    });
  });
  return run;
}

function exitOf(run: { child: ChildProcess; out: string }) {
  return new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
    const t = setTimeout(
      () => reject(new Error(`still running 5 s after SIGTERM; output:\n${run.out}`)),
      5000,
    );
    run.child.once('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal });
    });
  });
}

describe('runServerProgram shutdown', () => {
  it('dies by the signal when stop outlives its grace period, even with a thread blocked in the kernel', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ceems-program-'));
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const run = await startServer(['stuck-stop', fifo], 'started');
    try {
      const sent = Date.now();
      run.child.kill('SIGTERM');
      assert.deepEqual(await exitOf(run), { code: null, signal: 'SIGTERM' }, run.out);
      assert.ok(Date.now() - sent < 3000, `took ${Date.now() - sent} ms`);
      assert.match(run.out, /Shutdown did not finish in time/);
    } finally {
      run.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a SIGTERM during start-up stops the server cleanly once it has started', async () => {
    const run = await startServer(['slow-start'], 'starting');
    try {
      run.child.kill('SIGTERM');
      assert.deepEqual(await exitOf(run), { code: 0, signal: null }, run.out);
      assert.match(run.out, /Shutting down.*\n(.*\n)*stopped/);
    } finally {
      run.child.kill('SIGKILL');
    }
  });
});
