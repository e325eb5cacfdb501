// Reads the statistics of one unit's cgroup (spec exporter.md §8.1). Files are small pseudo-files read
// synchronously through readFileBytes (bounded, regular files only) and, on cgroup v2, parsed as bytes in
// their usual form (parse.ts): no per-unit process spawns, no string per file, linear in the number of units.

import { existsSync } from 'node:fs';
import { fileBuffer, readFileBytes } from '../../common/fsread.js';
import type { CgroupLayout, V1Controller } from './layout.js';
import {
  type BlkioDevice,
  countCpuList,
  cpuListCount,
  type FlatKey,
  flatKey,
  flatValue,
  parseBlkioV1,
  parseFlatKeyed,
  parseIoStat,
  parsePsiFullTotal,
  parseRdmaCurrent,
  plainInt,
  psiFullTotal,
  type RdmaDevice,
  sharesToCpus,
  weightToShares,
} from './parse.js';
import type { UnitHints } from './walk.js';

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

// One bit per optional file, for UnitHints.absent: a file missing at the last scrape is looked for with
// access(2) first, so that a missing file (rdma.current without the rdma controller, swap files without swap
// accounting) costs no thrown ENOENT per unit and scrape; one that appears is read from then on.
const CPUSET = 1 << 0;
const CPU_WEIGHT = 1 << 1;
const MEM_CURRENT = 1 << 2;
const MEM_MAX = 1 << 3;
const MEM_STAT = 1 << 4;
const MEM_EVENTS = 1 << 5;
const SWAP_CURRENT = 1 << 6;
const SWAP_MAX = 1 << 7;
const CPU_PRESSURE = 1 << 8;
const MEM_PRESSURE = 1 << 9;
const IO_STAT = 1 << 10;
const RDMA = 1 << 11;
const V1_CPUSET = 1 << 12;
const V1_SHARES = 1 << 13;
const V1_USAGE = 1 << 14;
const V1_LIMIT = 1 << 15;
const V1_FAILCNT = 1 << 16;
const V1_STAT = 1 << 17;
const V1_SW_USAGE = 1 << 18;
const V1_SW_LIMIT = 1 << 19;
const V1_SW_FAILCNT = 1 << 20;
const V1_RDMA = 1 << 21;
const V1_BLKIO = [1 << 22, 1 << 23, 1 << 24, 1 << 25];

function isNotFound(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'ENOENT';
}

/** Reads a required file's bytes; ENOENT becomes VanishedError when the unit directory itself is gone. */
function requiredBytes(path: string, unitDir: string): number {
  try {
    return readFileBytes(path);
  } catch (e) {
    if (isNotFound(e) && !existsSync(unitDir)) throw new VanishedError(`${unitDir} vanished`);
    throw new UnitFileError(path, (e as Error).message);
  }
}

/** Reads an optional file's bytes: -1 when it does not exist (controller or feature not enabled). */
function optionalBytes(path: string, bit: number, hints: UnitHints): number {
  if (hints.absent & bit) {
    if (!existsSync(path)) return -1;
    hints.absent &= ~bit;
  }
  try {
    return readFileBytes(path);
  } catch (e) {
    if (isNotFound(e)) {
      hints.absent |= bit;
      return -1;
    }
    throw new UnitFileError(path, (e as Error).message);
  }
}

/** An optional file as text: undefined when it does not exist. */
function optional(path: string, bit: number, hints: UnitHints): string | undefined {
  const len = optionalBytes(path, bit, hints);
  return len < 0 ? undefined : fileBuffer().toString('utf8', 0, len);
}

/** The text of the last read (the slow path of the byte parsers). */
const lastText = (len: number): string => fileBuffer().toString('utf8', 0, len);

function num(text: string | undefined, path: string): number {
  if (text === undefined) return 0;
  const s = text.trim();
  const n = Number(s);
  if (s === '' || !Number.isFinite(n)) throw new UnitFileError(path, `malformed value '${s}'`);
  return n;
}

/** num() of an optional file just read (`len` < 0: absent, 0). */
function numBytes(len: number, path: string): number {
  if (len < 0) return 0;
  const v = plainInt(fileBuffer(), 0, len);
  return Number.isNaN(v) ? num(lastText(len), path) : v;
}

/** A limit file (`max` or a number) just read: `max` gives `unlimited`, absent 0. */
function limitBytes(len: number, path: string, unlimited: number): number {
  if (len < 0) return 0;
  const buf = fileBuffer();
  const v = plainInt(buf, 0, len);
  if (!Number.isNaN(v)) return v;
  const s = lastText(len).trim();
  return s === 'max' ? unlimited : num(s, path);
}

/** One key of a flat-keyed file just read; 0 when absent. */
function keyBytes(len: number, key: FlatKey, name: string): number {
  const v = flatValue(fileBuffer(), len, key);
  if (v === undefined) return 0;
  return Number.isNaN(v) ? (parseFlatKeyed(lastText(len)).get(name) ?? 0) : v;
}

/** Two required keys of a CPU statistics file, e.g. `user_usec` and `system_usec` of cpu.stat. */
function cpuPair(text: string, user: string, system: string, path: string): [number, number] {
  const m = parseFlatKeyed(text);
  const u = m.get(user);
  const s = m.get(system);
  if (u === undefined || s === undefined) throw new UnitFileError(path, `no numeric ${user}/${system}`);
  return [u, s];
}

const USER_USEC = flatKey('user_usec');
const SYSTEM_USEC = flatKey('system_usec');
const ANON = flatKey('anon');
const FILE = flatKey('file');
const OOM = flatKey('oom');

/** The block IO and RDMA maps of a unit without such data: shared, never written (see deviceMaps). */
const NO_BLKIO: Map<string, BlkioDevice> = new Map();
const NO_RDMA: Map<string, RdmaDevice> = new Map();

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
    blkio: NO_BLKIO,
    rdma: NO_RDMA,
  };
}

/** The unit's own block IO map, made when it has block IO data (most units have none: two Maps less each). */
function blkioOf(s: UnitStats): Map<string, BlkioDevice> {
  if (s.blkio === NO_BLKIO) s.blkio = new Map();
  return s.blkio;
}

/** Number of `vcpu*` child directories of a libvirt unit. */
export function countVcpus(children: readonly string[]): number {
  let n = 0;
  for (const c of children) if (c.slice(c.lastIndexOf('/') + 1).startsWith('vcpu')) n++;
  return n;
}

function readV2(dir: string, o: StatsOptions, vcpus: number, h: UnitHints): UnitStats {
  const s = emptyStats();
  const p = (f: string) => `${dir}/${f}`;
  const stat = p('cpu.stat');
  let len = requiredBytes(stat, dir);
  const buf = fileBuffer();
  let user = flatValue(buf, len, USER_USEC);
  let system = flatValue(buf, len, SYSTEM_USEC);
  if (user === undefined || system === undefined || Number.isNaN(user) || Number.isNaN(system))
    [user, system] = cpuPair(lastText(len), 'user_usec', 'system_usec', stat);
  s.cpuUser = user / 1e6;
  s.cpuSystem = system / 1e6;
  if (o.cpuCount === 'cpuset') {
    len = optionalBytes(p('cpuset.cpus.effective'), CPUSET, h);
    s.cpus = len < 0 ? 0 : (cpuListCount(fileBuffer(), len) ?? countCpuList(lastText(len)));
  } else if (o.cpuCount === 'vcpus') {
    s.cpus = vcpus;
  } else {
    len = optionalBytes(p('cpu.weight'), CPU_WEIGHT, h);
    s.cpus = len < 0 ? 0 : sharesToCpus(weightToShares(numBytes(len, p('cpu.weight'))));
  }
  s.memoryUsed = numBytes(optionalBytes(p('memory.current'), MEM_CURRENT, h), p('memory.current'));
  s.memoryTotal = limitBytes(optionalBytes(p('memory.max'), MEM_MAX, h), p('memory.max'), o.memTotal);
  len = optionalBytes(p('memory.stat'), MEM_STAT, h);
  if (len >= 0) {
    s.memoryRss = keyBytes(len, ANON, 'anon');
    s.memoryCache = keyBytes(len, FILE, 'file');
  }
  len = optionalBytes(p('memory.events'), MEM_EVENTS, h);
  if (len >= 0) s.memoryFailCount = keyBytes(len, OOM, 'oom');
  if (o.swap) {
    s.swapUsed = numBytes(optionalBytes(p('memory.swap.current'), SWAP_CURRENT, h), p('memory.swap.current'));
    s.swapTotal = limitBytes(
      optionalBytes(p('memory.swap.max'), SWAP_MAX, h),
      p('memory.swap.max'),
      o.swapTotal > 0 ? o.swapTotal : o.memTotal,
    );
  }
  if (o.psi) {
    len = optionalBytes(p('cpu.pressure'), CPU_PRESSURE, h);
    s.cpuPsi = len < 0 ? 0 : (psiFullTotal(fileBuffer(), len) ?? parsePsiFullTotal(lastText(len)));
    len = optionalBytes(p('memory.pressure'), MEM_PRESSURE, h);
    s.memoryPsi = len < 0 ? 0 : (psiFullTotal(fileBuffer(), len) ?? parsePsiFullTotal(lastText(len)));
  }
  if (o.blkio) {
    const io = optional(p('io.stat'), IO_STAT, h);
    if (io !== undefined) parseIoStat(io, blkioOf(s));
  }
  const rdma = optional(p('rdma.current'), RDMA, h);
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
  h: UnitHints,
): UnitStats {
  const s = emptyStats();
  const c = (controller: V1Controller, f: string) => `${controllers[controller]}${rel}/${f}`;
  const cpuacctDir = `${controllers.cpuacct}${rel}`;
  const statPath = c('cpuacct', 'cpuacct.stat');
  const [user, system] = cpuPair(lastText(requiredBytes(statPath, cpuacctDir)), 'user', 'system', statPath);
  // USER_HZ ticks → seconds
  s.cpuUser = user / 100;
  s.cpuSystem = system / 100;
  if (o.cpuCount === 'cpuset') {
    const list = optional(c('cpuset', 'cpuset.cpus'), V1_CPUSET, h);
    s.cpus = list === undefined ? 0 : countCpuList(list);
  } else if (o.cpuCount === 'vcpus') {
    s.cpus = vcpus;
  } else {
    const sh = optional(c('cpu', 'cpu.shares'), V1_SHARES, h);
    s.cpus = sh === undefined ? 0 : sharesToCpus(num(sh, c('cpu', 'cpu.shares')));
  }
  const mem = (f: string, bit: number) => optional(c('memory', f), bit, h);
  s.memoryUsed = num(mem('memory.usage_in_bytes', V1_USAGE), c('memory', 'memory.usage_in_bytes'));
  s.memoryTotal = limitV1(
    mem('memory.limit_in_bytes', V1_LIMIT),
    c('memory', 'memory.limit_in_bytes'),
    o.memTotal,
  );
  s.memoryFailCount = num(mem('memory.failcnt', V1_FAILCNT), c('memory', 'memory.failcnt'));
  const stat = mem('memory.stat', V1_STAT);
  if (stat !== undefined) {
    const m = parseFlatKeyed(stat);
    s.memoryRss = m.get('total_rss') ?? 0;
    s.memoryCache = m.get('total_cache') ?? 0;
  }
  if (o.swap) {
    s.swapUsed = num(
      mem('memory.memsw.usage_in_bytes', V1_SW_USAGE),
      c('memory', 'memory.memsw.usage_in_bytes'),
    );
    s.swapTotal = limitV1(
      mem('memory.memsw.limit_in_bytes', V1_SW_LIMIT),
      c('memory', 'memory.memsw.limit_in_bytes'),
      o.swapTotal > 0 ? o.swapTotal : o.memTotal,
    );
    s.swapFailCount = num(mem('memory.memsw.failcnt', V1_SW_FAILCNT), c('memory', 'memory.memsw.failcnt'));
  }
  if (o.blkio) {
    const files: [string, 'bytes' | 'requests'][] = [
      ['blkio.throttle.io_service_bytes', 'bytes'],
      ['blkio.throttle.io_serviced', 'requests'],
      ['blkio.io_service_bytes_recursive', 'bytes'],
      ['blkio.io_serviced_recursive', 'requests'],
    ];
    files.forEach(([f, kind], i) => {
      const text = optional(c('blkio', f), V1_BLKIO[i]!, h);
      if (text !== undefined) parseBlkioV1(text, kind, blkioOf(s));
    });
  }
  const rdma = optional(c('rdma', 'rdma.current'), V1_RDMA, h);
  if (rdma !== undefined) s.rdma = parseRdmaCurrent(rdma);
  return s;
}

/**
 * Reads one unit. Throws VanishedError when the unit's cgroup no longer exists, any other Error when it
 * exists but cannot be read or parsed. `hints` (kept per unit directory by the walker) only saves failed
 * opens of files that were missing last time; every file present is read.
 */
export function readUnitStats(
  layout: CgroupLayout,
  unit: { rel: string; children: readonly string[]; hints?: UnitHints },
  o: StatsOptions,
): UnitStats {
  const vcpus = o.cpuCount === 'vcpus' ? countVcpus(unit.children) : 0;
  const hints = unit.hints ?? { absent: 0 };
  if (layout.version === 'v2') return readV2(`${layout.cgroupfs}${unit.rel}`, o, vcpus, hints);
  return readV1(layout.controllers, unit.rel, o, vcpus, hints);
}
