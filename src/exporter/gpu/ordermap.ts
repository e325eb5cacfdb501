// `--collector.slurm.gpu-order-map` (spec exporter.md §9.5): `<slurm_index>:<minor>[.<gpu_instance_id>]`.

import type { GpuDevice } from './types.js';

export interface GpuOrderEntry {
  slurmIndex: string;
  minor: number;
  gpuInstanceId?: number;
}

export class GpuOrderMapError extends Error {
  override name = 'GpuOrderMapError';
}

export function parseGpuOrderMap(value: string): GpuOrderEntry[] {
  const v = value.trim();
  if (v === '') return [];
  return v.split(',').map((raw) => {
    const m = /^\s*(\d+)\s*:\s*(\d+)(?:\.(\d+))?\s*$/.exec(raw);
    if (!m)
      throw new GpuOrderMapError(
        `invalid entry '${raw}' in --collector.slurm.gpu-order-map: expected <slurm_index>:<minor>[.<gpu_instance_id>]`,
      );
    return {
      slurmIndex: String(Number(m[1])),
      minor: Number(m[2]),
      gpuInstanceId: m[3] === undefined ? undefined : Number(m[3]),
    };
  });
}

/** Sets `index` of the designated GPUs / MIG instances; returns the entries that matched nothing. */
export function applyGpuOrderMap(
  devices: readonly GpuDevice[],
  entries: readonly GpuOrderEntry[],
): GpuOrderEntry[] {
  const unmatched: GpuOrderEntry[] = [];
  for (const e of entries) {
    const d = devices.find((x) => x.minor === e.minor);
    const target =
      e.gpuInstanceId === undefined ? d : d?.instances.find((i) => i.gpuInstanceId === e.gpuInstanceId);
    if (target) target.index = e.slurmIndex;
    else unmatched.push(e);
  }
  return unmatched;
}
