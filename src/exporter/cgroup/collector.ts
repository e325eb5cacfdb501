// The cgroup sub-collector shared by the slurm, libvirt and k8s collectors: unit discovery (§7) and the
// per-unit families of spec exporter.md §8.2.

import { join } from 'node:path';
import type { ParsedFlags } from '../../common/flags.js';
import { readFileFast } from '../../common/fsread.js';
import type { Logger } from '../../common/logger.js';
import { type CollectorContext, type Emitter, NoDataError } from '../collector.js';
import { ebpfEnabled } from '../ebpf/flags.js';
import { FaultLog } from '../faultlog.js';
import { emitGpuRows } from '../gpu/emit.js';
import type { GpuAssignment } from '../gpu/types.js';
import { perfEnabled } from '../perf/flags.js';
import { rdmaEnabled } from '../rdma/flags.js';
import { DURATION_FAMILY, DURATION_HELP } from '../scrape.js';
import type { CgroupLayout } from './layout.js';
import { parseDiskstats, parseMeminfoTotals } from './parse.js';
import { readUnitStats, type StatsOptions, UnitFileError, type UnitStats, VanishedError } from './stats.js';
import { type CgroupUnit, UnitWalker } from './walk.js';

export interface CgroupCollectorOptions {
  readonly layout: CgroupLayout;
  readonly hostname: string;
  readonly procfs: string;
  readonly logger: Logger;
  readonly stats: Omit<StatsOptions, 'memTotal' | 'swapTotal'>;
}

/**
 * A sub-collector of the slurm, libvirt and k8s collectors (perf, ebpf, rdma; spec §1.2): runs after the
 * cgroup metrics on the units of the scrape. Its failures are logged by the caller and never fail the unit
 * collector.
 */
export interface UnitSubCollector {
  update(out: Emitter, units: readonly CgroupUnit[], signal: AbortSignal): Promise<void>;
  stop?(): void | Promise<void>;
}

export interface UnitSubCollectorDefinition {
  /** Value of the `subcollector` label of its duration sample. */
  readonly name: string;
  enabled(flags: ParsedFlags): boolean;
  /** `manager` is the unit collector's name (`slurm`, `libvirt`, `k8s`). */
  create(ctx: CollectorContext, manager: string): UnitSubCollector | Promise<UnitSubCollector>;
}

/**
 * Every sub-collector the compute-unit collectors can run, in the order they are started. A module is
 * imported when the flags enable its sub-collector: perf_event, libbpf and RDMA code (and their FFI) stay
 * out of the memory of the exporters that run none of them.
 */
export const UNIT_SUB_COLLECTORS: readonly UnitSubCollectorDefinition[] = [
  {
    name: 'perf',
    enabled: perfEnabled,
    create: async (ctx, manager) =>
      (await import('../perf/collector.js')).createPerfSubCollector(ctx, manager),
  },
  {
    name: 'ebpf',
    enabled: ebpfEnabled,
    create: async (ctx, manager) =>
      (await import('../ebpf/collector.js')).createEbpfSubCollector(ctx, manager),
  },
  {
    name: 'rdma',
    enabled: rdmaEnabled,
    create: async (ctx, manager) =>
      (await import('../rdma/collector.js')).createRdmaSubCollector(ctx, manager),
  },
];

const G = 'gauge';
const PREFIX = 'ceems_compute_unit_';
// family names built once: a name made per sample would be a new string to hash on every emit
const CPU_USER = `${PREFIX}cpu_user_seconds_total`;
const CPU_SYSTEM = `${PREFIX}cpu_system_seconds_total`;
const CPUS = `${PREFIX}cpus`;
const MEMORY_RSS = `${PREFIX}memory_rss_bytes`;
const MEMORY_CACHE = `${PREFIX}memory_cache_bytes`;
const MEMORY_USED = `${PREFIX}memory_used_bytes`;
const MEMORY_TOTAL = `${PREFIX}memory_total_bytes`;
const MEMORY_FAIL_COUNT = `${PREFIX}memory_fail_count`;
const MEMSW_USED = `${PREFIX}memsw_used_bytes`;
const MEMSW_TOTAL = `${PREFIX}memsw_total_bytes`;
const MEMSW_FAIL_COUNT = `${PREFIX}memsw_fail_count`;
const CPU_PSI = `${PREFIX}cpu_psi_seconds`;
const MEMORY_PSI = `${PREFIX}memory_psi_seconds`;
const COLLECT_ERROR = `${PREFIX}collect_error`;

export class CgroupCollector {
  readonly layout: CgroupLayout;
  private readonly stats: StatsOptions;
  private readonly subCollectors: { name: string; collector: UnitSubCollector }[] = [];
  private readonly faults: FaultLog;
  /** Keeps the cgroup tree's directory structure between scrapes (walk.ts). */
  private readonly walker: UnitWalker;

  constructor(private readonly o: CgroupCollectorOptions) {
    this.layout = o.layout;
    this.walker = new UnitWalker(o.layout, o.procfs);
    this.faults = new FaultLog(o.logger, 'cannot read unit cgroup');
    let totals = { memTotal: 0, swapTotal: 0 };
    try {
      totals = parseMeminfoTotals(readFileFast(join(o.procfs, 'meminfo')));
    } catch (e) {
      o.logger.warn({ err: (e as Error).message }, 'cannot read meminfo; unlimited memory limits export 0');
    }
    this.stats = { ...o.stats, ...totals };
  }

  /** Creates the sub-collectors that the flags switch on (called by the unit collectors' `create`). */
  async enableSubCollectors(ctx: CollectorContext, defs = UNIT_SUB_COLLECTORS): Promise<void> {
    for (const d of defs)
      if (d.enabled(ctx.flags)) {
        this.subCollectors.push({ name: d.name, collector: await d.create(ctx, this.layout.manager) });
        ctx.logger.info({ subcollector: d.name }, 'Sub-collector enabled');
      }
  }

  /**
   * Runs the sub-collectors concurrently on `units`, each adding its duration sample
   * `{collector=<manager>,subcollector=<name>}`; failures are logged only (spec §1.3).
   */
  async runSubCollectors(out: Emitter, units: readonly CgroupUnit[], signal: AbortSignal): Promise<void> {
    await Promise.all(
      this.subCollectors.map(async ({ name, collector }) => {
        const start = process.hrtime.bigint();
        try {
          await collector.update(out, units, signal);
        } catch (e) {
          const err = (e as Error).message;
          if (e instanceof NoDataError)
            this.o.logger.debug({ subcollector: name, err }, 'sub-collector returned no data');
          else this.o.logger.error({ subcollector: name, err }, 'sub-collector failed');
        }
        out.emit(
          DURATION_FAMILY,
          G,
          DURATION_HELP,
          { collector: this.layout.manager, subcollector: name },
          Number(process.hrtime.bigint() - start) / 1e9,
        );
      }),
    );
  }

  /** Stops the sub-collectors (at shutdown); failures are logged. */
  async stopSubCollectors(): Promise<void> {
    for (const { name, collector } of this.subCollectors) {
      try {
        await collector.stop?.();
      } catch (e) {
        this.o.logger.warn({ subcollector: name, err: (e as Error).message }, 'sub-collector stop failed');
      }
    }
  }

  /**
   * One scrape of a compute-unit collector: the cgroup metrics of `units`, the sub-collectors (concurrently)
   * and the GPU rows `gpuRows` gives per unit uuid (absent on nodes without GPUs). A failed GPU mapping
   * still waits for the sub-collectors, so that none writes after the scrape.
   */
  async scrape(
    out: Emitter,
    units: readonly CgroupUnit[],
    signal: AbortSignal,
    gpuRows?: (present: CgroupUnit[]) => Map<string, GpuAssignment[]> | Promise<Map<string, GpuAssignment[]>>,
  ): Promise<void> {
    const present = this.collect(out, units);
    const subCollectors = this.runSubCollectors(out, present, signal);
    try {
      if (!gpuRows) return;
      const byUuid = await gpuRows(present);
      for (const u of present) {
        const rows = byUuid.get(u.uuid);
        if (rows) emitGpuRows(out, this.layout.manager, this.o.hostname, u, rows);
      }
    } finally {
      await subCollectors;
    }
  }

  /** Units currently present in the cgroup tree; the first step of a scrape. */
  discover(): CgroupUnit[] {
    this.faults.nextScrape();
    return this.walker.walk((unit, file, reason) => this.faults.report(unit, file, reason));
  }

  /** Per-unit label set of every compute-unit family. */
  labels(u: CgroupUnit): Record<string, string> {
    return {
      cgrouphostname: u.cgrouphostname,
      hostname: this.o.hostname,
      manager: this.layout.manager,
      uuid: u.uuid,
    };
  }

  /**
   * Reads and emits every unit plus `ceems_compute_units`; returns the units still present (those whose
   * cgroup vanished meanwhile are skipped, units that cannot be read get `collect_error 1`).
   */
  collect(out: Emitter, units: readonly CgroupUnit[]): CgroupUnit[] {
    const present: CgroupUnit[] = [];
    let disks: Map<string, string> | undefined;
    for (const u of units) {
      let s: UnitStats;
      try {
        s = readUnitStats(this.layout, u, this.stats);
      } catch (e) {
        if (e instanceof VanishedError) {
          this.o.logger.debug({ uuid: u.uuid }, 'unit cgroup vanished while reading; skipped');
          continue;
        }
        present.push(u);
        if (e instanceof UnitFileError) this.faults.report(u.uuid, e.file, e.reason);
        else this.faults.report(u.uuid, '', (e as Error).message);
        out.emit(COLLECT_ERROR, G, 'Indicates collection error, 0=no error, 1=error', this.labels(u), 1);
        continue;
      }
      present.push(u);
      if (s.blkio.size > 0 && !disks) disks = this.diskNames();
      this.emitStats(out, this.labels(u), s, disks);
    }
    out.emit(
      'ceems_compute_units',
      G,
      'Total number of jobs',
      { hostname: this.o.hostname, manager: this.layout.manager },
      present.length,
    );
    return present;
  }

  private diskNames(): Map<string, string> {
    try {
      return parseDiskstats(readFileFast(join(this.o.procfs, 'diskstats')));
    } catch (e) {
      this.o.logger.warn(
        { err: (e as Error).message },
        'cannot read diskstats; block device names are empty',
      );
      return new Map();
    }
  }

  private emitStats(
    out: Emitter,
    l: Record<string, string>,
    s: UnitStats,
    disks: Map<string, string> | undefined,
  ): void {
    out.emit(CPU_USER, 'counter', 'Total job CPU user seconds', l, s.cpuUser);
    out.emit(CPU_SYSTEM, 'counter', 'Total job CPU system seconds', l, s.cpuSystem);
    out.emit(CPUS, G, 'Total number of job CPUs', l, s.cpus);
    out.emit(MEMORY_RSS, G, 'Memory RSS used in bytes', l, s.memoryRss);
    out.emit(MEMORY_CACHE, G, 'Memory cache used in bytes', l, s.memoryCache);
    out.emit(MEMORY_USED, G, 'Memory used in bytes', l, s.memoryUsed);
    out.emit(MEMORY_TOTAL, G, 'Memory total in bytes', l, s.memoryTotal);
    out.emit(MEMORY_FAIL_COUNT, G, 'Memory fail count', l, s.memoryFailCount);
    if (this.stats.swap) {
      out.emit(MEMSW_USED, G, 'Swap used in bytes', l, s.swapUsed);
      out.emit(MEMSW_TOTAL, G, 'Swap total in bytes', l, s.swapTotal);
      out.emit(MEMSW_FAIL_COUNT, G, 'Swap fail count', l, s.swapFailCount);
    }
    if (this.stats.psi) {
      out.emit(CPU_PSI, G, 'Total CPU PSI in seconds', l, s.cpuPsi);
      out.emit(MEMORY_PSI, G, 'Total memory PSI in seconds', l, s.memoryPsi);
    }
    for (const [majMin, d] of s.blkio) {
      const dl = { ...l, device: disks?.get(majMin) ?? '' };
      const positive = (name: string, help: string, v: number) => {
        if (v > 0) out.emit(`${PREFIX}${name}`, G, help, dl, v);
      };
      positive('blkio_read_total_bytes', 'Total block IO read bytes', d.readBytes);
      positive('blkio_write_total_bytes', 'Total block IO write bytes', d.writeBytes);
      positive('blkio_read_total_requests', 'Total block IO read requests', d.readRequests);
      positive('blkio_write_total_requests', 'Total block IO write requests', d.writeRequests);
    }
    for (const [dev, r] of s.rdma) {
      const dl = { ...l, device: dev };
      if (r.handles > 0)
        out.emit(`${PREFIX}rdma_hca_handles`, G, 'Current number of RDMA HCA handles', dl, r.handles);
      // [D-EXP-1] objects, not handles
      if (r.objects > 0)
        out.emit(`${PREFIX}rdma_hca_objects`, G, 'Current number of RDMA HCA objects', dl, r.objects);
    }
  }
}
