// SLURM jobs from their cgroups (spec exporter.md §6, §7.4, §8) and the GPUs they use (§9.6).

import { CgroupCollector } from '../cgroup/collector.js';
import { CGROUP_FLAGS, layoutOptions, managerLayout } from '../cgroup/layout.js';
import type { CgroupUnit } from '../cgroup/walk.js';
import type { Collector, CollectorContext, CollectorDefinition, Emitter } from '../collector.js';
import { EBPF_FLAGS } from '../ebpf/collector.js';
import { createGpuInventory, GPU_FLAGS, SLURM_GPU_FLAGS, SlurmGpuMapper } from '../gpu/index.js';
import { PERF_FLAGS } from '../perf/collector.js';
import { RDMA_FLAGS } from '../rdma/collector.js';
import { UnitEnergyTracker } from '../unitenergy/tracker.js';

export const SLURM_FLAGS = [
  {
    name: 'collector.slurm.swap-memory-metrics',
    type: 'bool',
    default: false,
    aliases: ['collector.slurm.swap.memory.metrics'],
    help: 'Enables collection of swap memory metrics (default: disabled)',
  },
  {
    name: 'collector.slurm.psi-metrics',
    type: 'bool',
    default: false,
    aliases: ['collector.slurm.psi.metrics'],
    help: 'Enables collection of PSI metrics (default: disabled)',
  },
  {
    name: 'collector.slurm.energy-counter',
    type: 'bool',
    default: false,
    help: "Reads the node's energy counters (RAPL, Cray, hwmon) at each job's start and end and exports the delta and the job's CPU share for short jobs (default: disabled)",
  },
  {
    name: 'collector.slurm.energy-counter.retention',
    type: 'duration',
    default: '30m',
    help: 'How long an ended job keeps its energy counter series (at least two windows of the API server updater).',
  },
  {
    name: 'collector.slurm.energy-counter.spool-dir',
    type: 'string',
    default: '',
    help: 'Directory the SLURM prolog/epilog hooks (etc/slurm/*-energy.sh) write energy counter readings to.',
  },
] as const;

export class SlurmCollector implements Collector {
  readonly cgroups: CgroupCollector;

  /** Maps jobs to GPUs from their processes' environment (§9.6); absent on nodes without GPUs. */
  private gpus: SlurmGpuMapper | undefined;

  /** Energy counters at job start and end (issue 20, B9); absent unless the flag is on. */
  private readonly energy: UnitEnergyTracker | undefined;

  constructor(private readonly ctx: CollectorContext) {
    const layout = managerLayout('slurm', {
      ...layoutOptions(ctx.cgroupfs, ctx.flags),
      warn: (msg) => ctx.logger.warn(msg),
    });
    this.cgroups = new CgroupCollector({
      layout,
      hostname: ctx.hostname,
      procfs: ctx.procfs,
      logger: ctx.logger,
      stats: {
        cpuCount: 'cpuset',
        swap: ctx.flags.bool('collector.slurm.swap-memory-metrics'),
        psi: ctx.flags.bool('collector.slurm.psi-metrics'),
        blkio: false,
      },
    });
    ctx.logger.debug({ version: layout.version, roots: layout.roots.join(',') }, 'slurm cgroup roots');
    if (ctx.flags.bool('collector.slurm.energy-counter'))
      this.energy = new UnitEnergyTracker({
        // a layout of its own: the job id resolver of a layout keeps state per walker
        layout: managerLayout('slurm', layoutOptions(ctx.cgroupfs, ctx.flags)),
        procfs: ctx.procfs,
        sysfs: ctx.sysfs,
        hostname: ctx.hostname,
        logger: ctx.logger,
        retentionMs: ctx.flags.number('collector.slurm.energy-counter.retention'),
        spoolDir: ctx.flags.string('collector.slurm.energy-counter.spool-dir'),
      });
  }

  useGpus(mapper: SlurmGpuMapper): void {
    this.gpus = mapper;
  }

  /** Jobs with at least one process; process-less ("stale") job cgroups belong to ending jobs. */
  jobs(units = this.cgroups.discover()): CgroupUnit[] {
    const live = units.filter((u) => u.pids.length > 0);
    if (live.length < units.length) {
      const stale = units.filter((u) => u.pids.length === 0).map((u) => u.id);
      this.ctx.logger.debug({ jobs: stale.join(',') }, 'dropping stale job cgroups without processes');
    }
    return live;
  }

  async update(out: Emitter, signal: AbortSignal): Promise<void> {
    const gpus = this.gpus;
    const units = this.cgroups.discover();
    await this.cgroups.scrape(out, this.jobs(units), signal, gpus && ((jobs) => gpus.update(jobs)));
    try {
      this.energy?.update(out, units); // the scrape's walk: a job directory's presence is its life
    } catch (e) {
      this.ctx.logger.error({ err: (e as Error).message }, 'unit energy counters failed');
    }
  }

  stop(): Promise<void> {
    this.energy?.stop();
    return this.cgroups.stopSubCollectors();
  }
}

export const slurm: CollectorDefinition = {
  name: 'slurm',
  defaultEnabled: false,
  // cgroup, GPU and sub-collector flags are shared by slurm, libvirt and k8s but may be declared only once: here.
  flags: [
    ...SLURM_FLAGS,
    ...CGROUP_FLAGS,
    ...GPU_FLAGS,
    ...SLURM_GPU_FLAGS,
    ...PERF_FLAGS,
    ...EBPF_FLAGS,
    ...RDMA_FLAGS,
  ],
  async create(ctx) {
    const collector = new SlurmCollector(ctx); // fails first when there are no SLURM cgroups
    collector.cgroups.enableSubCollectors(ctx);
    const inventory = await createGpuInventory(ctx, 'slurm');
    if (inventory)
      collector.useGpus(
        new SlurmGpuMapper(inventory, {
          procfs: ctx.procfs,
          hostname: ctx.hostname,
          logger: ctx.logger,
          gresConfigFile: ctx.flags.string('collector.slurm.gres-config-file'),
        }),
      );
    return collector;
  },
};
