// Data model of GPU discovery and of the GPU→unit mapping (spec exporter.md §9).

export type GpuVendor = 'nvidia' | 'amd';

/** A MIG instance (NVIDIA) or a compute partition (AMD) of a physical GPU. */
export interface GpuInstance {
  /** Ordinal as seen by the resource manager (decimal string), after the SLURM order map. */
  index: string;
  /** MIG GPU-instance id / AMD partition id: the `gpuiid` label. */
  gpuInstanceId: number;
  /** MIG compute-instance id (0 for AMD). */
  computeInstanceId: number;
  /** Position of the MIG device inside `<mig_devices>` (nvidia-smi -L `Device N`). */
  migIndex: number;
  /** `MIG-…` UUID from `nvidia-smi -L` (NVIDIA) or `""` when unknown. */
  uuid: string;
  /** SMs (NVIDIA) or compute units (AMD); 0 = unknown, no `gpu_sm_count` row. */
  smCount: number;
  /** Kubernetes device-plugin ids of this instance, lower-case (`mig-…`, `amdgpu_xcp.3`). */
  deviceIds: string[];
  /** vGPU mdev UUIDs running on this MIG instance (lower-case). */
  mdevUuids: string[];
}

/** A physical GPU. */
export interface GpuDevice {
  vendor: GpuVendor;
  /** 0-based position in the SMI output (NVIDIA) / amd-smi `gpu` id or rocm-smi card order (AMD). */
  minor: number;
  /** Ordinal as seen by the resource manager; `""` when the GPU is partitioned (MIG/AMD partitions). */
  index: string;
  /** Product name (`NVIDIA A100-SXM4-80GB`, `AMD Instinct MI250X`). */
  name: string;
  /** `gpuuuid` label: NVIDIA `GPU-…` UUID, AMD board serial number. */
  uuid: string;
  /** PCI bus id normalised to `dddd:bb:ss.f`, lower-case (e.g. `0000:3b:00.0`). */
  busId: string;
  /** SMs/CUs of the full GPU; 0 = unknown. */
  smCount: number;
  /** MIG enabled (NVIDIA) or compute partition DPX/TPX/QPX/CPX (AMD): the GPU is used through `instances`. */
  partitioned: boolean;
  /** NVIDIA virtualization mode `VGPU`. */
  vgpuEnabled: boolean;
  instances: GpuInstance[];
  /** Kubernetes device-plugin ids of the whole GPU, lower-case (`gpu-…`, `0000:c5:00.0`). */
  deviceIds: string[];
  /** vGPU mdev UUIDs on the physical GPU (not on one of its MIG instances), lower-case. */
  mdevUuids: string[];
}

/** One (unit, GPU or instance) pair: a `ceems_compute_unit_gpu_index_flag` row and maybe a sm_count row. */
export interface GpuAssignment {
  device: GpuDevice;
  /** Set for MIG instances / AMD partitions; undefined for a full GPU (or a partitioned GPU held whole). */
  instance?: GpuInstance;
  /** Flag value in (0, 1]: the unit's share of this GPU. */
  value: number;
}

export type Manager = 'slurm' | 'libvirt' | 'k8s';
