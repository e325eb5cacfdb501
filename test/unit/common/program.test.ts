import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../../helpers/process.js';

describe('runServerProgram shutdown', () => {
  it('dies by the signal when stop outlives its grace period, even with a thread blocked in the kernel', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ceems-program-'));
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'test/fixtures/program/stuck-stop.ts'), fifo],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`not started after 20 s; output:\n${out}`)), 20_000);
        child.stdout.on('data', () => {
          if (!out.includes('started')) return;
          clearTimeout(t);
          resolve();
        });
      });
      const sent = Date.now();
      child.kill('SIGTERM');
      const exit = await new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
        const t = setTimeout(
          () => reject(new Error(`still running 5 s after SIGTERM; output:\n${out}`)),
          5000,
        );
        child.once('exit', (code, signal) => {
          clearTimeout(t);
          resolve({ code, signal });
        });
      });
      assert.deepEqual(exit, { code: null, signal: 'SIGTERM' }, out);
      assert.ok(Date.now() - sent < 3000, `took ${Date.now() - sent} ms`);
      assert.match(out, /Shutdown did not finish in time/);
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
