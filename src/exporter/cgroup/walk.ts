// Compute-unit discovery: the manager's cgroup roots walked on every scrape (spec exporter.md §7.3).
//
// The directory STRUCTURE is kept between scrapes and listed again only where it changed; every scrape still
// reads each unit's cgroup.procs and statistics. A kept listing of a directory is reused only when
// (1) its stat(2) link count is still 2 + the number of subdirectories listed: kernfs (cgroup v1 and v2),
//     tmpfs, ext4 and xfs keep a directory's link count at 2 + its subdirectories, so a subdirectory
//     created since the listing shows as a different count, and
// (2) every listed subdirectory still exists as a directory (each is stat'ed anyway to walk it), so a
//     removal that a creation made up for in the count is seen too.
// A directory that fails either check is listed again before its subdirectories are walked, so a unit that
// appeared or vanished since the previous scrape is seen by this one. Other filesystems (btrfs keeps
// directories at one link, FUSE and overlay vary) are listed on every scrape, as before. A listing costs
// opendir, two getdents and close, a check one stat; on a 1,000-job tree 6,000 listings per scrape
// become 6,000 stats (bench/exporter-cgroup.ts).

import { existsSync, lstatSync, readdirSync, type Stats, statfsSync, statSync } from 'node:fs';
import { isNotFound } from '../../common/errno.js';
import { fileBuffer, readFileBytes } from '../../common/fsread.js';
import type { CgroupLayout } from './layout.js';
import { parsePids, pidsInto, unescapePath } from './parse.js';

export interface CgroupUnit {
  /** Regex group `id` with `_` → `-` (job id, instance-XXXXXXXX, pod UID). */
  readonly id: string;
  /** `uuid` label; equals `id` unless the manager overrides it (libvirt). */
  uuid: string;
  readonly cgrouphostname: string;
  /** Unit directory relative to the layout base, in its on-disk (escaped) form, leading `/`. */
  readonly rel: string;
  /** Child directories (relative to the base, escaped on-disk form) [D-EXP-7]. */
  readonly children: string[];
  /** PIDs of the unit directory and its matching descendants that exist under procfs, in walk order. */
  readonly pids: number[];
  /** What the statistics reader remembers of this unit's directory between scrapes (see stats.ts). */
  readonly hints?: UnitHints;
}

/** Per unit directory, kept as long as the directory is: which optional files were missing last time. */
export interface UnitHints {
  absent: number;
}

/** Told about a unit file that exists but cannot be read (its unit is then walked without those PIDs). */
export type UnreadableFile = (unit: string, file: string, reason: string) => void;

/** stat options of the walk: a directory gone meanwhile is an answer, not an error. */
const NO_THROW = { throwIfNoEntry: false } as const;

/** Filesystems whose directories keep a link count of 2 + their subdirectories (statfs f_type). */
const LINK_COUNTING_FS: ReadonlySet<number> = new Set([
  0x27e0eb, // cgroup (v1)
  0x63677270, // cgroup2
  0x01021994, // tmpfs
  0xef53, // ext2/3/4
  0x58465342, // xfs
]);

/**
 * What a directory's path says, worked out once: the unit it belongs to. Shared by a directory and the
 * descendants whose path gives the same answer (a job's steps share one), so the kept tree holds few.
 */
interface UnitMatch {
  readonly id: string;
  readonly host: string;
  readonly child: boolean;
}

/**
 * One directory of the kept structure. It keeps its name, not its path (paths are built while walking): on a
 * 10,000-job tree the kept structure is 60,000 of these, retained between scrapes.
 */
interface Dir {
  readonly name: string;
  readonly unit: UnitMatch | undefined;
  /** Subdirectories at the last listing, sorted by name; undefined before the first. */
  subdirs: readonly Dir[] | undefined;
  hints: UnitHints | undefined;
}

/** The listing of a directory without subdirectories (most of a unit's): one array for all of them. */
const NO_SUBDIRS: readonly Dir[] = Object.freeze([]);

function linkCounting(path: string): boolean {
  try {
    return LINK_COUNTING_FS.has(statfsSync(path).type);
  } catch {
    return false;
  }
}

export class UnitWalker {
  private readonly roots: { path: string; dir: Dir; counting: boolean | undefined }[];

  constructor(
    private readonly layout: CgroupLayout,
    private readonly procfs: string,
    /** false: list every directory on every walk (the behaviour without the structure cache). */
    private readonly cache = true,
  ) {
    this.roots = layout.roots.map((r) => ({ path: r, dir: this.dir(r, r, undefined), counting: undefined }));
  }

  /** Units present now; directories vanishing during the walk are skipped. */
  walk(unreadable?: UnreadableFile): CgroupUnit[] {
    const units = new Map<string, CgroupUnit>();
    for (const root of this.roots) {
      const st = statSync(root.path, NO_THROW);
      if (!st?.isDirectory()) {
        root.dir.subdirs = undefined;
        continue;
      }
      root.counting ??= this.cache && linkCounting(root.path);
      this.visit(root.dir, root.path, root.counting ? st : undefined, units, unreadable);
    }
    const found = [...units.values()];
    return this.layout.identify ? this.layout.identify(found, this.procfs) : found;
  }

  /** The directory `name` at `path`; `parent` lends its unit match when the path gives the same one. */
  private dir(name: string, path: string, parent: Dir | undefined): Dir {
    const unescaped = unescapePath(path);
    const m = this.layout.idRegex.exec(unescaped);
    let unit: UnitMatch | undefined;
    if (m?.groups?.id !== undefined) {
      const id = m.groups.id.replace(/_/g, '-');
      const host = m.groups.host ?? '';
      // the child rule looks below the cgroup root only, so a root path containing e.g. `/libvirt` is harmless
      const child = this.layout.isChild(unescapePath(this.rel(path)));
      const p = parent?.unit;
      unit = p && p.id === id && p.host === host && p.child === child ? p : { id, host, child };
    }
    return { name, unit, subdirs: undefined, hints: undefined };
  }

  /** `path` relative to the layout base, leading `/`. */
  private rel(path: string): string {
    return path.slice(this.layout.base.length) || '/';
  }

  /** Pre-order: a unit directory is always visited before its children. `st` only where links count. */
  private visit(
    d: Dir,
    path: string,
    st: Stats | undefined,
    units: Map<string, CgroupUnit>,
    unreadable?: UnreadableFile,
  ) {
    const m = d.unit;
    if (m) {
      if (m.child) {
        const u = units.get(m.id);
        if (u) {
          u.children.push(this.rel(path));
          this.readPids(path, m.id, u.pids, unreadable);
        }
      } else if (!units.has(m.id)) {
        d.hints ??= { absent: 0 };
        const u: CgroupUnit = {
          id: m.id,
          uuid: m.id,
          cgrouphostname: m.host,
          rel: this.rel(path),
          children: [],
          pids: [],
          hints: d.hints,
        };
        this.readPids(path, m.id, u.pids, unreadable);
        units.set(m.id, u);
      }
    }
    let subdirs = d.subdirs;
    if (!st || subdirs === undefined || st.nlink !== subdirs.length + 2) subdirs = this.list(d, path);
    if (subdirs.length === 0) return;
    const paths = subdirs.map((s) => `${path}/${s.name}`);
    if (!st) {
      for (let i = 0; i < subdirs.length; i++)
        this.visit(subdirs[i]!, paths[i]!, undefined, units, unreadable);
      return;
    }
    let stats = paths.map((p) => lstatSync(p, NO_THROW));
    if (stats.some((s) => !s?.isDirectory())) {
      // one went away; a new one may have taken its place in the link count
      subdirs = this.list(d, path);
      paths.length = 0;
      for (const s of subdirs) paths.push(`${path}/${s.name}`);
      stats = paths.map((p) => lstatSync(p, NO_THROW));
    }
    for (let i = 0; i < subdirs.length; i++) {
      const s = stats[i];
      if (s?.isDirectory()) this.visit(subdirs[i]!, paths[i]!, s, units, unreadable);
    }
  }

  /** Lists `d` (at `path`) again, keeping what is known of subdirectories that are still there. */
  private list(d: Dir, path: string): readonly Dir[] {
    let names: string[];
    try {
      names = readdirSync(path, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort();
    } catch {
      names = [];
    }
    if (names.length === 0) {
      d.subdirs = NO_SUBDIRS;
      return NO_SUBDIRS;
    }
    const known = new Map<string, Dir>();
    for (const s of d.subdirs ?? []) known.set(s.name, s);
    d.subdirs = names.map((n) => known.get(n) ?? this.dir(n, `${path}/${n}`, d));
    return d.subdirs;
  }

  /** Adds the PIDs of `dir`/cgroup.procs that exist under procfs. */
  private readPids(dir: string, unit: string, into: number[], unreadable?: UnreadableFile): void {
    const file = `${dir}/cgroup.procs`;
    let len: number;
    try {
      len = readFileBytes(file);
    } catch (e) {
      if (!isNotFound(e)) unreadable?.(unit, file, (e as Error).message);
      return; // directory removed while walking, or the file is refused
    }
    const from = into.length;
    const buf = fileBuffer();
    if (!pidsInto(buf, len, into)) into.push(...parsePids(buf.toString('utf8', 0, len)));
    // keep those that exist under procfs, in place
    let n = from;
    for (let i = from; i < into.length; i++) {
      const pid = into[i]!;
      if (existsSync(`${this.procfs}/${pid}`)) into[n++] = pid;
    }
    into.length = n;
  }
}

/** Lists the units of a layout once, without a kept structure; directories vanishing meanwhile are skipped. */
export function discoverUnits(
  layout: CgroupLayout,
  procfs: string,
  unreadable?: UnreadableFile,
): CgroupUnit[] {
  return new UnitWalker(layout, procfs, false).walk(unreadable);
}
