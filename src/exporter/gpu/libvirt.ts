// libvirt VM → GPU mapping (spec exporter.md §9.8): PCI passthrough and vGPU (mdev) host devices of the
// instance XML.

import type { XMLParser } from 'fast-xml-parser';
import { type GpuTarget, targetKey } from './gres.js';
import type { GpuAssignment, GpuDevice } from './types.js';
import { pciAddress } from './vendor.js';
import { xmlParser } from './xml.js';

export interface DomainGpus {
  /** `<domain><uuid>` as written; `""` when absent. */
  uuid: string;
  /** PCI addresses of `<hostdev type='pci'>` sources, `dddd:bb:ss.f`. */
  pciAddresses: string[];
  /** UUIDs of `<hostdev type='mdev'>` sources, lower-case. */
  mdevUuids: string[];
}

let cached: XMLParser | undefined;

/** The domain XML parser (needs loadXmlParser() awaited once). */
function parser(): XMLParser {
  cached ??= new (xmlParser().XMLParser)({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    parseTagValue: false,
    parseAttributeValue: false,
    isArray: (name) => name === 'hostdev',
  });
  return cached;
}

const hexNum = (v: unknown): number => Number.parseInt(String(v ?? '0').replace(/^0x/i, ''), 16);

/** Parses a libvirt domain XML (`/etc/libvirt/qemu/<instance>.xml`); throws on malformed XML. */
export function parseDomainGpus(xml: string): DomainGpus {
  const valid = xmlParser().XMLValidator.validate(xml);
  if (valid !== true) throw new Error(`invalid domain XML: ${valid.err.msg} (line ${valid.err.line})`);
  const domain = parser().parse(xml)?.domain;
  if (typeof domain !== 'object' || domain === null)
    throw new Error('invalid domain XML: no <domain> element');
  const res: DomainGpus = {
    uuid: String(domain.uuid ?? '').trim(),
    pciAddresses: [],
    mdevUuids: [],
  };
  type Hostdev = { '@_type'?: string; source?: { address?: Record<string, string> } };
  for (const h of (domain.devices?.hostdev as Hostdev[] | undefined) ?? []) {
    const addr = h?.source?.address;
    if (!addr) continue;
    if (h['@_type'] === 'pci') {
      const parts = [addr['@_domain'], addr['@_bus'], addr['@_slot'], addr['@_function']].map(hexNum);
      if (parts.every((p) => Number.isFinite(p)))
        res.pciAddresses.push(pciAddress(parts[0]!, parts[1]!, parts[2]!, parts[3]!));
    } else if (h['@_type'] === 'mdev' && addr['@_uuid']) {
      res.mdevUuids.push(String(addr['@_uuid']).toLowerCase());
    }
  }
  return res;
}

/**
 * Flag value = occurrences of the VM among the users of a GPU (instance) ÷ all users of it. PCI addresses
 * select physical GPUs; mdev UUIDs select the MIG instance carrying the vGPU, else the physical GPU.
 */
export function libvirtGpuAssignments(
  devices: readonly GpuDevice[],
  vms: readonly DomainGpus[],
): Map<string, GpuAssignment[]> {
  const byMdev = new Map<string, GpuTarget>();
  for (const device of devices) {
    for (const m of device.mdevUuids) byMdev.set(m, { device });
    for (const instance of device.instances)
      for (const m of instance.mdevUuids) byMdev.set(m, { device, instance });
  }
  const byBus = new Map(devices.map((d) => [d.busId, { device: d } as GpuTarget]));
  const uses = vms.map((vm) =>
    [
      ...vm.pciAddresses.map((a) => byBus.get(a.toLowerCase())),
      ...vm.mdevUuids.map((m) => byMdev.get(m.toLowerCase())),
    ].filter((t) => t !== undefined),
  );
  return shareByOccurrence(
    vms.map((v) => v.uuid),
    uses,
  );
}

/** Per unit: for each target it holds, its occurrences ÷ the occurrences of all units on that target. */
export function shareByOccurrence(
  uuids: readonly string[],
  uses: readonly GpuTarget[][],
): Map<string, GpuAssignment[]> {
  const total = new Map<string, number>();
  for (const list of uses) for (const t of list) total.set(targetKey(t), (total.get(targetKey(t)) ?? 0) + 1);
  const res = new Map<string, GpuAssignment[]>();
  uuids.forEach((uuid, i) => {
    const mine = new Map<string, { t: GpuTarget; n: number }>();
    for (const t of uses[i]!) {
      const k = targetKey(t);
      const e = mine.get(k);
      if (e) e.n++;
      else mine.set(k, { t, n: 1 });
    }
    if (mine.size === 0) return;
    res.set(
      uuid,
      [...mine.entries()].map(([k, { t, n }]) => ({
        device: t.device,
        instance: t.instance,
        value: n / total.get(k)!,
      })),
    );
  });
  return res;
}
