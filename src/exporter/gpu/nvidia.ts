// NVIDIA GPU discovery from nvidia-smi output (spec exporter.md §9.2): the XML query, `-L` for MIG
// UUIDs and `vgpu --query` for vGPU mdev UUIDs.

import type { XMLParser } from 'fast-xml-parser';
import type { GpuDevice, GpuInstance } from './types.js';
import { normalizeBusId } from './vendor.js';
import { xmlParser } from './xml.js';

/** SMs per model token (§9.2); tokens come from `product_name` split on spaces and `-`. */
export const NVIDIA_SM_COUNTS: Readonly<Record<string, number>> = {
  V100: 80,
  A10: 72,
  A16: 10,
  A100: 108,
  A2: 10,
  A30: 56,
  A40: 84,
  A800: 108,
  H100: 132,
  H200: 132,
  H800: 114,
  B100: 132,
  B200: 132,
};

export function smCountForModel(productName: string): number {
  for (const token of productName.split(/[ -]/)) {
    const n = NVIDIA_SM_COUNTS[token.toUpperCase()];
    if (n !== undefined) return n;
  }
  return 0;
}

export class SmiOutputError extends Error {
  override name = 'SmiOutputError';
}

let parser: XMLParser | undefined;

/** The nvidia-smi XML parser (needs loadXmlParser() awaited once). */
function xml(): XMLParser {
  parser ??= new (xmlParser().XMLParser)({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    parseTagValue: false,
    trimValues: true,
    isArray: (name) => name === 'gpu' || name === 'mig_device',
  });
  return parser;
}

type Node = Record<string, unknown>;
const text = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');
const child = (v: unknown, key: string): unknown =>
  typeof v === 'object' && v !== null ? (v as Node)[key] : undefined;

/**
 * Parses `nvidia-smi --query --xml-format`. Minor = position in the XML; Index is one counter in XML
 * order: a full GPU takes the next index, a MIG-enabled GPU gets `""` and its MIG devices take the next ones.
 */
export function parseNvidiaSmiXml(doc: string): GpuDevice[] {
  const valid = xmlParser().XMLValidator.validate(doc);
  if (valid !== true)
    throw new SmiOutputError(
      `invalid nvidia-smi XML: ${valid.err.msg.replace(/\s+/g, ' ')} (line ${valid.err.line})`,
    );
  const root = child(xml().parse(doc), 'nvidia_smi_log');
  if (root === undefined) throw new SmiOutputError('invalid nvidia-smi XML: no <nvidia_smi_log> element');
  const gpus = (child(root, 'gpu') as unknown[] | undefined) ?? [];
  const devices: GpuDevice[] = [];
  let next = 0;
  gpus.forEach((g, minor) => {
    const idAttr = text(child(g, '@_id'));
    const busId = normalizeBusId(idAttr) ?? normalizeBusId(text(child(child(g, 'pci'), 'pci_bus_id')));
    if (!busId) throw new SmiOutputError(`invalid nvidia-smi XML: GPU ${minor} has no valid PCI bus id`);
    const uuid = text(child(g, 'uuid'));
    const name = text(child(g, 'product_name'));
    const partitioned = text(child(child(g, 'mig_mode'), 'current_mig')).toLowerCase() === 'enabled';
    const vgpuEnabled =
      text(child(child(g, 'gpu_virtualization_mode'), 'virtualization_mode')).toUpperCase() === 'VGPU';
    const instances: GpuInstance[] = [];
    if (partitioned) {
      const migs = (child(child(g, 'mig_devices'), 'mig_device') as unknown[] | undefined) ?? [];
      for (const m of migs) {
        const sm = Number.parseInt(
          text(child(child(child(m, 'device_attributes'), 'shared'), 'multiprocessor_count')),
          10,
        );
        instances.push({
          index: String(next++),
          gpuInstanceId: intOr(text(child(m, 'gpu_instance_id')), 0),
          computeInstanceId: intOr(text(child(m, 'compute_instance_id')), 0),
          migIndex: intOr(text(child(m, 'index')), instances.length),
          uuid: '',
          smCount: Number.isFinite(sm) && sm > 0 ? sm : 1,
          deviceIds: [],
          mdevUuids: [],
        });
      }
    }
    devices.push({
      vendor: 'nvidia',
      minor,
      index: partitioned ? '' : String(next++),
      name,
      uuid,
      busId,
      smCount: smCountForModel(name),
      partitioned,
      vgpuEnabled,
      instances,
      deviceIds: uuid ? [uuid.toLowerCase()] : [],
      mdevUuids: [],
    });
  });
  return devices;
}

function intOr(s: string, dflt: number): number {
  return /^\d+$/.test(s) ? Number(s) : dflt;
}

/** `nvidia-smi -L` → GPU UUID → (MIG device index → `MIG-…` UUID). */
export function parseNvidiaSmiList(out: string): Map<string, Map<number, string>> {
  const res = new Map<string, Map<number, string>>();
  let current: Map<number, string> | undefined;
  for (const line of out.split('\n')) {
    const gpu = /^GPU \d+: .*\(UUID: (GPU-[^)\s]+)\)/.exec(line);
    if (gpu) {
      current = new Map();
      res.set(gpu[1]!, current);
      continue;
    }
    const mig = /^\s+MIG .*Device\s+(\d+): \(UUID: (MIG-[^)\s]+)\)/.exec(line);
    if (mig && current) current.set(Number(mig[1]), mig[2]!);
  }
  return res;
}

/** Adds MIG UUIDs (and their device-plugin ids) from `nvidia-smi -L` output to the instances. */
export function applyMigUuids(devices: readonly GpuDevice[], list: Map<string, Map<number, string>>): void {
  for (const d of devices) {
    const migs = list.get(d.uuid);
    if (!migs) continue;
    for (const inst of d.instances) {
      const u = migs.get(inst.migIndex);
      if (u) {
        inst.uuid = u;
        inst.deviceIds = [u.toLowerCase()];
      }
    }
  }
}

export interface VgpuEntry {
  busId: string;
  mdevUuid: string;
  /** MIG GPU instance id, undefined for `N/A`. */
  gpuInstanceId?: number;
}

/** `nvidia-smi vgpu --query`: blocks `GPU <bus id>` holding `MDEV UUID : …` and `GPU Instance ID : n|N/A`. */
export function parseVgpuQuery(out: string): VgpuEntry[] {
  const res: VgpuEntry[] = [];
  let busId: string | undefined;
  let entry: Partial<VgpuEntry> | undefined;
  const flush = () => {
    if (busId && entry?.mdevUuid) res.push({ ...entry, busId, mdevUuid: entry.mdevUuid });
    entry = undefined;
  };
  for (const line of out.split('\n')) {
    const gpu = /^GPU\s+([0-9A-Fa-f:.]+)\s*$/.exec(line);
    if (gpu) {
      flush();
      busId = normalizeBusId(gpu[1]!);
      continue;
    }
    const kv = /^\s+([^:]+?)\s*:\s*(.*?)\s*$/.exec(line);
    if (!kv || !busId) continue;
    const [, key, value] = kv;
    if (key === 'vGPU ID') {
      flush();
      entry = {};
    } else if (key === 'MDEV UUID' && entry) {
      entry.mdevUuid = value!.toLowerCase();
    } else if (key === 'GPU Instance ID' && entry && /^\d+$/.test(value!)) {
      entry.gpuInstanceId = Number(value);
    }
  }
  flush();
  return res;
}

/** Attaches mdev UUIDs to the MIG instance with the matching GPU instance id, else to the physical GPU. */
export function applyVgpus(devices: readonly GpuDevice[], vgpus: readonly VgpuEntry[]): void {
  for (const v of vgpus) {
    const d = devices.find((x) => x.busId === v.busId);
    if (!d) continue;
    const inst =
      v.gpuInstanceId === undefined
        ? undefined
        : d.instances.find((i) => i.gpuInstanceId === v.gpuInstanceId);
    (inst ?? d).mdevUuids.push(v.mdevUuid);
  }
}
