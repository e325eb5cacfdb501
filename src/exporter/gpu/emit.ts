// The two GPU→unit families with the labels of spec exporter.md §9.10 and the per-manager HELP of §6.

import type { Emitter } from '../collector.js';
import type { GpuAssignment, Manager } from './types.js';

export const GPU_INDEX_FLAG = 'ceems_compute_unit_gpu_index_flag';
export const GPU_SM_COUNT = 'ceems_compute_unit_gpu_sm_count';

/** HELP differs per manager (kept quirk, §17.2). */
export const GPU_INDEX_FLAG_HELP: Readonly<Record<Manager, string>> = {
  slurm: 'A value > 0 indicates the job using current GPU',
  libvirt: 'A value > 0 indicates running instance using current GPU',
  k8s: 'A value > 0 indicates the pod using current GPU',
};
export const GPU_SM_COUNT_HELP = 'Number of SMs/CUs in the GPU instance';

export interface GpuUnit {
  uuid: string;
  cgrouphostname?: string;
}

/**
 * Writes one `gpu_index_flag` row per assignment, plus a `gpu_sm_count` row when the SM/CU count of the
 * GPU (instance) is known (> 0).
 */
export function emitGpuRows(
  out: Emitter,
  manager: Manager,
  hostname: string,
  unit: GpuUnit,
  assignments: readonly GpuAssignment[],
): void {
  for (const a of assignments) {
    const index = a.instance ? a.instance.index : a.device.index;
    const labels = {
      cgrouphostname: unit.cgrouphostname ?? '',
      gpuiid: a.instance ? String(a.instance.gpuInstanceId) : '',
      gpuuuid: a.device.uuid,
      hindex: `${hostname}/gpu-${index}`,
      hostname,
      index,
      manager,
      uuid: unit.uuid,
    };
    out.emit(GPU_INDEX_FLAG, 'gauge', GPU_INDEX_FLAG_HELP[manager], labels, a.value);
    const sm = a.instance ? a.instance.smCount : a.device.smCount;
    if (sm > 0) out.emit(GPU_SM_COUNT, 'gauge', GPU_SM_COUNT_HELP, labels, sm);
  }
}
