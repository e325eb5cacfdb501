// SLURM resource manager (spec api-server.md §11.1): jobs from `sacct`, users/projects from the
// associations of `sacctmgr`. The API server usually runs as an unprivileged service user; it then needs
// either cap_setuid+cap_setgid (commands run as uid 0) or a sudo rule for the SLURM tools, otherwise
// `sacct` only shows the service user's own jobs.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { runCommand } from '../../common/command.js';
import type { Project, Unit, User } from '../models.js';
import {
  formatDatetime,
  formatDatetimezone,
  isValidZone,
  parseDatetime,
  parseDatetimezone,
} from '../timefmt.js';
import { expandHostlist } from './hostlist.js';
import { emptyUnit, type ManagerContext, type ResourceManager, type UsersProjects } from './types.js';

export const SACCT_FORMAT =
  'jobidraw,partition,qos,account,group,gid,user,uid,submit,start,end,elapsed,elapsedraw,exitcode,state,alloctres,nodelist,jobname,workdir';
export const SACCT_STATES = 'CANCELLED,COMPLETED,FAILED,NODE_FAIL,PREEMPTED,TIMEOUT,RUNNING';
const SACCT_FIELDS = 19;
const SLURM_TIME_FORMAT = '%Y-%m-%dT%H:%M:%S%z';
const MIB = 1024 * 1024;
/** sacct prints ~200 bytes per job: room for a million jobs in one window. */
const MAX_OUTPUT = 256 * 1024 * 1024;
const MEM_UNITS: Record<string, number> = { '': MIB, K: 1024, M: MIB, G: 1024 ** 3, T: 1024 ** 4 };

/** Exact argv of sacct after the binary (spec §11.1); times in DatetimeLayout of the DB zone. */
export function sacctArgs(start: string, end: string): string[] {
  return [
    '-D',
    '-X',
    '--noheader',
    '--allusers',
    '--parsable2',
    '--format',
    SACCT_FORMAT,
    '--state',
    SACCT_STATES,
    '--starttime',
    start,
    '--endtime',
    end,
  ];
}

export const SACCTMGR_ARGS = ['--parsable2', '--noheader', 'list', 'associations', 'format=Account,User'];

/** Memory of an `alloctres` value (`64M`, `1.5G`, `2048`): bytes, multiplied before truncation (D-API-8). */
export function parseSlurmMemory(value: string): number {
  const m = /([0-9.]+)([KMGT]?)/.exec(value);
  if (!m) return 0;
  const n = Number.parseFloat(m[1]!);
  return Number.isFinite(n) ? Math.trunc(n * MEM_UNITS[m[2]!]!) : 0;
}

/** `billing=4,cpu=4,gres/gpu=2,mem=8G,node=1` → allocation map of a SLURM unit. */
export function parseAllocTres(tres: string): {
  nodes: number;
  cpus: number;
  mem: number;
  gpus: number;
  billing: number;
} {
  const alloc = { nodes: 0, cpus: 0, mem: 0, gpus: 0, billing: 0 };
  for (const item of tres.split(',')) {
    const eq = item.indexOf('=');
    if (eq < 0) continue;
    const key = item.slice(0, eq);
    const value = item.slice(eq + 1);
    if (key === 'billing') alloc.billing = Number.parseInt(value, 10) || 0;
    else if (key === 'node') alloc.nodes = Number.parseInt(value, 10) || 0;
    else if (key === 'cpu') alloc.cpus = Number.parseInt(value, 10) || 0;
    else if (key === 'mem') alloc.mem = parseSlurmMemory(value);
  }
  const gpu = /gres\/gpu(?:[^=]*)=([0-9]+)/.exec(tres);
  if (gpu) alloc.gpus = Number(gpu[1]);
  return alloc;
}

/** Seconds of the job inside `[start, end]` (ms), per spec §11.1. */
export function slurmElapsedInWindow(startedTs: number, endedTs: number, start: number, end: number): number {
  if (startedTs === 0) return 0;
  if (endedTs > 0 && endedTs < start) return Math.max(0, Math.floor((endedTs - startedTs) / 1000));
  const from = Math.max(start, startedTs);
  const to = Math.min(end, endedTs > 0 ? endedTs : end);
  return Math.max(0, Math.floor((to - from) / 1000));
}

/** Parses `sacct --parsable2` output into units of the window `[start, end]` (ms). */
export function parseSacct(
  output: string,
  opts: { clusterId: string; timeZone: string; start: number; end: number; sacctZone?: string },
): Unit[] {
  const units: Unit[] = [];
  const tz = opts.timeZone;
  const sacctZone = opts.sacctZone ?? tz;
  const time = (text: string): [string, number] => {
    // SLURM 22.05 cuts time columns at 19 characters, dropping the `%z` offset: such times are wall
    // times of the zone sacct ran in.
    const ms = parseDatetimezone(text) ?? parseDatetime(text, sacctZone);
    return ms === undefined ? [text, 0] : [formatDatetimezone(ms, tz), ms];
  };
  let lineStart = 0;
  while (lineStart < output.length) {
    let lineEnd = output.indexOf('\n', lineStart);
    if (lineEnd < 0) lineEnd = output.length;
    const line = output.slice(lineStart, lineEnd);
    lineStart = lineEnd + 1;
    const f = line.split('|');
    if (f.length < SACCT_FIELDS) continue;
    const [jobid, partition, qos, account, group, gid, user, uid, submit, started, ended, elapsed] = f;
    const [, exitcode, state, alloctres, nodelist, jobname, workdir] = f.slice(12);
    if (jobid!.includes('.') || nodelist === 'None assigned') continue;
    const unit = emptyUnit(opts.clusterId, 'slurm', jobid!);
    unit.name = jobname!;
    unit.project = account!;
    unit.groupname = group!;
    unit.username = user!;
    [unit.created_at, unit.created_at_ts] = time(submit!);
    [unit.started_at, unit.started_at_ts] = time(started!);
    [unit.ended_at, unit.ended_at_ts] = time(ended!);
    unit.elapsed = elapsed!;
    unit.state = state!;
    const alloc = parseAllocTres(alloctres!);
    unit.allocation = alloc;
    unit.tags = {
      uid: Number.parseInt(uid!, 10) || 0,
      gid: Number.parseInt(gid!, 10) || 0,
      partition: partition!,
      qos: qos!,
      exit_code: exitcode!,
      nodelist: nodelist!,
      nodelistexp: expandHostlist(nodelist!).join('|'),
      workdir: workdir!,
    };
    const secs = slurmElapsedInWindow(unit.started_at_ts!, unit.ended_at_ts!, opts.start, opts.end);
    unit.total_time_seconds = {
      walltime: secs,
      alloc_cputime: alloc.cpus * secs,
      alloc_cpumemtime: alloc.mem > 0 ? (alloc.mem / MIB) * secs : secs,
      alloc_gputime: alloc.gpus * secs,
      alloc_gpumemtime: alloc.gpus > 0 ? secs : 0,
    };
    units.push(unit);
  }
  return units;
}

/** Parses `sacctmgr list associations format=Account,User` into flat users and projects. */
export function parseAssociations(output: string, clusterId: string): UsersProjects {
  const byProject = new Map<string, Set<string>>();
  const byUser = new Map<string, Set<string>>();
  for (const line of output.split('\n')) {
    const f = line.trim().split('|');
    if (f.length < 2) continue;
    const [account, user] = f as [string, string];
    if (account === '' || user === '' || account === 'root' || user === 'root') continue;
    if (!byProject.has(account)) byProject.set(account, new Set());
    byProject.get(account)!.add(user);
    if (!byUser.has(user)) byUser.set(user, new Set());
    byUser.get(user)!.add(account);
  }
  const sorted = (s: Set<string>) => [...s].sort();
  const projects: Project[] = [...byProject.keys()].sort().map((name) => ({
    uid: '',
    cluster_id: clusterId,
    resource_manager: 'slurm',
    name,
    users: sorted(byProject.get(name)!),
    tags: [],
  }));
  const users: User[] = [...byUser.keys()].sort().map((name) => ({
    uid: '',
    cluster_id: clusterId,
    resource_manager: 'slurm',
    name,
    projects: sorted(byUser.get(name)!),
    tags: [],
  }));
  return { users, projects };
}

/** Effective capabilities of this process include cap_setuid (7) and cap_setgid (6). */
function hasSetIdCaps(): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (!m) return false;
    const caps = BigInt(`0x${m[1]}`);
    return (caps & (1n << 6n)) !== 0n && (caps & (1n << 7n)) !== 0n;
  } catch {
    return false;
  }
}

export type ExecMode = 'root' | 'sudo' | 'user';

export interface SlurmClusterConfig {
  id: string;
  cli?: { path?: string; environment_variables?: Record<string, string> };
}

export interface SlurmOptions {
  /** Per-command timeout (default 2 min). */
  commandTimeoutMs?: number;
  /** sudo binary (default `sudo` from PATH). */
  sudo?: string;
  /** Forces the privilege probe result (for tests); default: euid 0 or set-id capabilities. */
  privileged?: boolean;
}

/** Directory of the SLURM tools: `cli.path`, else the directory of `sacct` on PATH. */
export function findSlurmBinDir(cliPath: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (cliPath) {
    if (!existsSync(cliPath) || !statSync(cliPath).isDirectory())
      throw new Error(`SLURM cli.path '${cliPath}' does not exist or is not a directory`);
    return cliPath;
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'sacct'))) return dir;
  }
  throw new Error('sacct not found on PATH and no cli.path configured');
}

export class SlurmManager implements ResourceManager {
  readonly manager = 'slurm';
  readonly clusterId: string;
  readonly mode: ExecMode;
  private readonly bin: string;
  private readonly extraEnv: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly sudo: string;
  private readonly tz: string;

  private constructor(
    cfg: SlurmClusterConfig,
    ctx: ManagerContext,
    bin: string,
    mode: ExecMode,
    opts: SlurmOptions,
  ) {
    this.clusterId = cfg.id;
    this.bin = bin;
    this.mode = mode;
    this.extraEnv = cfg.cli?.environment_variables ?? {};
    this.timeoutMs = opts.commandTimeoutMs ?? 120_000;
    this.sudo = opts.sudo ?? 'sudo';
    this.tz = ctx.timeZone;
  }

  /** Resolves the tools directory and picks the execution mode (root/capabilities, sudo, own user). */
  static async create(
    cfg: SlurmClusterConfig,
    ctx: ManagerContext,
    opts: SlurmOptions = {},
  ): Promise<SlurmManager> {
    const bin = findSlurmBinDir(cfg.cli?.path);
    const privileged = opts.privileged ?? (process.geteuid?.() === 0 || hasSetIdCaps());
    let mode: ExecMode = 'user';
    if (privileged) mode = 'root';
    else {
      try {
        await runCommand([opts.sudo ?? 'sudo', join(bin, 'sacct'), '--help'], { timeoutMs: 5000 });
        mode = 'sudo';
      } catch (e) {
        ctx.logger.warn(
          { cluster_id: cfg.id, err: (e as Error).message },
          'SLURM commands run as the current user without privileges: sacct will only show its own jobs',
        );
      }
    }
    ctx.logger.debug({ cluster_id: cfg.id, mode, path: bin }, 'SLURM resource manager ready');
    return new SlurmManager(cfg, ctx, bin, mode, opts);
  }

  /** Runs a SLURM tool in the chosen mode; resolves with its stdout (stderr only goes into errors). */
  private async exec(
    cmd: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    signal?: AbortSignal,
  ): Promise<string> {
    const path = join(this.bin, cmd);
    const opts = { env, timeoutMs: this.timeoutMs, signal, maxBytes: MAX_OUTPUT };
    if (this.mode === 'sudo') {
      const sudoEnv = { PATH: process.env.PATH, ...env };
      return (await runCommand([this.sudo, '-E', path, ...args], { ...opts, env: sudoEnv })).stdout;
    }
    const setId = this.mode === 'root' && process.geteuid?.() !== 0 ? { uid: 0, gid: 0 } : {};
    return (await runCommand([path, ...args], { ...opts, ...setId })).stdout;
  }

  async fetchUnits(start: number, end: number, signal?: AbortSignal): Promise<Unit[]> {
    // sacct reads --starttime/--endtime (and prints times) in its TZ: the DB zone unless configured.
    const zone = this.extraEnv.TZ ?? this.tz;
    const sacctZone = isValidZone(zone) ? zone : this.tz;
    const env: NodeJS.ProcessEnv = { ...process.env, SLURM_TIME_FORMAT, TZ: zone, ...this.extraEnv };
    const args = sacctArgs(formatDatetime(start, sacctZone), formatDatetime(end, sacctZone));
    const out = await this.exec('sacct', args, env, signal);
    return parseSacct(out, {
      clusterId: this.clusterId,
      timeZone: this.tz,
      start,
      end,
      sacctZone,
    });
  }

  async fetchUsersProjects(_now: number, signal?: AbortSignal): Promise<UsersProjects> {
    const out = await this.exec('sacctmgr', SACCTMGR_ARGS, { ...this.extraEnv }, signal);
    return parseAssociations(out, this.clusterId);
  }

  async close(): Promise<void> {}
}
