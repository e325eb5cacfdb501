// Compute-unit discovery: walks the manager's cgroup roots on every scrape (spec exporter.md §7.3).

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isNotFound } from '../../common/errno.js';
import { readFileFast } from '../../common/fsread.js';
import type { CgroupLayout } from './layout.js';
import { parsePids, unescapePath } from './parse.js';

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
}

/** Told about a unit file that exists but cannot be read (its unit is then walked without those PIDs). */
export type UnreadableFile = (unit: string, file: string, reason: string) => void;

function readPids(dir: string, procfs: string, unit: string, unreadable?: UnreadableFile): number[] {
  const file = join(dir, 'cgroup.procs');
  let text: string;
  try {
    text = readFileFast(file);
  } catch (e) {
    if (!isNotFound(e)) unreadable?.(unit, file, (e as Error).message);
    return []; // directory removed while walking, or the file is refused
  }
  return parsePids(text).filter((pid) => existsSync(join(procfs, String(pid))));
}

/** Lists the units of a layout; directories vanishing during the walk are skipped. */
export function discoverUnits(
  layout: CgroupLayout,
  procfs: string,
  unreadable?: UnreadableFile,
): CgroupUnit[] {
  const units = new Map<string, CgroupUnit>();
  // Pre-order walk: a unit directory is always visited before its children.
  const visit = (dir: string) => {
    const unescaped = unescapePath(dir);
    const m = layout.idRegex.exec(unescaped);
    if (m?.groups?.id !== undefined) {
      const id = m.groups.id.replace(/_/g, '-');
      const rel = dir.slice(layout.base.length) || '/';
      // the child rule looks below the cgroup root only, so a root path containing e.g. `/libvirt` is harmless
      if (layout.isChild(unescapePath(rel))) {
        const u = units.get(id);
        if (u) {
          u.children.push(rel);
          u.pids.push(...readPids(dir, procfs, id, unreadable));
        }
      } else if (!units.has(id)) {
        units.set(id, {
          id,
          uuid: id,
          cgrouphostname: m.groups.host ?? '',
          rel,
          children: [],
          pids: readPids(dir, procfs, id, unreadable),
        });
      }
    }
    let entries: string[];
    try {
      entries = readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort();
    } catch {
      return;
    }
    for (const e of entries) visit(join(dir, e));
  };
  for (const root of layout.roots) visit(root);
  const found = [...units.values()];
  return layout.identify ? layout.identify(found, procfs) : found;
}
