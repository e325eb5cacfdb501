// libvirt/OpenStack VMs from their machine.slice cgroups (spec exporter.md §6, §7.4, §8), identified by the
// domain UUID of their instance XML, and the GPUs passed through to them (§9.8). Loaded only when the
// libvirt collector is enabled (its flags are in collectors/libvirt.ts).

import { join } from 'node:path';
import { readFileFast } from '../../common/fsread.js';
import { CgroupCollector } from '../cgroup/collector.js';
import { layoutOptions, managerLayout } from '../cgroup/layout.js';
import type { CgroupUnit } from '../cgroup/walk.js';
import type { Collector, CollectorContext, Emitter } from '../collector.js';
import {
  createGpuInventory,
  type DomainGpus,
  type GpuAssignment,
  type GpuDevice,
  libvirtGpuAssignments,
  loadXmlParser,
  parseDomainGpus,
} from '../gpu/index.js';

/** GPU mapping data is recomputed when the instance set changes or at this age (§6). */
export const GPU_MAPPING_REFRESH_MS = 15 * 60_000;

export class LibvirtCollector implements Collector {
  readonly cgroups: CgroupCollector;
  private readonly xmlDir: string;
  /** Instance id → parsed instance XML; applied on every scrape [D-EXP-2]. */
  private readonly instances = new Map<string, DomainGpus>();
  /** Instance ids whose XML could not be read (warned once). */
  private readonly unreadable = new Set<string>();
  private gpus: { devices(): readonly GpuDevice[] } | undefined;
  private mapping = { key: '', at: 0, byUuid: new Map<string, GpuAssignment[]>() };

  constructor(
    private readonly ctx: CollectorContext,
    private readonly now: () => number = Date.now,
  ) {
    this.xmlDir = ctx.flags.string('collector.libvirt.xml-dir');
    this.cgroups = new CgroupCollector({
      layout: managerLayout('libvirt', layoutOptions(ctx.cgroupfs, ctx.flags)),
      hostname: ctx.hostname,
      procfs: ctx.procfs,
      logger: ctx.logger,
      stats: {
        cpuCount: 'vcpus',
        swap: ctx.flags.bool('collector.libvirt.swap-memory-metrics'),
        psi: ctx.flags.bool('collector.libvirt.psi-metrics'),
        blkio: ctx.flags.bool('collector.libvirt.blkio-metrics'),
      },
    });
  }

  useGpus(inventory: { devices(): readonly GpuDevice[] }): void {
    this.gpus = inventory;
  }

  /** Instance XML of a VM, parsed once per instance id; undefined while it cannot be read. */
  private instance(id: string): DomainGpus | undefined {
    const cached = this.instances.get(id);
    if (cached) return cached;
    const file = join(this.xmlDir, `${id}.xml`);
    try {
      const parsed = parseDomainGpus(readFileFast(file));
      if (parsed.uuid === '') throw new Error('no <uuid> in <domain>');
      this.instances.set(id, parsed);
      this.unreadable.delete(id);
      return parsed;
    } catch (e) {
      if (!this.unreadable.has(id))
        this.ctx.logger.warn(
          { file, err: (e as Error).message },
          'cannot read instance XML; uuid label is the instance id',
        );
      this.unreadable.add(id);
      return undefined;
    }
  }

  /** VMs of this scrape with their `uuid` set from the instance XML. */
  vms(): CgroupUnit[] {
    const units = this.cgroups.discover();
    const live = new Set(units.map((u) => u.id));
    for (const id of this.instances.keys()) if (!live.has(id)) this.instances.delete(id);
    for (const id of this.unreadable) if (!live.has(id)) this.unreadable.delete(id);
    for (const u of units) u.uuid = this.instance(u.id)?.uuid ?? u.id;
    return units;
  }

  async update(out: Emitter, signal: AbortSignal): Promise<void> {
    await this.cgroups.scrape(out, this.vms(), signal, this.gpus && ((vms) => this.gpuMapping(vms)));
  }

  stop(): Promise<void> {
    return this.cgroups.stopSubCollectors();
  }

  private gpuMapping(vms: readonly CgroupUnit[]): Map<string, GpuAssignment[]> {
    const key = vms
      .map((v) => v.id)
      .sort()
      .join(',');
    const now = this.now();
    if (key !== this.mapping.key || now - this.mapping.at >= GPU_MAPPING_REFRESH_MS) {
      const domains = vms.map((v) => this.instance(v.id)).filter((d) => d !== undefined);
      this.mapping = { key, at: now, byUuid: libvirtGpuAssignments(this.gpus!.devices(), domains) };
    }
    return this.mapping.byUuid;
  }
}

/** Builds the libvirt collector: called by its definition (collectors/libvirt.ts) once enabled. */
export async function createLibvirtCollector(ctx: CollectorContext): Promise<LibvirtCollector> {
  await loadXmlParser(); // instance XML gives each VM its uuid
  const collector = new LibvirtCollector(ctx);
  await collector.cgroups.enableSubCollectors(ctx);
  const inventory = await createGpuInventory(ctx, 'libvirt');
  if (inventory) collector.useGpus(inventory);
  return collector;
}
