// GPU vendor detection from PCI sysfs (spec exporter.md §9.1).

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readTrimmed } from '../../common/fsread.js';
import type { GpuVendor } from './types.js';

const VENDOR_IDS: Readonly<Record<string, GpuVendor>> = { '0x10de': 'nvidia', '0x1002': 'amd' };

/**
 * Scans `<sysfs>/bus/pci/devices/*` for display (class 0x03…) or accelerator (0x12…) devices of NVIDIA or
 * AMD. NVIDIA wins when both exist (an AMD display controller next to NVIDIA GPUs is a BMC/onboard chip).
 */
export function detectVendor(sysfs: string): GpuVendor | undefined {
  const dir = join(sysfs, 'bus', 'pci', 'devices');
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return undefined;
  }
  const found = new Set<GpuVendor>();
  for (const e of entries) {
    const cls = readTrimmed(join(dir, e, 'class'));
    if (!cls || !(cls.startsWith('0x03') || cls.startsWith('0x12'))) continue;
    const vendor = VENDOR_IDS[readTrimmed(join(dir, e, 'vendor'))?.toLowerCase() ?? ''];
    if (vendor) found.add(vendor);
  }
  if (found.has('nvidia')) return 'nvidia';
  return found.has('amd') ? 'amd' : undefined;
}

/** `00000000:3B:00.0`, `0000:c5:00.0` → `0000:3b:00.0`; undefined when not a PCI bus id. */
export function normalizeBusId(id: string): string | undefined {
  const m = /^(?:([0-9a-f]+):)?([0-9a-f]{1,2}):([0-9a-f]{1,2})\.([0-7])$/i.exec(id.trim());
  if (!m) return undefined;
  return pciAddress(
    Number.parseInt(m[1] ?? '0', 16),
    Number.parseInt(m[2]!, 16),
    Number.parseInt(m[3]!, 16),
    Number(m[4]),
  );
}

export function pciAddress(domain: number, bus: number, slot: number, fn: number): string {
  const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
  return `${hex(domain, 4)}:${hex(bus, 2)}:${hex(slot, 2)}.${fn}`;
}
