// Per-process files of procfs read to identify compute units and their resources.

import { join } from 'node:path';
import { MAX_PROC_ARGS_BYTES, readFileFast } from '../common/fsread.js';

/**
 * Environment of a process from `/proc/<pid>/environ` (NUL-separated `NAME=value`). Throws the fs error
 * (ENOENT when the process ended, EACCES without `cap_sys_ptrace` for other users' processes).
 */
export function readEnviron(procfs: string, pid: number): Map<string, string> {
  const vars = new Map<string, string>();
  for (const kv of readFileFast(join(procfs, String(pid), 'environ'), MAX_PROC_ARGS_BYTES).split('\0')) {
    const i = kv.indexOf('=');
    if (i > 0) vars.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return vars;
}

/** Command line of a process with NULs turned into spaces; undefined when it cannot be read. */
export function readCmdline(procfs: string, pid: number): string | undefined {
  try {
    return readFileFast(join(procfs, String(pid), 'cmdline'), MAX_PROC_ARGS_BYTES)
      .replace(/\0+$/, '')
      .replaceAll('\0', ' ');
  } catch {
    return undefined;
  }
}

/** SLURM helper processes (step daemons, the extern step's sleep, the batch script's shell). */
export const SLURM_AUXILIARY = /slurmstepd:(.*)|sleep ([0-9]+)|\/bin\/bash (.*)\/slurm_script/;

/**
 * The env-var filter of the perf sub-collector and the Alloy target discoverer (spec §10.1, §13): whether the
 * process has an environment variable whose name starts with one of `prefixes`. With `skipSlurmAuxiliary`,
 * SLURM's helper processes and processes without a command line (exiting) never match. Throws the fs error
 * when the process cannot be read (ended, or no cap_sys_ptrace).
 */
export function hasEnvVarPrefix(
  procfs: string,
  pid: number,
  prefixes: readonly string[],
  skipSlurmAuxiliary: boolean,
): boolean {
  const dir = join(procfs, String(pid));
  if (skipSlurmAuxiliary) {
    const cmdline = readFileFast(join(dir, 'cmdline'), MAX_PROC_ARGS_BYTES).replaceAll('\0', ' ').trim();
    if (cmdline === '' || SLURM_AUXILIARY.test(cmdline)) return false;
  }
  for (const kv of readFileFast(join(dir, 'environ'), MAX_PROC_ARGS_BYTES).split('\0')) {
    const name = kv.slice(0, Math.max(0, kv.indexOf('=')));
    if (name !== '' && prefixes.some((p) => name.startsWith(p))) return true;
  }
  return false;
}
