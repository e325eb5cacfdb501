// Per-unit event totals from per-process counters, kept monotonic while processes come and go.
//
// Counters are opened with `inherit` (as the original): a process's counter also counts the children it
// forks afterwards. Such a child is therefore not given counters of its own ("covered"), or it would be
// counted twice; a process gets its own counters when no ancestor's counter was open before it started.
// When a process ends, its counters are read one last time (the final count, including its still-running
// covered descendants) and closed; descendants it covered get their own counters from then on. Each read
// adds the scaled increase since the previous read to the unit's total, so the total never decreases:
// what ended processes counted stays in it. A unit's state and descriptors go when the unit goes.

import type { Logger } from '../../common/logger.js';
import { SyscallError } from '../../common/syscall.js';
import { type CounterPlan, CounterSet, type PerfKernel } from './counters.js';
import type { ProcessInfo } from './process.js';

export interface TrackerOptions {
  readonly kernel: PerfKernel;
  readonly plan: CounterPlan;
  /** Parent and start time of a process; undefined when it is gone. */
  readonly processInfo: (pid: number) => ProcessInfo | undefined;
  /** Clock ticks since boot, the clock of ProcessInfo.start. */
  readonly bootTicks: () => number;
  /** Whether a process is profiled at all (--collector.perf.env-var). */
  readonly selected: (pid: number) => boolean;
  readonly logger: Logger;
}

interface Proc {
  readonly ppid: number;
  readonly start: number;
  /** own: has counters; covered: counted by the inherited counters of `coveredBy`; skipped: not counted. */
  mode: 'own' | 'covered' | 'skipped';
  set: CounterSet | undefined;
  /** Boot tick read just after the counters opened: later-started children are counted through them. */
  openedAt: number;
  coveredBy: number;
  /** Skipped for a lack of resources (descriptors, memory): tried again next update. */
  retry: boolean;
}

interface UnitState {
  readonly procs: Map<number, Proc>;
  /** Scaled event counts, indexed like the plan's events. */
  readonly totals: Float64Array;
}

/** Errors of a lack of resources rather than of the process: the open is tried again next update. */
const TRANSIENT = new Set([12 /* ENOMEM */, 23 /* ENFILE */, 24 /* EMFILE */]);

/** Depth limit of the ancestor walk (a cycle cannot happen in a process tree, but PIDs are reused). */
const MAX_DEPTH = 64;

export class UnitCounters {
  private readonly units = new Map<string, UnitState>();
  /** Counters opened during the current update, whose `openedAt` is set once they are all open. */
  private pending: Proc[] = [];
  private failures = new Map<string, { count: number; pid: number }>();

  constructor(private readonly o: TrackerOptions) {}

  /**
   * Brings the counters in line with the units and their processes and reads them; returns the totals of
   * each unit (by uuid), for the units given only.
   */
  update(units: readonly { uuid: string; pids: readonly number[] }[]): Map<string, Float64Array> {
    // the clock tick before any counter of this update opens: a process that starts in this tick or later
    // and descends from one of them is counted through inheritance (a later tick would let a child forked
    // while the update ran get counters of its own too, counting it twice)
    const beforeOpening = this.o.bootTicks();
    const live = new Set(units.map((u) => u.uuid));
    for (const [uuid, st] of this.units)
      if (!live.has(uuid)) {
        for (const p of st.procs.values()) p.set?.close();
        this.units.delete(uuid);
      }
    const out = new Map<string, Float64Array>();
    for (const u of units) {
      let st = this.units.get(u.uuid);
      if (!st) {
        st = { procs: new Map(), totals: new Float64Array(this.o.plan.events.length) };
        this.units.set(u.uuid, st);
      }
      this.updateUnit(st, u.pids);
      out.set(u.uuid, st.totals);
    }
    if (this.pending.length > 0) {
      for (const p of this.pending) p.openedAt = beforeOpening;
      this.pending = [];
    }
    this.logFailures();
    return out;
  }

  /** Open descriptors (for tests and the benchmark). */
  get openSets(): number {
    let n = 0;
    for (const st of this.units.values()) for (const p of st.procs.values()) if (p.set) n++;
    return n;
  }

  /** Closes every counter (at shutdown). */
  close(): void {
    for (const st of this.units.values()) for (const p of st.procs.values()) p.set?.close();
    this.units.clear();
  }

  private updateUnit(st: UnitState, pids: readonly number[]): void {
    for (const [pid, p] of st.procs) if (p.retry) st.procs.delete(pid);
    const current = new Set(pids);
    // ended (or moved away): a last read, then close; what they counted stays in the total
    const closed = new Set<number>();
    for (const [pid, p] of st.procs) {
      if (current.has(pid)) continue;
      if (p.set) {
        this.read(st, pid, p);
        p.set.close();
        closed.add(pid);
      }
      st.procs.delete(pid);
    }
    // descendants counted through a closed counter are counted by their own from now on
    if (closed.size > 0)
      for (const [pid, p] of st.procs)
        if (p.mode === 'covered' && closed.has(p.coveredBy)) this.openOwn(pid, p);
    for (const [pid, p] of st.procs) if (p.set) this.read(st, pid, p);
    // new processes, oldest first so that ancestors are decided before their descendants
    const fresh: { pid: number; info: ProcessInfo }[] = [];
    for (const pid of pids) {
      if (st.procs.has(pid)) continue;
      const info = this.o.processInfo(pid);
      if (info) fresh.push({ pid, info });
    }
    fresh.sort((a, b) => a.info.start - b.info.start);
    for (const { pid, info } of fresh) {
      const p: Proc = {
        ...info,
        mode: 'skipped',
        set: undefined,
        openedAt: Infinity,
        coveredBy: 0,
        retry: false,
      };
      st.procs.set(pid, p);
      if (!this.o.selected(pid)) continue;
      const by = this.coveringAncestor(st, p);
      if (by === undefined) this.openOwn(pid, p);
      else {
        p.mode = 'covered';
        p.coveredBy = by;
      }
    }
  }

  /** The process whose inherited counters count `p`, if any: the nearest ancestor in the unit with counters. */
  private coveringAncestor(st: UnitState, p: Proc): number | undefined {
    let pid = p.ppid;
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      const a = st.procs.get(pid);
      if (!a) return undefined;
      if (a.mode === 'own') return p.start >= a.openedAt ? pid : undefined;
      if (a.mode === 'covered') return a.coveredBy;
      pid = a.ppid; // not profiled itself, but it may have inherited an ancestor's counters
    }
    return undefined;
  }

  private openOwn(pid: number, p: Proc): void {
    try {
      p.set = CounterSet.open(this.o.kernel, this.o.plan, pid);
      p.mode = 'own';
      p.openedAt = Infinity; // until all of this update's counters are open
      this.pending.push(p);
    } catch (e) {
      p.mode = 'skipped';
      p.set = undefined;
      const code = e instanceof SyscallError ? e.code : (e as Error).message;
      if (code === 'ESRCH') return; // ended meanwhile
      p.retry = e instanceof SyscallError && TRANSIENT.has(e.errno);
      const f = this.failures.get(code) ?? { count: 0, pid };
      f.count++;
      this.failures.set(code, f);
    }
  }

  private read(st: UnitState, pid: number, p: Proc): void {
    try {
      p.set!.addDeltas(st.totals);
    } catch (e) {
      this.o.logger.debug({ pid, err: (e as Error).message }, 'perf: cannot read counters');
    }
  }

  /** One line per reason and update, not one per process: a missing capability fails them all. */
  private logFailures(): void {
    for (const [err, { count, pid }] of this.failures)
      this.o.logger.error(
        { err, processes: count, first_pid: pid },
        'perf: cannot open counters of processes; they are not counted',
      );
    this.failures.clear();
  }
}
