// Runs the vendor SMI tools: asynchronous, bounded by a timeout that kills the whole process group
// (a wrapper script's children must not keep the pipes open), with errors that name the command.

import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export class CommandError extends Error {
  override name = 'CommandError';
}

/** Runs `file args` and resolves with its stdout; rejects with a CommandError. */
export type CommandRunner = (file: string, args: readonly string[], timeoutMs: number) => Promise<string>;

const MAX_OUTPUT = 64 * 1024 * 1024;

export const runCommand: CommandRunner = (file, args, timeoutMs) =>
  new Promise((resolve, reject) => {
    const cmd = [file, ...args].join(' ');
    const child = spawn(file, args, {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (e: CommandError | undefined, stdout = '') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (e) reject(e);
      else resolve(stdout);
    };
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      killGroup();
      finish(new CommandError(`command '${cmd}' timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_OUTPUT) {
        killGroup();
        finish(new CommandError(`command '${cmd}' printed more than ${MAX_OUTPUT} bytes`));
      } else out.push(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      if (err.length < 16) err.push(c);
    });
    child.on('error', (e: NodeJS.ErrnoException) =>
      finish(new CommandError(`cannot run '${cmd}': ${e.code ?? e.message}`)),
    );
    child.on('close', (code, signal) => {
      if (code === 0) return finish(undefined, Buffer.concat(out).toString('utf8'));
      // nvidia-smi prints its failure reason on stdout
      const why = (
        Buffer.concat(err).toString('utf8').trim() || Buffer.concat(out).toString('utf8').trim()
      ).split('\n')[0];
      finish(
        new CommandError(
          `command '${cmd}' failed with ${signal ? `signal ${signal}` : `exit code ${code}`}${why ? `: ${why}` : ''}`,
        ),
      );
    });
  });

/** Like Go's exec.LookPath: the first executable regular file named `name` in $PATH. */
export function lookPath(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, name);
    try {
      if (!statSync(p).isFile()) continue;
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}
