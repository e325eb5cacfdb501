/**
 * GPU discovery and GPU→unit mapping (spec exporter.md §9), used by the slurm, libvirt and k8s collectors.
 *
 * How a collector uses this module:
 *
 * 1. Flags. `GPU_FLAGS` (`--collector.gpu.*`) are shared: list them in exactly ONE CollectorDefinition
 *    (the slurm one), because parseFlags rejects a flag declared twice. The slurm definition also lists
 *    `SLURM_GPU_FLAGS` (`--collector.slurm.gres-config-file`, `--collector.slurm.gpu-order-map`).
 *    The k8s flags (kubeconfig, pod-resources socket) are `K8S_FLAGS` in `../k8s/index.ts`.
 *
 * 2. At create time:
 *      const gpus = await createGpuInventory(ctx, 'slurm' | 'libvirt' | 'k8s');
 *    → `undefined` when `--collector.gpu.type=nogpu` or no NVIDIA/AMD PCI device is found under
 *    `<ctx.sysfs>/bus/pci/devices`; else a `GpuInventory` whose first discovery already ran (a failing
 *    SMI command is logged, never thrown: the list is then empty and retried later).
 *    `gpus.devices()` returns the last good device list (never blocks; re-runs the SMI commands in the
 *    background every 15 min or 1 min after a failure). For slurm the order map is applied.
 *    k8s only: pass `{ remote: (vendor) => podExecRunner(lister, vendor, NODE_NAME) }` so that a tool missing
 *    on the host runs in the GPU operator pod (§9.4).
 *
 * 3. Per scrape, build `GpuAssignment[]` per unit with the manager's mapper, then emit:
 *      emitGpuRows(out, manager, ctx.hostname, { uuid, cgrouphostname }, assignments)
 *    which writes `ceems_compute_unit_gpu_index_flag` (+ `…_gpu_sm_count` when > 0) with the §9.10 labels.
 *
 *    slurm:   const m = new SlurmGpuMapper(gpus, { procfs: ctx.procfs, hostname: ctx.hostname, logger: ctx.logger,
 *               gresConfigFile: ctx.flags.string('collector.slurm.gres-config-file') });  // throws GresConfError
 *             const byJob = m.update(jobs);                        // jobs: {uuid, pids}[] in walk order
 *             byJob.get(jobUuid) ?? []                             // → GpuAssignment[]
 *    libvirt: const vm = parseDomainGpus(domainXml);              // {uuid, pciAddresses, mdevUuids}; throws on bad XML
 *             const byVm = libvirtGpuAssignments(gpus.devices(), vms);  // vms: DomainGpus[] of running VMs
 *             (recompute when the instance set changes or every 15 min, §6)
 *    k8s:     see `PodGpuMapper` in `../k8s/index.ts` (`await mapper.update(podUids, signal)`).
 */

export {
  type AmdSmiEntry,
  buildAmdDevices,
  type KfdNode,
  parseAmdSmiJson,
  parseRocmSmiJson,
  readKfdTopology,
} from './amd.js';
export { CommandError, type CommandRunner, lookPath, runCommand } from './command.js';
export { emitGpuRows, GPU_INDEX_FLAG, GPU_INDEX_FLAG_HELP, GPU_SM_COUNT, type GpuUnit } from './emit.js';
export { GPU_FLAGS, GPU_TYPES, type GpuType, SLURM_GPU_FLAGS } from './flags.js';
export {
  allocateShares,
  expandHostlist,
  type GpuTarget,
  GresConfError,
  parseGresConf,
  parseMigMinors,
  shareTotals,
} from './gres.js';
export { createGpuInventory, GpuInventory, type GpuInventoryOptions, SMI_TIMEOUT_MS } from './inventory.js';
export { k8sGpuAssignments, normalizeDeviceId, type PodDevices, targetForDeviceId } from './k8s.js';
export { type DomainGpus, libvirtGpuAssignments, parseDomainGpus } from './libvirt.js';
export {
  parseNvidiaSmiList,
  parseNvidiaSmiXml,
  parseVgpuQuery,
  SmiOutputError,
  smCountForModel,
} from './nvidia.js';
export { applyGpuOrderMap, GpuOrderMapError, parseGpuOrderMap } from './ordermap.js';
export { readJobGpuEnv, SlurmGpuMapper, type SlurmJob } from './slurm.js';
export type { GpuAssignment, GpuDevice, GpuInstance, GpuVendor, Manager } from './types.js';
export { detectVendor, normalizeBusId } from './vendor.js';
export { loadXmlParser } from './xml.js';
