// Runs an external command asynchronously with a hard time limit. The child gets its own process group so
// that a timeout kills everything it started (a shell script's `sleep`, the tool behind `sudo`), otherwise
// a grandchild holding stdout open would keep the caller waiting past the limit.

import { spawn } from 'node:child_process';

export class CommandError extends Error {
  /** errno code (e.g. `ENOENT`) when the command could not be started at all. */
  constructor(
    message: string,
    readonly startErrorCode?: string,
  ) {
    super(message);
  }
}

export interface CommandResult {
  stdout: string;
  stderr: string;
}

export interface RunCommandOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
  /** Output cap per stream; the command is killed when it prints more. */
  maxBytes?: number;
  /** Run as this uid/gid (needs root or cap_setuid/cap_setgid). */
  uid?: number;
  gid?: number;
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Resolves with the output of a zero exit; rejects with a CommandError naming the command otherwise. */
export function runCommand(argv: readonly string[], opts: RunCommandOptions): Promise<CommandResult> {
  const [file, ...args] = argv;
  const shown = argv.join(' ');
  if (!file) return Promise.reject(new CommandError('empty command'));
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
      ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
    });
    const max = opts.maxBytes ?? 4 * 1024 * 1024;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let failure: CommandError | undefined;
    const fail = (why: string) => {
      if (!failure) failure = new CommandError(`command '${shown}' ${why}`);
      killGroup(child.pid);
    };
    const timer = setTimeout(() => fail(`timed out after ${opts.timeoutMs} ms`), opts.timeoutMs);
    const onAbort = () => fail('aborted');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) onAbort();
    child.stdout!.on('data', (d: Buffer) => {
      outLen += d.length;
      if (outLen > max) return fail(`printed more than ${max} bytes`);
      out.push(d);
    });
    child.stderr!.on('data', (d: Buffer) => {
      errLen += d.length;
      if (errLen <= max) err.push(d);
    });
    const finish = () => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    child.once('error', (e: NodeJS.ErrnoException) => {
      finish();
      reject(new CommandError(`command '${shown}' could not be started: ${e.code ?? e.message}`, e.code));
    });
    child.once('close', (code, sig) => {
      finish();
      const stderr = Buffer.concat(err).toString('utf8');
      if (failure) return reject(failure);
      if (code !== 0) {
        const detail = stderr.trim().split('\n').slice(-3).join(' | ');
        return reject(
          new CommandError(
            `command '${shown}' ${sig ? `killed by ${sig}` : `exited with status ${code}`}${detail ? `: ${detail}` : ''}`,
          ),
        );
      }
      resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr });
    });
  });
}
