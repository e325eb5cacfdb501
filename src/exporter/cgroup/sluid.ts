// Job directories of recent Slurm releases may be named after the job's SLUID (a lexicographically
// sortable unique id) instead of its numeric id. The `uuid` label must stay the numeric job id — the one
// sacct reports, that the API server stores and recording rules join on — so a non-numeric job directory
// is identified from its processes: SLURM_JOB_ID in their environment, or the `slurmstepd: [<id>.<step>]`
// title of the step daemons that cgroup v2 places inside the job. A SLUID never names another job, so a
// resolved id is kept for as long as the directory exists.

import { readCmdline, readEnviron } from '../proc.js';
import type { CgroupUnit } from './walk.js';

const NUMERIC = /^[0-9]+$/;
const STEPD_TITLE = /^slurmstepd: \[([0-9]+)\./;
/** Walks a job directory may stay unidentified before it is reported (its tasks may not have started). */
const PATIENCE = 3;

export class SlurmJobIdResolver {
  /** Job id per directory token. */
  private readonly ids = new Map<string, string>();
  /** Consecutive walks each unidentified token was seen in. */
  private readonly misses = new Map<string, number>();
  private readonly reported = new Set<string>();

  constructor(private readonly warn?: (msg: string) => void) {}

  /** Units with numeric ids; SLUID-named ones get their job id or are left out until it is known. */
  resolve(units: readonly CgroupUnit[], procfs: string): CgroupUnit[] {
    const tokens = new Set<string>();
    const out: CgroupUnit[] = [];
    const taken = new Set(units.filter((u) => NUMERIC.test(u.id)).map((u) => u.id));
    for (const u of units) {
      // process-less directories are stale jobs, dropped by the collector under their directory name
      if (NUMERIC.test(u.id) || u.pids.length === 0) {
        out.push(u);
        continue;
      }
      tokens.add(u.id);
      const id = this.ids.get(u.id) ?? this.identify(u, procfs);
      if (id === undefined || taken.has(id)) continue;
      taken.add(id);
      out.push({ ...u, id, uuid: id });
    }
    for (const map of [this.ids, this.misses]) for (const t of map.keys()) if (!tokens.has(t)) map.delete(t);
    for (const t of this.reported) if (!tokens.has(t)) this.reported.delete(t);
    return out;
  }

  private identify(u: CgroupUnit, procfs: string): string | undefined {
    let denied = 0;
    for (const pid of u.pids) {
      try {
        const id = readEnviron(procfs, pid).get('SLURM_JOB_ID')?.trim();
        if (id && NUMERIC.test(id)) return this.remember(u.id, id);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EACCES' || code === 'EPERM') denied++;
      }
      const title = STEPD_TITLE.exec(readCmdline(procfs, pid) ?? '');
      if (title) return this.remember(u.id, title[1]!);
    }
    const misses = (this.misses.get(u.id) ?? 0) + 1;
    this.misses.set(u.id, misses);
    if ((denied > 0 || misses >= PATIENCE) && !this.reported.has(u.id)) {
      this.reported.add(u.id);
      this.warn?.(
        denied > 0
          ? `job directory job_${u.id}: cannot read the environment of ${denied} of its ${u.pids.length} processes to find SLURM_JOB_ID (needs root or cap_sys_ptrace); job skipped until identified`
          : `job directory job_${u.id}: none of its ${u.pids.length} processes shows SLURM_JOB_ID or a slurmstepd title; job skipped until identified`,
      );
    }
    return undefined;
  }

  private remember(token: string, id: string): string {
    this.ids.set(token, id);
    this.misses.delete(token);
    return id;
  }
}
