// AMD GPU discovery (spec exporter.md §9.3): amd-smi or rocm-smi JSON for the GPUs and their compute
// partitions, kfd topology sysfs for compute-unit counts and Kubernetes device-plugin ids.

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readFileFast } from '../../common/fsread.js';
import { SmiOutputError } from './nvidia.js';
import type { GpuDevice, GpuInstance } from './types.js';
import { normalizeBusId, pciAddress } from './vendor.js';

/** One GPU (or one partition of a GPU) as listed by amd-smi / rocm-smi. */
export interface AmdSmiEntry {
  /** amd-smi `gpu` id / rocm-smi card order. */
  id: number;
  busId: string;
  serial: string;
  name: string;
  computePartition: string;
  /** Partition id (amd-smi `partition_id`; rocm-smi: position among the entries of the same GPU). */
  partitionId: number;
}

const PARTITION_MODES = new Set(['DPX', 'TPX', 'QPX', 'CPX']);

function parseJson(out: string, tool: string): unknown {
  try {
    return JSON.parse(out);
  } catch (e) {
    throw new SmiOutputError(`invalid ${tool} JSON: ${(e as Error).message}`);
  }
}

const str = (v: unknown): string =>
  typeof v === 'string' ? v.trim() : typeof v === 'number' ? String(v) : '';

/** `amd-smi static -a -B -b -p --json`: a list (or `{gpu_data: [...]}` in newer releases). */
export function parseAmdSmiJson(out: string): AmdSmiEntry[] {
  const doc = parseJson(out, 'amd-smi');
  const list = Array.isArray(doc) ? doc : (doc as { gpu_data?: unknown } | null)?.gpu_data;
  if (!Array.isArray(list)) throw new SmiOutputError('invalid amd-smi JSON: expected a list of GPUs');
  return list.map((g, i) => {
    const o = g as Record<string, Record<string, unknown> | number | undefined>;
    const bus = o.bus as Record<string, unknown> | undefined;
    const board = o.board as Record<string, unknown> | undefined;
    const part = o.partition as Record<string, unknown> | undefined;
    const busId = normalizeBusId(str(bus?.bdf));
    if (typeof o.gpu !== 'number' || !busId)
      throw new SmiOutputError(`invalid amd-smi JSON: entry ${i} lacks a numeric "gpu" or a valid "bus.bdf"`);
    const pid = Number(part?.partition_id);
    return {
      id: o.gpu,
      busId,
      serial: str(board?.product_serial),
      name: str(board?.product_name),
      computePartition: str(part?.compute_partition).toUpperCase(),
      partitionId: Number.isInteger(pid) ? pid : 0,
    };
  });
}

/** `rocm-smi --showproductname --showserial --showbus --showcomputepartition --showmemorypartition --json`. */
export function parseRocmSmiJson(out: string): AmdSmiEntry[] {
  const doc = parseJson(out, 'rocm-smi');
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new SmiOutputError('invalid rocm-smi JSON: expected an object of cards');
  const cards = Object.entries(doc as Record<string, Record<string, unknown>>)
    .filter(([k]) => /^card\d+$/.test(k))
    .sort(([a], [b]) => Number(a.slice(4)) - Number(b.slice(4)));
  const seen = new Map<string, number>();
  return cards.map(([k, c], i) => {
    const busId = normalizeBusId(str(c['PCI Bus']));
    if (!busId) throw new SmiOutputError(`invalid rocm-smi JSON: ${k} lacks a valid "PCI Bus"`);
    const serial = str(c['Serial Number']);
    const key = serial || busId;
    const partitionId = seen.get(key) ?? 0;
    seen.set(key, partitionId + 1);
    return {
      id: i,
      busId,
      serial,
      name: str(c['Card Series']) || str(c['Card series']),
      computePartition: str(c['Compute Partition']).toUpperCase(),
      partitionId,
    };
  });
}

/** A GPU compute node of the kfd topology. */
export interface KfdNode {
  node: number;
  /** PCI address of the physical GPU the node belongs to. */
  busId: string;
  computeUnits: number;
  /** Kubernetes device-plugin id: the PCI address, or `amdgpu_xcp.<n>` for a secondary partition. */
  deviceId: string;
}

function properties(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) m.set(k, Number(v));
  }
  return m;
}

/**
 * Reads `<sysfs>/class/kfd/kfd/topology/nodes/*\/properties` (GPU nodes only, node order). The render
 * minor of a node is looked up under the amdgpu PCI driver (physical GPU / first partition) and under
 * `devices/platform/amdgpu_xcp.*` (further partitions). Missing files → empty list.
 */
export function readKfdTopology(sysfs: string): KfdNode[] {
  const base = join(sysfs, 'class', 'kfd', 'kfd', 'topology', 'nodes');
  let names: string[];
  try {
    names = readdirSync(base).filter((n) => /^\d+$/.test(n));
  } catch {
    return [];
  }
  const platform = join(sysfs, 'devices', 'platform');
  let xcps: string[] = [];
  try {
    xcps = readdirSync(platform).filter((n) => n.startsWith('amdgpu_xcp'));
  } catch {
    // no partitions
  }
  const nodes: KfdNode[] = [];
  for (const n of names.map(Number).sort((a, b) => a - b)) {
    let p: Map<string, number>;
    try {
      p = properties(readFileFast(join(base, String(n), 'properties')));
    } catch {
      continue;
    }
    const simd = p.get('simd_count') ?? 0;
    const perCu = p.get('simd_per_cu') ?? 0;
    if (simd <= 0) continue; // CPU node
    const loc = p.get('location_id') ?? 0;
    const busId = pciAddress(p.get('domain') ?? 0, loc >> 8, (loc >> 3) & 0x1f, loc & 7);
    const render = `renderD${p.get('drm_render_minor')}`;
    let deviceId = busId;
    if (!existsSync(join(sysfs, 'module', 'amdgpu', 'drivers', 'pci:amdgpu', busId, 'drm', render))) {
      const xcp = xcps.find((x) => existsSync(join(platform, x, 'drm', render)));
      if (xcp) deviceId = xcp;
    }
    nodes.push({ node: n, busId, computeUnits: perCu > 0 ? Math.floor(simd / perCu) : 0, deviceId });
  }
  return nodes;
}

/**
 * Groups the partitions of SMI entries into physical GPUs (by board serial, else PCI address). A GPU in DPX/TPX/QPX/CPX mode
 * gets index `""` and one instance per partition (index = the partition's SMI id, `gpuiid` = partition id);
 * CUs and device-plugin ids come from the kfd nodes of the GPU, in node order.
 */
export function buildAmdDevices(entries: readonly AmdSmiEntry[], kfd: readonly KfdNode[]): GpuDevice[] {
  const groups = new Map<string, AmdSmiEntry[]>();
  for (const e of entries) {
    // both GCDs of an MI250X share one board serial: only partitions are grouped
    const key = PARTITION_MODES.has(e.computePartition) ? `p/${e.serial || e.busId}` : `g/${e.id}/${e.busId}`;
    const g = groups.get(key);
    if (g) g.push(e);
    else groups.set(key, [e]);
  }
  const devices: GpuDevice[] = [];
  for (const group of groups.values()) {
    group.sort((a, b) => a.partitionId - b.partitionId);
    const first = group[0]!;
    const nodes = kfd.filter((k) => k.busId === first.busId);
    const partitioned = PARTITION_MODES.has(first.computePartition);
    const instances: GpuInstance[] = partitioned
      ? group.map((e, i) => ({
          index: String(e.id),
          gpuInstanceId: e.partitionId,
          computeInstanceId: 0,
          migIndex: i,
          uuid: '',
          smCount: nodes[i]?.computeUnits ?? 0,
          deviceIds: nodes[i] ? [nodes[i].deviceId.toLowerCase()] : [],
          mdevUuids: [],
        }))
      : [];
    devices.push({
      vendor: 'amd',
      minor: first.id,
      index: partitioned ? '' : String(first.id),
      name: first.name,
      uuid: first.serial,
      busId: first.busId,
      smCount: nodes.reduce((s, n) => s + n.computeUnits, 0),
      partitioned,
      vgpuEnabled: false,
      instances,
      deviceIds: [first.busId],
      mdevUuids: [],
    });
  }
  return devices;
}
