// The ebpf sub-collector of the slurm, libvirt and k8s collectors (spec exporter.md §10.2): per-unit file IO
// (read/write bytes, requests and errors per mount point), file operations (open, create, unlink) and
// network traffic (TCP/UDP over IPv4/IPv6) counted by BPF programs on the kernel's tracepoints
// (bpf/ceems.bpf.c), read from their maps on every scrape.

import { statSync } from 'node:fs';
import { join } from 'node:path';
import { readFileFast } from '../../common/fsread.js';
import type { UnitSubCollector } from '../cgroup/collector.js';
import { layoutOptions, v1Hierarchy } from '../cgroup/layout.js';
import type { CgroupUnit } from '../cgroup/walk.js';
import type { CollectorContext, Emitter } from '../collector.js';
import { ebpfGroups } from './flags.js';
import { deleteEntry, lookupAll, type MapInfo } from './libbpf.js';
import { LoadedPrograms, type MapName, type MetricGroup } from './loader.js';
import { MountPoints } from './mounts.js';
import { type Entry, UnitTally } from './tally.js';

/** The index of a v1 subsystem in /proc/cgroups (its ssid, what task->cgroups->subsys[] is indexed by). */
export function subsystemIndex(procCgroups: string, subsystem: string): number {
  const names = procCgroups
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((l) => l.split(/\s+/)[0]);
  const i = names.indexOf(subsystem);
  if (i < 0) throw new Error(`cgroup subsystem '${subsystem}' is not in /proc/cgroups`);
  return i;
}

interface Family {
  readonly name: string;
  readonly help: string;
}
const family = (name: string, help: string): Family => ({ name: `ceems_ebpf_${name}`, help });

/** Each map, the families of its six counters (in the value's field order) and its series labels. */
interface MapView {
  readonly group: MetricGroup;
  readonly map: MapName;
  readonly families: readonly Family[];
  /** Series of a key (its bytes after the cgroup id); undefined: not exported. */
  series(key: Buffer, unit: CgroupUnit | undefined): string | undefined;
  labels(series: string, common: { hostname: string; manager: string; uuid: string }): Record<string, string>;
}

interface UnitIds {
  readonly id: bigint;
  readonly children: ReadonlyMap<string, bigint>;
}

const PROTOCOLS: Record<number, string> = { 6: 'tcp', 17: 'udp' };
const FAMILIES: Record<number, string> = { 2: 'ipv4', 10: 'ipv6' };

export interface EbpfOptions {
  readonly manager: string;
  readonly hostname: string;
  readonly procfs: string;
  /** Directory the units' `rel` paths are relative to (the layout's base). */
  readonly cgroupBase: string;
  readonly programs: LoadedPrograms;
  /** --collector.ebpf.fs-mount-point substrings; empty: every mount point. */
  readonly mountFilter: readonly string[];
}

export class EbpfCollector implements UnitSubCollector {
  private readonly mounts: MountPoints;
  private readonly views: readonly MapView[];
  private readonly tallies = new Map<MapName, UnitTally>();
  private readonly buffers = new Map<MapName, { keys: Buffer; values: Buffer }>();
  /** Per unit directory (`rel`) of the last scrape: the cgroup ids (inode numbers) of it and its children. */
  private ids = new Map<string, UnitIds>();

  constructor(private readonly o: EbpfOptions) {
    this.mounts = new MountPoints(o.procfs);
    const mountView: MapView = {
      group: 'io',
      map: 'io_stats',
      families: [
        family('read_bytes_total', 'Total number of bytes read from a cgroup in bytes'),
        family('read_requests_total', 'Total number of read requests from a cgroup'),
        family('read_errors_total', 'Total number of read errors from a cgroup'),
        family('write_bytes_total', 'Total number of bytes written from a cgroup in bytes'),
        family('write_requests_total', 'Total number of write requests from a cgroup'),
        family('write_errors_total', 'Total number of write errors from a cgroup'),
      ],
      series: (key, unit) => {
        const path = this.mounts.path(key.readUInt32LE(8), unit?.pids ?? []);
        return path !== undefined && this.mountWanted(path) ? path : undefined;
      },
      labels: (mountpoint, c) => ({ hostname: c.hostname, manager: c.manager, mountpoint, uuid: c.uuid }),
    };
    const fileView: MapView = {
      group: 'file',
      map: 'file_stats',
      families: [
        family('open_requests_total', 'Total number of open requests from a cgroup'),
        family('open_errors_total', 'Total number of open errors from a cgroup'),
        family('create_requests_total', 'Total number of create requests from a cgroup'),
        // sic: the original's name for create errors (spec §10.2)
        family('open_create_total', 'Total number of create errors from a cgroup'),
        family('unlink_requests_total', 'Total number of unlink requests from a cgroup'),
        family('unlink_errors_total', 'Total number of unlink errors from a cgroup'),
      ],
      series: () => '',
      labels: (_, c) => c,
    };
    const netView: MapView = {
      group: 'network',
      map: 'net_stats',
      families: [
        family('ingress_packets_total', 'Total number of ingress packets from a cgroup'),
        family('ingress_bytes_total', 'Total number of ingress bytes from a cgroup'),
        family('egress_packets_total', 'Total number of egress packets from a cgroup'),
        family('egress_bytes_total', 'Total number of egress bytes from a cgroup'),
        family('retrans_packets_total', 'Total number of retransmission packets from a cgroup'),
        family('retrans_bytes_total', 'Total number of retransmission bytes from a cgroup'),
      ],
      series: (key) => {
        const proto = PROTOCOLS[key.readUInt16LE(8)];
        const fam = FAMILIES[key.readUInt16LE(10)];
        return proto && fam ? `${proto}/${fam}` : undefined;
      },
      labels: (series, c) => {
        const [proto = '', fam = ''] = series.split('/');
        return { family: fam, hostname: c.hostname, manager: c.manager, proto, uuid: c.uuid };
      },
    };
    this.views = [mountView, fileView, netView].filter((v) => o.programs.groups.has(v.group));
    for (const v of this.views) {
      const info = o.programs.maps[v.map];
      this.tallies.set(v.map, new UnitTally());
      this.buffers.set(v.map, {
        keys: Buffer.alloc(info.keySize * info.maxEntries),
        values: Buffer.alloc(info.valueSize * info.maxEntries),
      });
    }
  }

  private mountWanted(path: string): boolean {
    return this.o.mountFilter.length === 0 || this.o.mountFilter.some((s) => path.includes(s));
  }

  /**
   * Cgroup id → unit for the directories of `units`. A unit directory is stat'ed on every scrape (a job
   * requeued under the same id gets a new directory at the same path); its children's ids are kept while
   * the unit directory stays the same one.
   */
  private owners(units: readonly CgroupUnit[]): {
    owners: Map<bigint, string>;
    byUuid: Map<string, CgroupUnit>;
  } {
    const owners = new Map<bigint, string>();
    const byUuid = new Map<string, CgroupUnit>();
    const known = new Map<string, UnitIds>();
    const id = (rel: string) =>
      statSync(join(this.o.cgroupBase, rel), { bigint: true, throwIfNoEntry: false })?.ino;
    for (const u of units) {
      const unitId = id(u.rel);
      if (unitId === undefined) continue; // removed since the walk
      byUuid.set(u.uuid, u);
      owners.set(unitId, u.uuid);
      const last = this.ids.get(u.rel);
      const kept = last?.id === unitId ? last.children : new Map<string, bigint>();
      const children = new Map<string, bigint>();
      for (const rel of u.children) {
        const childId = kept.get(rel) ?? id(rel);
        if (childId === undefined) continue;
        children.set(rel, childId);
        owners.set(childId, u.uuid);
      }
      known.set(u.rel, { id: unitId, children });
    }
    this.ids = known;
    return { owners, byUuid };
  }

  async update(out: Emitter, units: readonly CgroupUnit[]): Promise<void> {
    this.mounts.refresh();
    const { owners, byUuid } = this.owners(units);
    for (const v of this.views) {
      const info = this.o.programs.maps[v.map];
      const entries = this.entries(v, info, (cgroup) => byUuid.get(owners.get(cgroup) ?? ''));
      const totals = this.tallies.get(v.map)!.update(entries, owners, (key) => deleteEntry(info.fd, key));
      for (const [uuid, bySeries] of totals)
        for (const [series, values] of bySeries) {
          const labels = v.labels(series, { hostname: this.o.hostname, manager: this.o.manager, uuid });
          v.families.forEach((f, i) => {
            out.emit(f.name, 'counter', f.help, labels, values[i] ?? 0);
          });
        }
    }
  }

  /** The map's entries, decoded: u64 cgroup id first in every key, six u64 counters in every value. */
  private entries(v: MapView, info: MapInfo, unitOf: (cgroup: bigint) => CgroupUnit | undefined): Entry[] {
    const { keys, values } = this.buffers.get(v.map)!;
    const n = lookupAll(info, keys, values);
    const out: Entry[] = [];
    for (let i = 0; i < n; i++) {
      // a view: the buffers are refilled only by the next scrape, after this one's deletions
      const key = keys.subarray(i * info.keySize, (i + 1) * info.keySize);
      const cgroup = key.readBigUInt64LE(0);
      const at = i * info.valueSize;
      const counters: number[] = [];
      // two 32-bit halves: no BigInt per counter (exact up to 2^53, years of bytes at full line rate)
      for (let f = at; f < at + 48; f += 8)
        counters.push(values.readUInt32LE(f) + values.readUInt32LE(f + 4) * 2 ** 32);
      out.push({ cgroup, series: v.series(key, unitOf(cgroup)), values: counters, key });
    }
    return out;
  }

  stop(): void {
    this.o.programs.close();
  }
}

// reasons already logged, so that slurm, libvirt and k8s together report each once
const REPORTED = new Set<string>();

function reportOnce(reason: string, report: () => void): void {
  if (REPORTED.has(reason)) return;
  REPORTED.add(reason);
  report();
}

/** Stands in when the programs cannot load: the unit collectors go on, the reason was logged at start-up. */
const NOTHING: UnitSubCollector = { update: async () => {} };

/**
 * The ebpf sub-collector, once `--collector.ebpf.io-metrics` or `--collector.ebpf.network-metrics` is given.
 * Programs that cannot load (no cap_bpf, no BTF, an old kernel) leave the unit collectors working: the
 * reason is logged once and the sub-collector exports nothing.
 */
export function createEbpfSubCollector(ctx: CollectorContext, manager: string): UnitSubCollector {
  const log = ctx.logger.child({ subcollector: 'ebpf' });
  const groups = ebpfGroups(ctx.flags);
  const { version, activeSubsystem: active } = layoutOptions(ctx.cgroupfs, ctx.flags);
  let programs: LoadedPrograms;
  try {
    const v1Subsystem =
      version === 'v2' ? -1 : subsystemIndex(readFileFast(join(ctx.procfs, 'cgroups')), active);
    programs = LoadedPrograms.load({ groups, v1Subsystem });
  } catch (e) {
    const err = (e as Error).message;
    reportOnce(err, () =>
      log.error({ err }, 'cannot load the ebpf programs; IO and network metrics are not collected'),
    );
    return NOTHING;
  }
  const missing = programs.missing.map((m) => `${m.event} (${m.group})`).join(',');
  if (missing)
    reportOnce(missing, () =>
      log.warn({ events: missing }, 'tracepoints missing on this kernel; their metrics are not collected'),
    );
  log.info({ events: programs.attached.length, cgroup: version }, 'ebpf programs attached to tracepoints');
  return new EbpfCollector({
    manager,
    hostname: ctx.hostname,
    procfs: ctx.procfs,
    cgroupBase: version === 'v2' ? ctx.cgroupfs : v1Hierarchy(ctx.cgroupfs, active),
    programs,
    mountFilter: ctx.flags.strings('collector.ebpf.fs-mount-point'),
  });
}
