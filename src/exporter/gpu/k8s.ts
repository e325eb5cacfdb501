// Kubernetes device-plugin ids → GPUs (spec exporter.md §9.9).

import type { GpuTarget } from './gres.js';
import { shareByOccurrence } from './libvirt.js';
import type { GpuAssignment, GpuDevice } from './types.js';

/** Lower-cases and cuts time-slicing replica suffixes: `GPU-abc::3` → `gpu-abc`. */
export function normalizeDeviceId(id: string): string {
  const i = id.indexOf('::');
  return (i >= 0 ? id.slice(0, i) : id).trim().toLowerCase();
}

/** Physical GPUs are matched first (a partitioned AMD GPU held by its BDF yields `index=""`). */
export function targetForDeviceId(devices: readonly GpuDevice[], id: string): GpuTarget | undefined {
  const n = normalizeDeviceId(id);
  for (const device of devices) if (device.deviceIds.includes(n)) return { device };
  for (const device of devices)
    for (const instance of device.instances) if (instance.deviceIds.includes(n)) return { device, instance };
  return undefined;
}

export interface PodDevices {
  /** Pod UID (the `uuid` label). */
  uuid: string;
  /** Raw device-plugin ids of all containers (replicas repeat the same GPU). */
  deviceIds: readonly string[];
}

/** Flag value = replicas of a GPU held by the pod ÷ replicas of that GPU held by all pods. */
export function k8sGpuAssignments(
  devices: readonly GpuDevice[],
  pods: readonly PodDevices[],
): Map<string, GpuAssignment[]> {
  const uses = pods.map((p) =>
    p.deviceIds.map((id) => targetForDeviceId(devices, id)).filter((t) => t !== undefined),
  );
  return shareByOccurrence(
    pods.map((p) => p.uuid),
    uses,
  );
}
