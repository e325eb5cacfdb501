// cgroup version detection and the per-resource-manager layouts of the cgroup tree
// (spec exporter.md §7.1, §7.2, §7.4).

import { existsSync, readdirSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import type { ParsedFlags } from '../../common/flags.js';
import { SlurmJobIdResolver } from './sluid.js';
import type { CgroupUnit } from './walk.js';

export type CgroupVersion = 'v1' | 'v2';
export type Manager = 'slurm' | 'libvirt' | 'k8s';

const CGROUP2_SUPER_MAGIC = 0x63677270;

/** `--collector.cgroups.force-version` if given, else the filesystem type of `cgroupfs` [D-EXP-12]. */
export function detectCgroupVersion(cgroupfs: string, forced?: string): CgroupVersion {
  if (forced === 'v1' || forced === 'v2') return forced;
  let type: number;
  try {
    type = statfsSync(cgroupfs).type;
  } catch (e) {
    throw new Error(`cannot inspect cgroup root ${cgroupfs}: ${(e as Error).message}`);
  }
  return type === CGROUP2_SUPER_MAGIC ? 'v2' : 'v1';
}

/**
 * The v1 hierarchy that is walked for the active subsystem. `cpu`/`cpuacct` (and `net_cls`/`net_prio`)
 * are usually co-mounted as `cpu,cpuacct`; hosts that mount them separately have no such directory, so
 * the separate mounts are tried next.
 */
export function v1Hierarchy(cgroupfs: string, active: string): string {
  const pairs: Record<string, string[]> = {
    cpuacct: ['cpu,cpuacct', 'cpuacct', 'cpu'],
    cpu: ['cpu,cpuacct', 'cpu', 'cpuacct'],
    net_cls: ['net_cls,net_prio', 'net_cls', 'net_prio'],
    net_prio: ['net_cls,net_prio', 'net_prio', 'net_cls'],
  };
  const candidates = (pairs[active] ?? [active]).map((d) => join(cgroupfs, d));
  return candidates.find((d) => existsSync(d)) ?? candidates[0]!;
}

export type V1Controller = 'cpuacct' | 'cpu' | 'memory' | 'cpuset' | 'blkio' | 'rdma';
const V1_CONTROLLERS: readonly V1Controller[] = ['cpuacct', 'cpu', 'memory', 'cpuset', 'blkio', 'rdma'];

export interface CgroupLayout {
  readonly manager: Manager;
  readonly version: CgroupVersion;
  readonly cgroupfs: string;
  /** Directory unit paths are relative to: `cgroupfs` (v2) or the walked v1 hierarchy. */
  readonly base: string;
  /** v1 only: directory of each controller statistics are read from (`cpuacct`, `memory`, …). */
  readonly controllers: Readonly<Record<V1Controller, string>>;
  /** Absolute directories walked on every scrape. */
  readonly roots: readonly string[];
  readonly idRegex: RegExp;
  /** True when a matching directory (unescaped path below `base`) is a child of a unit, not the unit. */
  isChild(unescaped: string): boolean;
  /** Turns directory ids into unit ids after each walk (slurm: SLUID → job id); may leave units out. */
  identify?(units: readonly CgroupUnit[], procfs: string): CgroupUnit[];
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

/** Directories below `dir` whose name matches, without descending into a match (first match per branch). */
function firstMatches(dir: string, match: (name: string) => boolean): string[] {
  const out: string[] = [];
  for (const n of subdirs(dir)) {
    const p = join(dir, n);
    if (match(n)) out.push(p);
    else out.push(...firstMatches(p, match));
  }
  return out;
}

// Job directories are named by the numeric job id, or by the SLUID in recent Slurm releases (sluid.ts).
const SLURM_V2_ID = /^.*\/(?:(?<host>.*?)_)?slurm(?:.*?)\/job_(?<id>[0-9A-Za-z]+)(?:.*$)/;
const SLURM_V1_ID = /^.*\/slurm(?:_(?<host>.*?)\/)?(?:.*?)job_(?<id>[0-9A-Za-z]+)(?:.*$)/;
const LIBVIRT_ID = /^.*\/(?:.+?)qemu-(?:[0-9]+)-(?<id>instance-[0-9a-f]+)(?:.*$)/;
// [D-EXP-19] the id must look like a pod UID (dashes, systemd's underscores, or 32 hex for static pods).
const K8S_ID =
  /^.*\/kubepods(?:.*)pod(?<id>[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}|[0-9a-f]{32})(?:.*$)/;

export interface LayoutOptions {
  cgroupfs: string;
  version: CgroupVersion;
  activeSubsystem: string;
  /** Receives layout warnings (k8s drivers). */
  warn?: (msg: string) => void;
}

/** Builds the layout of a manager; throws when the manager's cgroup roots are required and missing. */
export function managerLayout(manager: Manager, o: LayoutOptions): CgroupLayout {
  const base = o.version === 'v2' ? o.cgroupfs : v1Hierarchy(o.cgroupfs, o.activeSubsystem);
  const controllers = Object.fromEntries(
    V1_CONTROLLERS.map((c) => [c, v1Hierarchy(o.cgroupfs, c)]),
  ) as Record<V1Controller, string>;
  const common = { manager, version: o.version, cgroupfs: o.cgroupfs, base, controllers };
  switch (manager) {
    case 'slurm': {
      const parent = o.version === 'v2' ? join(base, 'system.slice') : base;
      const roots =
        o.version === 'v2'
          ? firstMatches(parent, (n) => n.includes('slurmstepd.scope'))
          : subdirs(parent)
              .filter((n) => n.includes('slurm'))
              .map((n) => join(parent, n));
      if (roots.length === 0)
        throw new Error(
          `no SLURM cgroups found under ${parent} (cgroup ${o.version}); is slurmd running with the cgroup plugins?`,
        );
      const jobIds = new SlurmJobIdResolver(o.warn);
      return {
        ...common,
        roots,
        idRegex: o.version === 'v2' ? SLURM_V2_ID : SLURM_V1_ID,
        isChild: (p) => p.includes('/step_'),
        identify: (units, procfs) => jobIds.resolve(units, procfs),
      };
    }
    case 'libvirt': {
      // VMs may start after the exporter: missing roots are simply empty on each walk
      const roots = ['machine.slice', 'machine'].map((d) => join(base, d));
      return {
        ...common,
        roots,
        idRegex: LIBVIRT_ID,
        isChild: (p) => p.includes('/libvirt') || p.includes('/emulator') || p.includes('/vcpu'),
      };
    }
    case 'k8s': {
      const roots = ['kubepods', 'kubepods.slice'].map((d) => join(base, d));
      if (roots.every((d) => existsSync(d)))
        o.warn?.('both kubepods (cgroupfs driver) and kubepods.slice (systemd driver) exist; walking both');
      if (subdirs(join(base, 'system.slice')).some((n) => n.startsWith('kubepods')))
        o.warn?.('kubepods cgroups found under system.slice; they are not walked');
      return {
        ...common,
        roots,
        idRegex: K8S_ID,
        isChild: (p) => {
          if (p.includes('/cri-containerd')) return true;
          return !p.slice(p.lastIndexOf('/') + 1).includes('pod');
        },
      };
    }
  }
}

/** Reads the cgroup flags of the context into layout options. */
export function layoutOptions(cgroupfs: string, flags: ParsedFlags): LayoutOptions {
  const version = detectCgroupVersion(cgroupfs, flags.string('collector.cgroups.force-version') || undefined);
  return { cgroupfs, version, activeSubsystem: flags.string('collector.cgroups.active-subsystem') };
}
