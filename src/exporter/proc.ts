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
