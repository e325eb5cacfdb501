// SLURM jobs from their cgroups (spec exporter.md §6, §7.4, §8) and the GPUs they use (§9.6). Loaded only
// when the slurm collector is enabled (its flags are in collectors/slurm.ts).

import { CgroupCollector } from '../cgroup/collector.js';
import { layoutOptions, managerLayout } from '../cgroup/layout.js';
import type { CgroupUnit } from '../cgroup/walk.js';
import type { Collector, CollectorContext, Emitter } from '../collector.js';
import { createGpuInventory, SlurmGpuMapper } from '../gpu/index.js';
import { UnitEnergyTracker } from '../unitenergy/tracker.js';

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

/** Builds the slurm collector: called by its definition (collectors/slurm.ts) once enabled. */
export async function createSlurmCollector(ctx: CollectorContext): Promise<SlurmCollector> {
  const collector = new SlurmCollector(ctx); // fails first when there are no SLURM cgroups
  await collector.cgroups.enableSubCollectors(ctx);
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
}
