// The node's GPU list: runs the vendor SMI commands, keeps the last good result and refreshes it in the
// background, so a scrape never waits for (or crashes on) a hanging or failing SMI tool.

import type { Logger } from '../../common/logger.js';
import type { CollectorContext } from '../collector.js';
import { buildAmdDevices, parseAmdSmiJson, parseRocmSmiJson, readKfdTopology } from './amd.js';
import { CommandError, type CommandRunner, lookPath, runCommand } from './command.js';
import type { GpuType } from './flags.js';
import {
  applyMigUuids,
  applyVgpus,
  parseNvidiaSmiList,
  parseNvidiaSmiXml,
  parseVgpuQuery,
} from './nvidia.js';
import { applyGpuOrderMap, type GpuOrderEntry, parseGpuOrderMap } from './ordermap.js';
import type { GpuDevice, GpuVendor, Manager } from './types.js';
import { detectVendor } from './vendor.js';
import { loadXmlParser } from './xml.js';

export const SMI_TIMEOUT_MS = 60_000;
export const REFRESH_MS = 15 * 60_000;
export const RETRY_MS = 60_000;

export interface GpuInventoryOptions {
  vendor: GpuVendor;
  sysfs: string;
  logger: Logger;
  /** Binary paths from the hidden flags; `""`/undefined = search $PATH. */
  nvidiaSmiPath?: string;
  amdSmiPath?: string;
  rocmSmiPath?: string;
  /** SLURM order map applied after every discovery. */
  orderMap?: readonly GpuOrderEntry[];
  /** Query vGPU mdev UUIDs (libvirt only). */
  vgpu?: boolean;
  timeoutMs?: number;
  /** Age after which `devices()` starts a background re-discovery. */
  refreshMs?: number;
  /** Delay before retrying after a failed discovery. */
  retryMs?: number;
  run?: CommandRunner;
  /** Runs a tool that is not installed on the host elsewhere (k8s: in the GPU operator pod, §9.4). */
  remoteRunner?: CommandRunner;
  now?: () => number;
}

/** nvidia-smi: its path (or bare name for the remote runner) and how to run it. */
interface Tool {
  file: string;
  run: CommandRunner;
}

export class GpuInventory {
  readonly vendor: GpuVendor;
  private list: GpuDevice[] = [];
  private lastOk = Number.NEGATIVE_INFINITY;
  private lastAttempt = Number.NEGATIVE_INFINITY;
  private running: Promise<boolean> | undefined;
  private readonly run: CommandRunner;
  private readonly now: () => number;

  constructor(private readonly opts: GpuInventoryOptions) {
    this.vendor = opts.vendor;
    this.run = opts.run ?? runCommand;
    this.now = opts.now ?? Date.now;
  }

  /** Last good device list; starts a background refresh when it is stale or the last attempt failed. */
  devices(): readonly GpuDevice[] {
    const t = this.now();
    const stale = t - this.lastOk >= (this.opts.refreshMs ?? REFRESH_MS);
    const retry = this.lastAttempt > this.lastOk && t - this.lastAttempt >= (this.opts.retryMs ?? RETRY_MS);
    if (!this.running && (retry || (stale && this.lastAttempt <= this.lastOk))) void this.refresh();
    return this.list;
  }

  /** Time of the last successful discovery (ms since epoch), -Infinity before the first. */
  get lastSuccess(): number {
    return this.lastOk;
  }

  /** Re-discovers now (shares a running discovery); false when it failed and the old list was kept. */
  refresh(): Promise<boolean> {
    this.running ??= this.discoverAndStore().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async discoverAndStore(): Promise<boolean> {
    this.lastAttempt = this.now();
    try {
      if (this.vendor === 'nvidia') await loadXmlParser();
      const list = await this.discover();
      if (this.opts.orderMap?.length) {
        const unmatched = applyGpuOrderMap(list, this.opts.orderMap);
        for (const e of unmatched)
          this.opts.logger.warn(
            { minor: e.minor, gpu_instance_id: e.gpuInstanceId, slurm_index: e.slurmIndex },
            'GPU order map entry matches no GPU',
          );
      }
      this.list = list;
      this.lastOk = this.now();
      this.opts.logger.debug({ vendor: this.vendor, gpus: list.length }, 'GPU devices discovered');
      return true;
    } catch (e) {
      this.opts.logger.error(
        { vendor: this.vendor, err: (e as Error).message, cached_gpus: this.list.length },
        'GPU discovery failed; keeping the last known GPU list',
      );
      return false;
    }
  }

  /** The flag path, else $PATH, else the remote runner with the bare name; undefined when none. */
  private nvidiaSmi(): Tool | undefined {
    const local = this.opts.nvidiaSmiPath || lookPath('nvidia-smi');
    if (local) return { file: local, run: this.run };
    return this.opts.remoteRunner ? { file: 'nvidia-smi', run: this.opts.remoteRunner } : undefined;
  }

  private async discover(): Promise<GpuDevice[]> {
    const timeout = this.opts.timeoutMs ?? SMI_TIMEOUT_MS;
    if (this.vendor === 'nvidia') {
      const smi = this.nvidiaSmi();
      if (!smi) throw new CommandError('nvidia-smi not found in $PATH (set --collector.gpu.nvidia-smi-path)');
      const devices = parseNvidiaSmiXml(await smi.run(smi.file, ['--query', '--xml-format'], timeout));
      if (devices.some((d) => d.partitioned))
        applyMigUuids(devices, parseNvidiaSmiList(await smi.run(smi.file, ['-L'], timeout)));
      if (this.opts.vgpu && devices.some((d) => d.vgpuEnabled))
        applyVgpus(devices, parseVgpuQuery(await smi.run(smi.file, ['vgpu', '--query'], timeout)));
      return devices;
    }
    const kfd = readKfdTopology(this.opts.sysfs);
    const amdArgs = ['static', '-a', '-B', '-b', '-p', '--json'];
    // preference: amd-smi on the host, rocm-smi on the host, amd-smi through the remote runner
    const localAmd = this.opts.amdSmiPath || lookPath('amd-smi');
    if (localAmd) return buildAmdDevices(parseAmdSmiJson(await this.run(localAmd, amdArgs, timeout)), kfd);
    const localRocm = this.opts.rocmSmiPath || lookPath('rocm-smi');
    if (!localRocm) {
      const remote = this.opts.remoteRunner;
      if (remote) return buildAmdDevices(parseAmdSmiJson(await remote('amd-smi', amdArgs, timeout)), kfd);
      throw new CommandError(
        'neither amd-smi nor rocm-smi found in $PATH (set --collector.gpu.amd-smi-path or --collector.gpu.rocm-smi-path)',
      );
    }
    const args = [
      '--showproductname',
      '--showserial',
      '--showbus',
      '--showcomputepartition',
      '--showmemorypartition',
      '--json',
    ];
    return buildAmdDevices(parseRocmSmiJson(await this.run(localRocm, args, timeout)), kfd);
  }
}

/**
 * Builds the inventory of a compute-unit collector from its flags: `undefined` when GPU handling is off
 * (`--collector.gpu.type=nogpu`) or no NVIDIA/AMD device exists; otherwise runs the first discovery
 * (failures are logged and retried later, never thrown). Throws only for an invalid slurm order map.
 */
export async function createGpuInventory(
  ctx: CollectorContext,
  manager: Manager,
  overrides: Partial<
    Pick<GpuInventoryOptions, 'run' | 'timeoutMs' | 'refreshMs' | 'retryMs' | 'now'> & {
      /** k8s: runner for tools missing on the host, per vendor (see `podExecRunner` in ../k8s). */
      remote: (vendor: GpuVendor) => CommandRunner;
    }
  > = {},
): Promise<GpuInventory | undefined> {
  const f = ctx.flags;
  const type = f.string('collector.gpu.type') as GpuType | '';
  if (type === 'nogpu') return undefined;
  const vendor = type || detectVendor(ctx.sysfs);
  if (!vendor) {
    ctx.logger.debug({ manager }, 'no NVIDIA or AMD GPU found on this node');
    return undefined;
  }
  const { remote, ...rest } = overrides;
  const inv = new GpuInventory({
    vendor,
    sysfs: ctx.sysfs,
    logger: ctx.logger,
    nvidiaSmiPath: f.string('collector.gpu.nvidia-smi-path'),
    amdSmiPath: f.string('collector.gpu.amd-smi-path'),
    rocmSmiPath: f.string('collector.gpu.rocm-smi-path'),
    orderMap: manager === 'slurm' ? parseGpuOrderMap(f.string('collector.slurm.gpu-order-map')) : undefined,
    vgpu: manager === 'libvirt',
    remoteRunner: remote?.(vendor),
    ...rest,
  });
  await inv.refresh();
  return inv;
}
