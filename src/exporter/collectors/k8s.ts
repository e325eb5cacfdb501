// Kubernetes pods from their kubepods cgroups (spec exporter.md §6, §7.4, §8) and the GPUs the kubelet
// assigned to them (§9.9, through the Pod Resources API and the API server).

import type { FlagSpec } from '../../common/flags.js';
import { CgroupCollector } from '../cgroup/collector.js';
import { layoutOptions, managerLayout } from '../cgroup/layout.js';
import type { Collector, CollectorContext, CollectorDefinition, Emitter } from '../collector.js';
import { createGpuInventory } from '../gpu/index.js';
import { K8S_FLAGS, podResourcesSocket } from '../k8s/flags.js';
import type { PodGpuMapper } from '../k8s/index.js';

export const K8S_COLLECTOR_FLAGS: readonly FlagSpec[] = [
  ...K8S_FLAGS,
  {
    name: 'collector.k8s.psi-metrics',
    type: 'bool',
    default: false,
    help: 'Enables collection of PSI metrics (default: disabled)',
  },
];

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

export const k8s: CollectorDefinition = {
  name: 'k8s',
  defaultEnabled: false,
  flags: K8S_COLLECTOR_FLAGS,
  async create(ctx) {
    // the Kubernetes clients (gRPC, undici, yaml, zod) load only with this collector
    const { loadKubeConfig, PodGpuMapper, PodLister, PodResourcesClient } = await import('../k8s/index.js');
    // Kubernetes API access is mandatory (§6): a bad kubeconfig / missing in-cluster config fails start-up
    const kube = loadKubeConfig(ctx.flags.string('collector.k8s.kubeconfig.file'));
    const collector = new K8sCollector(ctx);
    collector.cgroups.enableSubCollectors(ctx);
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
  },
};
