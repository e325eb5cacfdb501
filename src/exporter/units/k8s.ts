// Kubernetes pods from their kubepods cgroups (spec exporter.md §6, §7.4, §8) and the GPUs the kubelet
// assigned to them (§9.9, through the Pod Resources API and the API server). Loaded only when the k8s
// collector is enabled (its flags are in collectors/k8s.ts).

import { CgroupCollector } from '../cgroup/collector.js';
import { layoutOptions, managerLayout } from '../cgroup/layout.js';
import type { Collector, CollectorContext, Emitter } from '../collector.js';
import { createGpuInventory } from '../gpu/index.js';
import { podResourcesSocket } from '../k8s/flags.js';
import { loadKubeConfig, PodGpuMapper, PodLister, PodResourcesClient } from '../k8s/index.js';

/** What the collector needs of the pod→GPU mapping cache. */
export interface PodGpuSource {
  update: PodGpuMapper['update'];
}

export class K8sCollector implements Collector {
  readonly cgroups: CgroupCollector;
  private gpus: PodGpuSource | undefined;
  private readonly closers: (() => unknown)[] = [];

  constructor(ctx: CollectorContext) {
    const opts = layoutOptions(ctx.cgroupfs, ctx.flags);
    this.cgroups = new CgroupCollector({
      layout: managerLayout('k8s', { ...opts, warn: (msg) => ctx.logger.warn(msg) }),
      hostname: ctx.hostname,
      procfs: ctx.procfs,
      logger: ctx.logger,
      // swap and block IO are always on for pods; CPUs come from the pod's cpu weight/shares
      stats: {
        cpuCount: 'shares',
        swap: true,
        psi: ctx.flags.bool('collector.k8s.psi-metrics'),
        blkio: true,
      },
    });
  }

  /** Installs the GPU mapping; `close` functions run at stop(). */
  useGpus(source: PodGpuSource, ...close: (() => unknown)[]): void {
    this.gpus = source;
    this.closers.push(...close);
  }

  async update(out: Emitter, signal: AbortSignal): Promise<void> {
    const gpus = this.gpus;
    await this.cgroups.scrape(
      out,
      this.cgroups.discover(),
      signal,
      gpus &&
        ((pods) =>
          gpus.update(
            pods.map((p) => p.uuid),
            signal,
          )),
    );
  }

  async stop(): Promise<void> {
    await this.cgroups.stopSubCollectors();
    for (const close of this.closers) await close();
  }
}

/** Builds the k8s collector: called by its definition (collectors/k8s.ts) once enabled. */
export async function createK8sCollector(ctx: CollectorContext): Promise<K8sCollector> {
  // Kubernetes API access is mandatory (§6): a bad kubeconfig / missing in-cluster config fails start-up
  const kube = loadKubeConfig(ctx.flags.string('collector.k8s.kubeconfig.file'));
  const collector = new K8sCollector(ctx);
  await collector.cgroups.enableSubCollectors(ctx);
  const inventory = await createGpuInventory(ctx, 'k8s');
  if (inventory) {
    const pods = new PodLister(kube);
    const podResources = new PodResourcesClient(podResourcesSocket(ctx.flags));
    const mapper = new PodGpuMapper({
      gpus: inventory,
      pods,
      podResources,
      nodeName: process.env.NODE_NAME,
      logger: ctx.logger,
    });
    collector.useGpus(
      mapper,
      () => pods.close(),
      () => podResources.close(),
    );
  }
  return collector;
}
