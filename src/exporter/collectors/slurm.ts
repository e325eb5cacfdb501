// SLURM jobs from their cgroups (spec exporter.md §6, §7.4, §8) and the GPUs they use (§9.6).

import { CgroupCollector } from '../cgroup/collector.js';
import { CGROUP_FLAGS, layoutOptions, managerLayout } from '../cgroup/layout.js';
import type { CgroupUnit } from '../cgroup/walk.js';
import type { Collector, CollectorContext, CollectorDefinition, Emitter } from '../collector.js';
import { EBPF_FLAGS } from '../ebpf/collector.js';
import { createGpuInventory, GPU_FLAGS, SLURM_GPU_FLAGS, SlurmGpuMapper } from '../gpu/index.js';
import { PERF_FLAGS } from '../perf/collector.js';
import { RDMA_FLAGS } from '../rdma/collector.js';

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
] as const;

export class SlurmCollector implements Collector {
  readonly cgroups: CgroupCollector;

  /** Maps jobs to GPUs from their processes' environment (§9.6); absent on nodes without GPUs. */
  private gpus: SlurmGpuMapper | undefined;

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
  }

  useGpus(mapper: SlurmGpuMapper): void {
    this.gpus = mapper;
  }

  /** Jobs with at least one process; process-less ("stale") job cgroups belong to ending jobs. */
  jobs(): CgroupUnit[] {
    const units = this.cgroups.discover();
    const live = units.filter((u) => u.pids.length > 0);
    if (live.length < units.length) {
      const stale = units.filter((u) => u.pids.length === 0).map((u) => u.id);
      this.ctx.logger.debug({ jobs: stale.join(',') }, 'dropping stale job cgroups without processes');
    }
    return live;
  }

  async update(out: Emitter, signal: AbortSignal): Promise<void> {
    const gpus = this.gpus;
    await this.cgroups.scrape(out, this.jobs(), signal, gpus && ((jobs) => gpus.update(jobs)));
  }

  stop(): Promise<void> {
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
