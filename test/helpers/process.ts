// Starts one of the project's programs on a free loopback port and stops it by pid; runs commands to
// completion with a time limit.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');

export interface Started {
  proc: ChildProcess;
  pid: number;
  /** First bound address as `host:port`. */
  address: string;
  url: string;
  stderr(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Runs `bin/<program>` with the given args; waits until it logs `msg="Listening on" address=...`.
 * Pass `--web.listen-address=127.0.0.1:0` (or the program's equivalent) so the OS picks the port.
 */
export function startProgram(
  program: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; scheme?: string } = {},
): Promise<Started> {
  const proc = spawn(process.execPath, [resolve(ROOT, 'bin', program), ...args], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return awaitListening(proc, program, opts);
}

/**
 * Waits until a started server (`name` for errors) logs `msg="Listening on" address=...` on stderr; a
 * server that exits or stays silent for `timeoutMs` (15 s) is killed and the error holds its log.
 */
export async function awaitListening(
  proc: ChildProcess,
  name: string,
  opts: { timeoutMs?: number; scheme?: string } = {},
): Promise<Started> {
  let err = '';
  proc.stderr!.setEncoding('utf8');
  proc.stdout?.resume();
  const address = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL'); // never leave a half-started server behind
      rej(new Error(`${name} did not start in time:\n${err}`));
    }, opts.timeoutMs ?? 15_000);
    proc.stderr!.on('data', (d: string) => {
      err += d;
      const m = /msg="Listening on" address=(\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        res(m[1]!);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`${name} exited with ${code} before listening:\n${err}`));
    });
  });
  return {
    proc,
    pid: proc.pid!,
    address,
    url: `${opts.scheme ?? 'http'}://${address}`,
    stderr: () => err,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      process.kill(proc.pid!, signal);
      const [code] = await once(proc, 'exit');
      return code as number | null;
    },
  };
}

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion, collecting its output; SIGKILLed after `timeoutMs` (15 s). */
export async function runCommand(
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Finished> {
  const proc = spawn(command, args, {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d) => {
    stdout += d;
  });
  proc.stderr!.on('data', (d) => {
    stderr += d;
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs ?? 15_000);
  const [code] = await once(proc, 'exit');
  clearTimeout(timer);
  return { code: code as number | null, stdout, stderr };
}

/** Runs `bin/<program>` to completion (for flag errors, --help, --version). */
export function runProgram(
  program: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Finished> {
  return runCommand(process.execPath, [resolve(ROOT, 'bin', program), ...args], opts);
}
