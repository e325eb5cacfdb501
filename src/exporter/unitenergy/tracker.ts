// Short units (issue 20, B9): the node's energy counters read when a unit's cgroup appears and when it
// disappears, so that the API server can give a unit shorter than two scrape intervals a measured energy:
// the node's counter delta over the unit's life times the unit's CPU share. Start and end are noticed by
// inotify on the cgroup directories that job directories are created in (kernfs delivers IN_CREATE and
// IN_DELETE for mkdir/rmdir on cgroup v1 and v2 hierarchies: checked on this project's test machine),
// and by the walk of every scrape, which catches what a lost or unsupported watch missed. A unit ended
// within `retentionMs` is exported; older ones are forgotten, and at most MAX_ENDED are kept.

import { type FSWatcher, readdirSync, watch } from 'node:fs';
import { join } from 'node:path';
import { readTrimmed } from '../../common/fsread.js';
import type { Logger } from '../../common/logger.js';
import type { CgroupLayout } from '../cgroup/layout.js';
import { countCpuList, unescapePath } from '../cgroup/parse.js';
import { type CgroupUnit, UnitWalker } from '../cgroup/walk.js';
import type { Emitter } from '../collector.js';
import { addJoules, type CounterSource, type Reading, readCounters, sourceJoules } from './counters.js';
import { readSpool, type SpoolUnit } from './spool.js';

/** Ended units kept at most (the oldest go first): ~390 bytes of heap each, one source (a Map of 10,000 in Node 24). */
export const MAX_ENDED = 10_000;

const JOULES = 'ceems_compute_unit_energy_counter_joules';
const SHARE = 'ceems_compute_unit_energy_counter_cpu_share_ratio';
const SECONDS = 'ceems_compute_unit_energy_counter_seconds';

interface RunningUnit {
  uuid: string;
  startedAt: number;
  /** Counter reading this unit's joules were last advanced to. */
  last: Reading;
  joules: Map<CounterSource, number>;
  /** CPUs of its cpuset; 0 until the cpuset could be read. */
  cpus: number;
}

/** A unit that ended: the node's counter delta over its life and its CPU share. */
export interface EndedUnit {
  uuid: string;
  endedAt: number;
  seconds: number;
  joules: Map<CounterSource, number>;
  share: number;
  /** Read by the SLURM hooks: the exporter's own readings do not replace it. */
  fromHook: boolean;
}

export interface TrackerOptions {
  layout: CgroupLayout;
  procfs: string;
  sysfs: string;
  hostname: string;
  logger: Logger;
  retentionMs: number;
  /** Directory the SLURM prolog/epilog hooks write their readings to ('' = no hooks). */
  spoolDir: string;
  now?: () => number;
}

/** Number of CPUs of the node (`devices/system/cpu/online`), at least 1. */
export function nodeCpus(sysfs: string): number {
  return Math.max(1, countCpuList(readTrimmed(join(sysfs, 'devices', 'system', 'cpu', 'online')) ?? ''));
}

export class UnitEnergyTracker {
  private readonly walker: UnitWalker;
  private readonly nodeCpus: number;
  /** Units by cgroup directory; `undefined` for units already running when the tracker started. */
  private readonly running = new Map<string, RunningUnit | undefined>();
  private readonly ended = new Map<string, EndedUnit>();
  private readonly watchers = new Map<string, FSWatcher>();
  private pending: NodeJS.Immediate | undefined;
  /** After stop(): scrapes still walk (a scrape in flight at shutdown), no watch is made again. */
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly o: TrackerOptions) {
    this.walker = new UnitWalker(o.layout, o.procfs);
    this.nodeCpus = nodeCpus(o.sysfs);
    this.now = o.now ?? Date.now;
    // units running now started before us: their start reading is unknown, they are never exported
    for (const u of this.walker.walk()) this.running.set(u.rel, undefined);
    this.watchDirectories();
  }

  /** Records the units that appeared or disappeared since the last walk (`units`: the tree now). */
  refresh(units: readonly CgroupUnit[] = this.walker.walk()): void {
    const reading = readCounters(this.o.sysfs);
    const t = this.now();
    const seen = new Set<string>();
    for (const u of units) {
      seen.add(u.rel);
      let r = this.running.get(u.rel);
      if (r === undefined && !this.running.has(u.rel)) {
        r = { uuid: u.uuid, startedAt: t, last: reading, joules: new Map(), cpus: 0 };
        this.running.set(u.rel, r);
        this.o.logger.debug({ uuid: u.uuid }, 'unit energy counter: unit started');
      }
      if (r) {
        r.uuid = u.uuid; // a SLUID directory gets its job id once its processes are known
        if (r.cpus === 0) r.cpus = this.cpusOf(u); // slurmstepd fills the cpuset after the mkdir
      }
    }
    for (const [rel, r] of this.running) {
      if (r) this.advance(r, reading);
      if (seen.has(rel)) continue;
      this.running.delete(rel);
      if (r) this.end(r, t);
    }
    this.watchDirectories();
    this.prune(t);
  }

  /**
   * Exports the units that ended within the retention (hook readings win over the exporter's own);
   * `units`: the scrape's walk of the same tree, if it made one.
   */
  update(out: Emitter, units?: readonly CgroupUnit[]): void {
    this.refresh(units);
    if (this.o.spoolDir) for (const s of readSpool(this.o.spoolDir, this.o.logger)) this.fromSpool(s);
    for (const e of this.ended.values()) {
      const labels = { hostname: this.o.hostname, manager: this.o.layout.manager, uuid: e.uuid };
      for (const [source, j] of e.joules)
        out.emit(
          JOULES,
          'gauge',
          "Energy counter delta of the node over the unit's life (unit start to end) in joules",
          { ...labels, source },
          j,
        );
      out.emit(SHARE, 'gauge', "Unit's CPUs (cpuset) over the node's CPUs", labels, e.share);
      out.emit(
        SECONDS,
        'gauge',
        "Seconds between the unit's start and end counter readings",
        labels,
        e.seconds,
      );
    }
  }

  /** Units that ended and are still exported (tests, diagnostics). */
  endedUnits(): EndedUnit[] {
    return [...this.ended.values()];
  }

  stop(): void {
    this.stopped = true;
    if (this.pending) clearImmediate(this.pending);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  private advance(r: RunningUnit, reading: Reading): void {
    addJoules(r.joules, sourceJoules(r.last, reading));
    r.last = reading;
  }

  private end(r: RunningUnit, t: number): void {
    if (!/^[0-9]+$/.test(r.uuid) && this.o.layout.manager === 'slurm') return; // never identified
    if (this.ended.get(r.uuid)?.fromHook) return;
    // no cpuset read (unreadable, or gone before the first walk): the whole node, the upper bound
    const share = r.cpus > 0 ? Math.min(1, r.cpus / this.nodeCpus) : 1;
    this.ended.delete(r.uuid); // re-inserted last: the map stays in end order for the cap
    this.ended.set(r.uuid, {
      uuid: r.uuid,
      endedAt: t,
      seconds: (t - r.startedAt) / 1000,
      joules: r.joules,
      share,
      fromHook: false,
    });
    this.o.logger.debug(
      { uuid: r.uuid, joules: Object.fromEntries(r.joules) },
      'unit energy counter: unit ended',
    );
  }

  /**
   * A hook's start and end readings replace the exporter's own. The share is the cpuset of the job's
   * cgroup when the tracker saw it, else the hook's `cpus`, else the whole node (the upper bound).
   */
  private fromSpool(s: SpoolUnit): void {
    if (this.now() - s.endedAt > this.o.retentionMs) return; // a reading left behind, e.g. not removable
    const running = [...this.running.values()].find((r) => r?.uuid === s.uuid && r.cpus > 0);
    const known = this.ended.get(s.uuid);
    const share = running
      ? running.cpus / this.nodeCpus
      : known && !known.fromHook
        ? known.share
        : (s.cpus ?? this.nodeCpus) / this.nodeCpus;
    this.ended.delete(s.uuid);
    this.ended.set(s.uuid, {
      uuid: s.uuid,
      endedAt: s.endedAt,
      seconds: (s.endedAt - s.startedAt) / 1000,
      joules: sourceJoules(s.start, s.end),
      share: Math.min(1, share),
      fromHook: true,
    });
  }

  private cpusOf(u: CgroupUnit): number {
    const l = this.o.layout;
    const file =
      l.version === 'v2'
        ? join(l.base, u.rel, 'cpuset.cpus.effective')
        : join(l.controllers.cpuset, u.rel, 'cpuset.cpus');
    return countCpuList(readTrimmed(file) ?? '');
  }

  private prune(t: number): void {
    for (const [uuid, e] of this.ended) if (t - e.endedAt > this.o.retentionMs) this.ended.delete(uuid);
    // over the cap: the first inserted go first
    for (const uuid of this.ended.keys()) {
      if (this.ended.size <= MAX_ENDED) break;
      this.ended.delete(uuid);
    }
  }

  /**
   * Watches the roots and their subdirectories that are not units (v1: `uid_N`), where job cgroups come
   * and go; never a unit's own directory, whose steps and tasks would wake a walk each.
   */
  private watchDirectories(): void {
    if (this.stopped) return;
    const dirs = new Set<string>();
    for (const root of this.o.layout.roots) {
      dirs.add(root);
      try {
        for (const e of readdirSync(root, { withFileTypes: true }))
          if (e.isDirectory() && !this.o.layout.idRegex.test(unescapePath(join(root, e.name))))
            dirs.add(join(root, e.name));
      } catch {
        // root missing for now: the walk of each scrape still runs
      }
    }
    for (const [dir, w] of this.watchers)
      if (!dirs.has(dir)) {
        w.close();
        this.watchers.delete(dir);
      }
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, () => this.schedule());
        w.on('error', () => {
          w.close(); // the directory went away: the next walk decides what to watch
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, w);
      } catch (e) {
        this.o.logger.debug(
          { dir, err: (e as Error).message },
          'unit energy counter: cannot watch; scrapes only',
        );
      }
    }
  }

  /** One walk for a burst of events (a job start creates several directories at once). */
  private schedule(): void {
    this.pending ??= setImmediate(() => {
      this.pending = undefined;
      try {
        this.refresh();
      } catch (e) {
        this.o.logger.warn({ err: (e as Error).message }, 'unit energy counter: walk failed');
      }
    });
  }
}
