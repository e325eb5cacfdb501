// SLURM job → GPU mapping (spec exporter.md §9.6, §9.7): GPU ordinals and share counts come from the
// environment of the job's processes; flag values from the gres.conf share allocation.

import { join } from 'node:path';
import { readFileFast } from '../../common/fsread.js';
import type { Logger } from '../../common/logger.js';
import { readEnviron } from '../proc.js';
import {
  allocateShares,
  allTargets,
  type GpuTarget,
  parseGresConf,
  parseMigMinors,
  type ShareLine,
  shareTotals,
  targetKey,
} from './gres.js';
import type { GpuAssignment, GpuDevice } from './types.js';

export interface JobGpuEnv {
  /** Comma-separated ordinals of SLURM_JOB_GPUS (or SLURM_STEP_GPUS). */
  ordinals: string[];
  /** SLURM_SHARDS_ON_NODE or CUDA_MPS_ACTIVE_THREAD_PERCENTAGE. */
  shares?: number;
}

/**
 * Reads `/proc/<pid>/environ` of the job's processes in order; skips processes of other jobs; stops at
 * the first process giving GPU ids (and a share count when `wantShares`). Unreadable processes are skipped.
 */
export function readJobGpuEnv(
  procfs: string,
  jobId: string,
  pids: readonly number[],
  wantShares: boolean,
): JobGpuEnv | undefined {
  let found: JobGpuEnv | undefined;
  for (const pid of pids) {
    let vars: Map<string, string>;
    try {
      vars = readEnviron(procfs, pid);
    } catch {
      continue;
    }
    if (vars.get('SLURM_JOB_ID') !== jobId) continue;
    const gpus = vars.get('SLURM_JOB_GPUS') ?? vars.get('SLURM_STEP_GPUS');
    if (!gpus) continue;
    const sharesRaw = vars.get('SLURM_SHARDS_ON_NODE') ?? vars.get('CUDA_MPS_ACTIVE_THREAD_PERCENTAGE');
    const shares = sharesRaw !== undefined && /^\d+$/.test(sharesRaw.trim()) ? Number(sharesRaw) : undefined;
    const env1: JobGpuEnv = {
      ordinals: gpus
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
      shares,
    };
    found ??= env1;
    if (!wantShares || shares !== undefined) return env1;
  }
  return found;
}

/** Targets whose Index (after the order map) equals one of the ordinals. */
export function targetsForOrdinals(devices: readonly GpuDevice[], ordinals: readonly string[]): GpuTarget[] {
  const byIndex = new Map<string, GpuTarget>();
  for (const t of allTargets(devices)) byIndex.set(t.instance ? t.instance.index : t.device.index, t);
  return ordinals.map((o) => byIndex.get(o)).filter((t) => t !== undefined);
}

export interface SlurmJob {
  /** Job id (the `uuid` label). */
  uuid: string;
  /** PIDs of the job's cgroups in walk order. */
  pids: readonly number[];
}

export interface SlurmGpuMapperOptions {
  procfs: string;
  hostname: string;
  /** `--collector.slurm.gres-config-file`; a missing file means no shards/MPS. */
  gresConfigFile: string;
  logger: Logger;
}

export class SlurmGpuMapper {
  private readonly shareLines: ShareLine[] = [];
  private readonly env = new Map<string, JobGpuEnv>();
  private lastJobs = '';
  private lastDevices: readonly GpuDevice[] | undefined;
  private lastMissing = false;
  private result = new Map<string, GpuAssignment[]>();

  constructor(
    private readonly inventory: { devices(): readonly GpuDevice[] },
    private readonly opts: SlurmGpuMapperOptions,
  ) {
    let text: string | undefined;
    try {
      text = readFileFast(opts.gresConfigFile);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT')
        opts.logger.warn({ file: opts.gresConfigFile, err: code }, 'cannot read gres.conf');
    }
    if (text === undefined) return;
    let migMinors = new Map<number, { gpu: number; gi: number }>();
    try {
      migMinors = parseMigMinors(readFileFast(join(opts.procfs, 'driver', 'nvidia-caps', 'mig-minors')));
    } catch {
      // no MIG caps on this node
    }
    this.shareLines = parseGresConf(text, opts.hostname, migMinors);
  }

  /** True when gres.conf configures shards or MPS for this node. */
  get sharing(): boolean {
    return this.shareLines.length > 0;
  }

  /**
   * GPU assignments per job uuid. Recomputed only when the job set or the device list changed, or when
   * some job had no GPU information last time (its environment is read again).
   */
  update(jobs: readonly SlurmJob[]): Map<string, GpuAssignment[]> {
    const devices = this.inventory.devices();
    const key = jobs
      .map((j) => j.uuid)
      .sort()
      .join(',');
    if (key === this.lastJobs && devices === this.lastDevices && !this.lastMissing) return this.result;
    const live = new Set(jobs.map((j) => j.uuid));
    for (const id of this.env.keys()) if (!live.has(id)) this.env.delete(id);
    let missing = false;
    for (const j of jobs) {
      if (this.env.has(j.uuid)) continue;
      const e = readJobGpuEnv(this.opts.procfs, j.uuid, j.pids, this.sharing);
      if (e) this.env.set(j.uuid, e);
      else missing = true;
    }
    const requests = jobs.flatMap((j) => {
      const e = this.env.get(j.uuid);
      return e ? [{ uuid: j.uuid, targets: targetsForOrdinals(devices, e.ordinals), shares: e.shares }] : [];
    });
    const flags = allocateShares(requests, shareTotals(this.shareLines, devices));
    const result = new Map<string, GpuAssignment[]>();
    for (const r of requests) {
      const f = flags.get(r.uuid)!;
      const rows = r.targets
        .map((t) => ({ device: t.device, instance: t.instance, value: f.get(targetKey(t)) ?? 0 }))
        .filter((a) => a.value > 0);
      if (rows.length > 0) result.set(r.uuid, rows);
    }
    this.result = result;
    this.lastJobs = key;
    this.lastDevices = devices;
    this.lastMissing = missing;
    return result;
  }
}
