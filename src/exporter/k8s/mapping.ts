// Pod → GPU mapping cache of spec exporter.md §9.9: kubelet pod resources (which pod holds which device
// ids) joined with the API server's pod list (namespace + name → UID, D-EXP-5).

import type { Logger } from '../../common/logger.js';
import { k8sGpuAssignments } from '../gpu/k8s.js';
import type { GpuAssignment, GpuDevice } from '../gpu/types.js';
import type { PodResources } from './podresources.js';
import type { PodInfo } from './pods.js';

export const MAPPING_REFRESH_MS = 15 * 60_000;

export interface PodGpuMapperOptions {
  gpus: { devices(): readonly GpuDevice[] };
  pods: { list(nodeName: string | undefined, signal?: AbortSignal): Promise<PodInfo[]> };
  podResources: { list(): Promise<PodResources[]> };
  /** `NODE_NAME`: restricts the pod list to this node. */
  nodeName?: string;
  logger: Logger;
  refreshMs?: number;
  now?: () => number;
}

/** Joins pod-resources entries to pod UIDs by namespace and name; unknown pods are dropped. */
export function podDeviceIds(
  resources: readonly PodResources[],
  pods: readonly PodInfo[],
): { uuid: string; deviceIds: string[] }[] {
  const uid = new Map(pods.map((p) => [`${p.namespace}/${p.name}`, p.uid]));
  return resources.flatMap((r) => {
    const u = uid.get(`${r.namespace}/${r.name}`);
    if (!u) return [];
    return [{ uuid: u, deviceIds: r.containers.flatMap((c) => c.devices.flatMap((d) => d.deviceIds)) }];
  });
}

export class PodGpuMapper {
  private podSet: string | undefined;
  private devices: readonly GpuDevice[] | undefined;
  private refreshedAt = Number.NEGATIVE_INFINITY;
  private result = new Map<string, GpuAssignment[]>();

  constructor(private readonly opts: PodGpuMapperOptions) {}

  /**
   * GPU assignments per pod UID. Recomputed when the pod set or the GPU list changes, or 15 minutes after
   * the previous refresh (the timestamp is updated on each refresh, D-EXP-6). When the kubelet or the API
   * server fails, the error is logged, the previous mapping is returned and the next call retries.
   */
  async update(podUids: readonly string[], signal?: AbortSignal): Promise<Map<string, GpuAssignment[]>> {
    const now = this.opts.now ?? Date.now;
    const key = [...podUids].sort().join(',');
    const devices = this.opts.gpus.devices();
    if (
      key === this.podSet &&
      devices === this.devices &&
      now() - this.refreshedAt < (this.opts.refreshMs ?? MAPPING_REFRESH_MS)
    )
      return this.result;
    try {
      const [resources, pods] = await Promise.all([
        this.opts.podResources.list(),
        this.opts.pods.list(this.opts.nodeName, signal),
      ]);
      this.result = k8sGpuAssignments(devices, podDeviceIds(resources, pods));
      this.podSet = key;
      this.devices = devices;
      this.refreshedAt = now();
    } catch (e) {
      this.opts.logger.error(
        { err: (e as Error).message },
        'cannot update pod GPU mapping; using the previous one',
      );
    }
    return this.result;
  }
}
