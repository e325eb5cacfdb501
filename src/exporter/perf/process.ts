// What the perf sub-collector reads about a process before counting it: its parent and start time (to
// tell whether an inherited counter already counts it) and, with --collector.perf.env-var, whether it is
// to be profiled at all (spec exporter.md §10.1).

import { join } from 'node:path';
import { readFileFast } from '../../common/fsread.js';
import { hasEnvVarPrefix } from '../proc.js';

export interface ProcessInfo {
  readonly ppid: number;
  /** Start time in clock ticks since boot (field 22 of /proc/<pid>/stat). */
  readonly start: number;
}

/** Parent and start time from `/proc/<pid>/stat`; undefined when the process is gone or unreadable. */
export function readProcessInfo(procfs: string, pid: number): ProcessInfo | undefined {
  let text: string;
  try {
    text = readFileFast(join(procfs, String(pid), 'stat'));
  } catch {
    return undefined;
  }
  return parseStat(text);
}

/** Fields after the command name, which may hold spaces and parentheses: `state ppid … starttime …`. */
export function parseStat(text: string): ProcessInfo | undefined {
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const ppid = Number(fields[1]);
  const start = Number(fields[19]);
  return Number.isInteger(ppid) && Number.isInteger(start) ? { ppid, start } : undefined;
}

/**
 * Clock ticks since boot, the clock of a process start time: `/proc/uptime` has it in centiseconds and
 * USER_HZ is 100 on every architecture Linux runs this exporter on.
 */
export function readBootTicks(procfs: string): number {
  const m = /^(\d+)\.(\d\d)/.exec(readFileFast(join(procfs, 'uptime')));
  if (!m) throw new Error(`${join(procfs, 'uptime')}: unexpected content`);
  return Number(m[1]) * 100 + Number(m[2]);
}

/**
 * --collector.perf.env-var: only processes with an environment variable whose name starts with one of
 * `prefixes` are profiled, and for SLURM its helper processes never are (as the original does). A process
 * whose cmdline or environ cannot be read (ended, or no cap_sys_ptrace) is not profiled.
 */
export function envVarSelected(
  procfs: string,
  pid: number,
  prefixes: readonly string[],
  skipSlurmAuxiliary: boolean,
): boolean {
  try {
    return hasEnvVarPrefix(procfs, pid, prefixes, skipSlurmAuxiliary);
  } catch {
    return false; // gone or unreadable: not profiled
  }
}
