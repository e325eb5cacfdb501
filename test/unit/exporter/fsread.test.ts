// The exporter's one file reader: regular files only, bounded, and never holding back SIGTERM. Reads that
// could block are made in a child process, so that a reader that blocks fails the test instead of hanging it.

import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MAX_FILE_BYTES, readFileFast } from '../../../src/common/fsread.js';
import { ROOT, runCommand } from '../../helpers/process.js';
import { waitFor } from '../../helpers/wait.js';

const READER = join(ROOT, 'src/common/fsread.ts');

/** Reads each path with readFileFast in a fresh process; one JSON line per path, even if a later one blocks. */
async function readInChild(
  paths: string[],
): Promise<{ path: string; code?: string; message?: string; ms: number }[]> {
  const script = `
    const { readFileFast } = await import(${JSON.stringify(READER)});
    for (const path of ${JSON.stringify(paths)}) {
      const t = performance.now();
      let r;
      try { r = { path, length: readFileFast(path).length }; }
      catch (e) { r = { path, code: e.code, message: e.message }; }
      process.stdout.write(JSON.stringify({ ...r, ms: performance.now() - t }) + '\\n');
    }`;
  const res = await runCommand(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    timeoutMs: 10_000,
  });
  const results = res.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  assert.equal(
    results.length,
    paths.length,
    `the reader blocked on ${paths[results.length]} (exit ${res.code}); read so far: ${res.stdout}${res.stderr}`,
  );
  return results;
}

describe('readFileFast', () => {
  let dir: string;
  let socketServer: Server;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ceems-fsread-'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    socketServer = createServer().listen(join(dir, 'socket'));
    await new Promise((r) => socketServer.once('listening', r));
  });
  after(() => {
    socketServer.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads a regular file and a procfs pseudo-file (size 0 in stat) whole', () => {
    writeFileSync(join(dir, 'cpu.stat'), 'usage_usec 60\nuser_usec 45\nsystem_usec 15\n');
    assert.equal(readFileFast(join(dir, 'cpu.stat')), 'usage_usec 60\nuser_usec 45\nsystem_usec 15\n');
    assert.match(readFileFast('/proc/self/status'), /^Name:\t/);
    writeFileSync(join(dir, 'empty'), '');
    assert.equal(readFileFast(join(dir, 'empty')), '');
  });

  it('refuses a FIFO, a unix socket and a character device at once, naming the path and its type', async () => {
    const fifo = join(dir, 'fifo');
    const socket = join(dir, 'socket');
    const results = await readInChild([fifo, socket, '/dev/zero', '/dev/null']);
    assert.deepEqual(
      results.map(({ ms: _ms, ...r }) => r),
      [
        { path: fifo, code: 'EFTYPE', message: `not a regular file (FIFO): ${fifo}` },
        { path: socket, code: 'EFTYPE', message: `not a regular file (socket): ${socket}` },
        { path: '/dev/zero', code: 'EFTYPE', message: 'not a regular file (character device): /dev/zero' },
        { path: '/dev/null', code: 'EFTYPE', message: 'not a regular file (character device): /dev/null' },
      ],
    );
    // refused before any read: no time spent reading zeros up to the size bound
    for (const r of results) assert.ok(r.ms < 100, `${r.path} took ${r.ms} ms`);
  });

  it('refuses a file longer than its bound instead of truncating it, and reads one of exactly the bound', () => {
    writeFileSync(join(dir, 'exact'), Buffer.alloc(MAX_FILE_BYTES, 'a'));
    assert.equal(readFileFast(join(dir, 'exact')).length, MAX_FILE_BYTES);
    writeFileSync(join(dir, 'big'), Buffer.alloc(MAX_FILE_BYTES + 1, 'a'));
    assert.throws(() => readFileFast(join(dir, 'big')), {
      code: 'EFBIG',
      message: `larger than ${MAX_FILE_BYTES} bytes, not read: ${join(dir, 'big')}`,
    });
    writeFileSync(join(dir, 'small-bound'), 'x'.repeat(11));
    assert.equal(readFileFast(join(dir, 'small-bound'), 11), 'x'.repeat(11));
    assert.throws(() => readFileFast(join(dir, 'small-bound'), 10), { code: 'EFBIG' });
    // a reported size is not trusted: procfs files say 0 and are still bounded by what is read
    assert.throws(() => readFileFast('/proc/self/status', 10), { code: 'EFBIG' });
  });

  it('keeps fs errors unchanged (ENOENT) and refuses a directory', () => {
    assert.throws(() => readFileFast(join(dir, 'missing')), { code: 'ENOENT' });
    assert.throws(() => readFileFast(dir), {
      code: 'EFTYPE',
      message: `not a regular file (directory): ${dir}`,
    });
  });
});

describe('readFileFast and SIGTERM', () => {
  let dir: string;
  const children: ChildProcess[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ceems-fsread-signal-'));
    execFileSync('mkfifo', [join(dir, 'hung')]);
  });
  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * A process with a graceful SIGTERM listener (like every server of the stack) that reads a file and then,
   * when `block`, stays in a blocking open(2) of a FIFO in the same synchronous run: the stand-in for a
   * regular file on a hung filesystem, which no reader can refuse.
   */
  function start(block: boolean) {
    const script = `
      const { readFileFast } = await import(${JSON.stringify(READER)});
      const { openSync } = await import('node:fs');
      process.once('SIGTERM', () => { process.stdout.write('graceful\\n'); process.exit(0); });
      readFileFast('/proc/self/status');
      if (${block}) {
        process.stdout.write('blocking\\n');
        openSync(${JSON.stringify(join(dir, 'hung'))}, 'r');
      } else {
        setImmediate(() => process.stdout.write('idle ' + process.listenerCount('SIGTERM') + '\\n'));
        setInterval(() => {}, 1000);
      }`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
    });
    child.stderr!.on('data', (d) => {
      out += d;
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
      child.once('exit', (code, signal) => res({ code, signal })),
    );
    let result: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    void exited.then((r) => {
      result = r;
    });
    return {
      child,
      output: () => out,
      /** Waits at most `ms` for the exit; the error says what the process printed meanwhile. */
      exit: (ms: number) =>
        waitFor(`exit of pid ${child.pid}`, ms, () => {
          if (result) return result;
          throw new Error(`still running; output so far: ${JSON.stringify(out)}`);
        }),
    };
  }

  it('ends a process stuck in the kernel right after a read: SIGTERM is not held back', async () => {
    const p = start(true);
    await waitFor('the child to block', 10_000, () => {
      if (p.output().includes('blocking')) return true;
      throw new Error(`output so far: ${JSON.stringify(p.output())}`);
    });
    const sent = Date.now();
    p.child.kill('SIGTERM');
    const r = await p.exit(5000);
    assert.deepEqual(r, { code: null, signal: 'SIGTERM' });
    assert.ok(Date.now() - sent < 5000);
  });

  it('takes the signal listeners off for the synchronous run that reads, and puts them back after it', async () => {
    const listener = () => {};
    process.on('SIGTERM', listener);
    process.once('SIGINT', listener);
    try {
      const before = [process.listeners('SIGTERM'), process.listeners('SIGINT')];
      readFileFast('/proc/self/status');
      assert.deepEqual([process.listenerCount('SIGTERM'), process.listenerCount('SIGINT')], [0, 0]);
      readFileFast('/proc/self/status');
      await Promise.resolve();
      assert.deepEqual([process.listeners('SIGTERM'), process.listeners('SIGINT')], before);
    } finally {
      process.off('SIGTERM', listener);
      process.off('SIGINT', listener);
    }
  });

  it('gives SIGTERM back to the graceful listener once the reading code has run', async () => {
    const p = start(false);
    await waitFor('the child to go idle', 10_000, () => {
      if (p.output().includes('idle')) return true;
      throw new Error(`output so far: ${JSON.stringify(p.output())}`);
    });
    p.child.kill('SIGTERM');
    assert.deepEqual(await p.exit(5000), { code: 0, signal: null });
    assert.equal(p.output(), 'idle 1\ngraceful\n');
  });
});
