// Readings written by the SLURM Prolog/Epilog hooks (etc/slurm/prolog-energy.sh, epilog-energy.sh):
// `<spool>/<job id>.start` and `<job id>.end`, each a `time <unix ms>` line, an optional `cpus <n>` line
// (the job's CPUs on this node) and the counter lines of counters.ts. A job with both files is read once,
// then its files are removed; a file that cannot be parsed is logged with its line and removed too.

import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readFileFast } from '../../common/fsread.js';
import type { Logger } from '../../common/logger.js';
import { parseReading, type Reading } from './counters.js';

export interface SpoolUnit {
  uuid: string;
  startedAt: number;
  endedAt: number;
  cpus?: number;
  start: Reading;
  end: Reading;
}

interface SpoolFile {
  time: number;
  cpus?: number;
  reading: Reading;
}

const META = /^(time|cpus)\s+(\S+)\s*$/;

export function parseSpoolFile(text: string, where: string): SpoolFile {
  let time: number | undefined;
  let cpus: number | undefined;
  const counters: string[] = [];
  for (const line of text.split('\n')) {
    const m = META.exec(line.trim());
    if (!m) {
      counters.push(line);
      continue;
    }
    const v = Number(m[2]);
    if (!Number.isFinite(v) || v < 0) throw new Error(`${where}: invalid ${m[1]} '${m[2]}'`);
    if (m[1] === 'time') time = v;
    else cpus = v;
  }
  if (time === undefined) throw new Error(`${where}: no 'time <unix ms>' line`);
  return { time, ...(cpus ? { cpus } : {}), reading: parseReading(counters.join('\n'), where) };
}

/** Jobs of the spool with both readings; their files are removed once read. */
export function readSpool(dir: string, logger: Logger): SpoolUnit[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    logger.debug({ dir, err: (e as Error).message }, 'unit energy spool unreadable');
    return [];
  }
  const out: SpoolUnit[] = [];
  for (const name of names) {
    const m = /^([0-9]+)\.end$/.exec(name);
    if (!m || !names.includes(`${m[1]}.start`)) continue;
    const files = [`${m[1]}.start`, name].map((n) => join(dir, n));
    try {
      const [start, end] = files.map((f) => parseSpoolFile(readFileFast(f), f)) as [SpoolFile, SpoolFile];
      out.push({
        uuid: m[1]!,
        startedAt: start.time,
        endedAt: end.time,
        cpus: start.cpus ?? end.cpus,
        start: start.reading,
        end: end.reading,
      });
    } catch (e) {
      logger.warn({ err: (e as Error).message }, 'unit energy spool: unreadable hook reading; removed');
    }
    try {
      for (const f of files) rmSync(f, { force: true });
    } catch (e) {
      logger.warn({ err: (e as Error).message }, 'unit energy spool: cannot remove a read hook reading');
    }
  }
  return out;
}
