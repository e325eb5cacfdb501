// SLURM testbed jobs for integration tests: one `sbatch` wrapper for every test that submits jobs.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface JobOptions {
  /** `--mem` (default 64M). */
  mem?: string;
  /** `-J` job name. */
  name?: string;
  /** `-t` time limit in minutes. */
  minutes?: number;
  /** More sbatch options, e.g. `--array=1-2`, `--begin=now+1hour`. */
  extra?: string[];
}

/** Testbed variables from the environment, else from the env file written by slurm/up.sh. */
export function testbedEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  const file = `${env.CEEMS_TESTBED_ROOT ?? '/tmp/ceems-testbed'}/slurm/env.sh`;
  if (!env.CEEMS_TESTBED_SLURM_JOBDIR && existsSync(file)) {
    for (const m of readFileSync(file, 'utf8').matchAll(/^export (\w+)=['"]?(.*?)['"]?$/gm))
      env[m[1]!] = m[2]!;
  }
  if (!env.CEEMS_TESTBED_SLURM_JOBDIR)
    throw new Error('SLURM testbed not found: run shared/testbed/slurm/up.sh (or export its variables)');
  return env;
}

/** Job directory of the testbed (mode 1777): working directory and output of every job. */
export function jobDir(): string {
  return testbedEnv().CEEMS_TESTBED_SLURM_JOBDIR!;
}

/** Submits `script` as `user` under `account` in the debug partition; returns the job id. */
export function submitJob(user: string, account: string, script: string, opts: JobOptions = {}): string {
  const dir = jobDir();
  const args = ['-u', user, '--', 'sbatch', '--parsable', ...(opts.extra ?? [])];
  args.push('-A', account, '-p', 'debug', '-n', '1', `--mem=${opts.mem ?? '64M'}`);
  if (opts.name) args.push('-J', opts.name);
  if (opts.minutes) args.push('-t', String(opts.minutes));
  // stress-ng and friends need a writable working directory
  args.push('--chdir', dir, '-o', `${dir}/%j.out`, '--wrap', script);
  const out = execFileSync('runuser', args, { encoding: 'utf8', env: testbedEnv(), timeout: 60_000 });
  const id = out.trim().split(';')[0]!;
  assert.match(id, /^\d+$/, `sbatch printed '${out}'`);
  return id;
}

/** Cancels the jobs (none: nothing); jobs that already finished are no error. */
export function cancelJobs(ids: string[]): void {
  if (ids.length === 0) return;
  try {
    execFileSync('scancel', ids, { env: testbedEnv(), stdio: 'ignore', timeout: 60_000 });
  } catch {
    // already finished
  }
}

/** What `squeue` and the job's output file say about a job, for a wait that failed. */
export function jobState(id: string): string {
  let state = '';
  try {
    state = execFileSync('squeue', ['-h', '-j', id, '-o', '%T %R'], {
      env: testbedEnv(),
      encoding: 'utf8',
    }).trim();
  } catch (e) {
    state = (e as Error).message;
  }
  const out = join(jobDir(), `${id}.out`);
  return `job ${id}: ${state || 'not in squeue'}; output: ${existsSync(out) ? readFileSync(out, 'utf8') : '(none)'}`;
}
