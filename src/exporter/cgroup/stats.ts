// Reads the statistics of one unit's cgroup (spec exporter.md §8.1). Files are small pseudo-files read
// synchronously through readFileFast (bounded, regular files only): no per-unit process spawns, linear in the
// number of units.

import { existsSync } from 'node:fs';
import { readFileFast } from '../../common/fsread.js';
import type { CgroupLayout, V1Controller } from './layout.js';
import {
  type BlkioDevice,
  countCpuList,
  parseBlkioV1,
  parseFlatKeyed,
  parseIoStat,
  parsePsiFullTotal,
  parseRdmaCurrent,
  type RdmaDevice,
  sharesToCpus,
  weightToShares,
} from './parse.js';

/** How `ceems_compute_unit_cpus` is obtained (kept quirk: differs per manager). */
export type CpuCountMode = 'cpuset' | 'vcpus' | 'shares';

export interface StatsOptions {
  readonly cpuCount: CpuCountMode;
  readonly swap: boolean;
  readonly psi: boolean;
  readonly blkio: boolean;
  /** Host totals used for "unlimited" limits. */
  readonly memTotal: number;
  readonly swapTotal: number;
}

export interface UnitStats {
  cpuUser: number;
  cpuSystem: number;
  cpus: number;
  memoryRss: number;
  memoryCache: number;
  memoryUsed: number;
  memoryTotal: number;
  memoryFailCount: number;
  swapUsed: number;
  swapTotal: number;
  swapFailCount: number;
  cpuPsi: number;
  memoryPsi: number;
  /** Keyed by `MAJ:MIN`. */
  blkio: Map<string, BlkioDevice>;
  rdma: Map<string, RdmaDevice>;
}

/** The unit's cgroup disappeared while it was read (the job/VM/pod ended): skip it. */
export class VanishedError extends Error {}

/** A file of the unit's cgroup exists but cannot be read or parsed; `reason` does not repeat the path. */
export class UnitFileError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`cannot read ${file}: ${reason}`);
    this.name = 'UnitFileError';
  }
}

const UNLIMITED_V1 = '18446744073709551615';

function isNotFound(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'ENOENT';
}

/** Reads a required file; ENOENT becomes VanishedError when the unit directory itself is gone. */
function required(path: string, unitDir: string): string {
  try {
    return readFileFast(path);
  } catch (e) {
    if (isNotFound(e) && !existsSync(unitDir)) throw new VanishedError(`${unitDir} vanished`);
    throw new UnitFileError(path, (e as Error).message);
  }
}

/** Reads an optional file: undefined when it does not exist (controller or feature not enabled). */
function optional(path: string): string | undefined {
  try {
    return readFileFast(path);
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw new UnitFileError(path, (e as Error).message);
  }
}

function num(text: string | undefined, path: string): number {
  if (text === undefined) return 0;
  const s = text.trim();
  const n = Number(s);
  if (s === '' || !Number.isFinite(n)) throw new UnitFileError(path, `malformed value '${s}'`);
  return n;
}

/** Two required keys of a CPU statistics file, e.g. `user_usec` and `system_usec` of cpu.stat. */
function cpuPair(text: string, user: string, system: string, path: string): [number, number] {
  const m = parseFlatKeyed(text);
  const u = m.get(user);
  const s = m.get(system);
  if (u === undefined || s === undefined) throw new UnitFileError(path, `no numeric ${user}/${system}`);
  return [u, s];
}

function emptyStats(): UnitStats {
  return {
    cpuUser: 0,
    cpuSystem: 0,
    cpus: 0,
    memoryRss: 0,
    memoryCache: 0,
    memoryUsed: 0,
    memoryTotal: 0,
    memoryFailCount: 0,
    swapUsed: 0,
    swapTotal: 0,
    swapFailCount: 0,
    cpuPsi: 0,
    memoryPsi: 0,
    blkio: new Map(),
    rdma: new Map(),
  };
}

/** Number of `vcpu*` child directories of a libvirt unit. */
export function countVcpus(children: readonly string[]): number {
  let n = 0;
  for (const c of children) if (c.slice(c.lastIndexOf('/') + 1).startsWith('vcpu')) n++;
  return n;
}

function readV2(dir: string, o: StatsOptions, vcpus: number): UnitStats {
  const s = emptyStats();
  const p = (f: string) => `${dir}/${f}`;
  const [user, system] = cpuPair(required(p('cpu.stat'), dir), 'user_usec', 'system_usec', p('cpu.stat'));
  s.cpuUser = user / 1e6;
  s.cpuSystem = system / 1e6;
  if (o.cpuCount === 'cpuset') {
    const list = optional(p('cpuset.cpus.effective'));
    s.cpus = list === undefined ? 0 : countCpuList(list);
  } else if (o.cpuCount === 'vcpus') {
    s.cpus = vcpus;
  } else {
    const w = optional(p('cpu.weight'));
    s.cpus = w === undefined ? 0 : sharesToCpus(weightToShares(num(w, p('cpu.weight'))));
  }
  s.memoryUsed = num(optional(p('memory.current')), p('memory.current'));
  const max = optional(p('memory.max'))?.trim();
  s.memoryTotal = max === undefined ? 0 : max === 'max' ? o.memTotal : num(max, p('memory.max'));
  const stat = optional(p('memory.stat'));
  if (stat !== undefined) {
    const m = parseFlatKeyed(stat);
    s.memoryRss = m.get('anon') ?? 0;
    s.memoryCache = m.get('file') ?? 0;
  }
  const events = optional(p('memory.events'));
  if (events !== undefined) s.memoryFailCount = parseFlatKeyed(events).get('oom') ?? 0;
  if (o.swap) {
    s.swapUsed = num(optional(p('memory.swap.current')), p('memory.swap.current'));
    const smax = optional(p('memory.swap.max'))?.trim();
    s.swapTotal =
      smax === undefined
        ? 0
        : smax === 'max'
          ? o.swapTotal > 0
            ? o.swapTotal
            : o.memTotal
          : num(smax, p('memory.swap.max'));
  }
  if (o.psi) {
    s.cpuPsi = parsePsiFullTotal(optional(p('cpu.pressure')) ?? '');
    s.memoryPsi = parsePsiFullTotal(optional(p('memory.pressure')) ?? '');
  }
  if (o.blkio) {
    const io = optional(p('io.stat'));
    if (io !== undefined) parseIoStat(io, s.blkio);
  }
  const rdma = optional(p('rdma.current'));
  if (rdma !== undefined) s.rdma = parseRdmaCurrent(rdma);
  return s;
}

function limitV1(text: string | undefined, path: string, unlimited: number): number {
  if (text === undefined) return 0;
  return text.trim() === UNLIMITED_V1 ? unlimited : num(text, path);
}

function readV1(
  controllers: Readonly<Record<V1Controller, string>>,
  rel: string,
  o: StatsOptions,
  vcpus: number,
): UnitStats {
  const s = emptyStats();
  const c = (controller: V1Controller, f: string) => `${controllers[controller]}${rel}/${f}`;
  const cpuacctDir = `${controllers.cpuacct}${rel}`;
  const statPath = c('cpuacct', 'cpuacct.stat');
  const [user, system] = cpuPair(required(statPath, cpuacctDir), 'user', 'system', statPath);
  // USER_HZ ticks → seconds
  s.cpuUser = user / 100;
  s.cpuSystem = system / 100;
  if (o.cpuCount === 'cpuset') {
    const list = optional(c('cpuset', 'cpuset.cpus'));
    s.cpus = list === undefined ? 0 : countCpuList(list);
  } else if (o.cpuCount === 'vcpus') {
    s.cpus = vcpus;
  } else {
    const sh = optional(c('cpu', 'cpu.shares'));
    s.cpus = sh === undefined ? 0 : sharesToCpus(num(sh, c('cpu', 'cpu.shares')));
  }
  const mem = (f: string) => optional(c('memory', f));
  s.memoryUsed = num(mem('memory.usage_in_bytes'), c('memory', 'memory.usage_in_bytes'));
  s.memoryTotal = limitV1(mem('memory.limit_in_bytes'), c('memory', 'memory.limit_in_bytes'), o.memTotal);
  s.memoryFailCount = num(mem('memory.failcnt'), c('memory', 'memory.failcnt'));
  const stat = mem('memory.stat');
  if (stat !== undefined) {
    const m = parseFlatKeyed(stat);
    s.memoryRss = m.get('total_rss') ?? 0;
    s.memoryCache = m.get('total_cache') ?? 0;
  }
  if (o.swap) {
    s.swapUsed = num(mem('memory.memsw.usage_in_bytes'), c('memory', 'memory.memsw.usage_in_bytes'));
    s.swapTotal = limitV1(
      mem('memory.memsw.limit_in_bytes'),
      c('memory', 'memory.memsw.limit_in_bytes'),
      o.swapTotal > 0 ? o.swapTotal : o.memTotal,
    );
    s.swapFailCount = num(mem('memory.memsw.failcnt'), c('memory', 'memory.memsw.failcnt'));
  }
  if (o.blkio) {
    const files: [string, 'bytes' | 'requests'][] = [
      ['blkio.throttle.io_service_bytes', 'bytes'],
      ['blkio.throttle.io_serviced', 'requests'],
      ['blkio.io_service_bytes_recursive', 'bytes'],
      ['blkio.io_serviced_recursive', 'requests'],
    ];
    for (const [f, kind] of files) {
      const text = optional(c('blkio', f));
      if (text !== undefined) parseBlkioV1(text, kind, s.blkio);
    }
  }
  const rdma = optional(c('rdma', 'rdma.current'));
  if (rdma !== undefined) s.rdma = parseRdmaCurrent(rdma);
  return s;
}

/**
 * Reads one unit. Throws VanishedError when the unit's cgroup no longer exists, any other Error when it
 * exists but cannot be read or parsed.
 */
export function readUnitStats(
  layout: CgroupLayout,
  unit: { rel: string; children: readonly string[] },
  o: StatsOptions,
): UnitStats {
  const vcpus = o.cpuCount === 'vcpus' ? countVcpus(unit.children) : 0;
  if (layout.version === 'v2') return readV2(`${layout.cgroupfs}${unit.rel}`, o, vcpus);
  return readV1(layout.controllers, unit.rel, o, vcpus);
}
