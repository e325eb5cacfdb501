// Per-unit totals from per-process counters on a fake kernel: monotonic while processes come and go,
// children counted through an inherited counter not counted twice, descriptors closed when processes and
// units end, open failures logged once per update.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../../../src/common/logger.js';
import { SyscallError } from '../../../../src/common/syscall.js';
import { CounterPlan, type PerfKernel } from '../../../../src/exporter/perf/counters.js';
import { PERF_EVENTS } from '../../../../src/exporter/perf/events.js';
import type { ProcessInfo } from '../../../../src/exporter/perf/process.js';
import { UnitCounters } from '../../../../src/exporter/perf/tracker.js';

/** Two software events (one group) and one hardware event read alone. */
const PLAN = new CounterPlan(
  PERF_EVENTS.filter((e) => ['PageFault', 'MinorFault', 'CpuCycles'].includes(e.name)),
);

/**
 * A kernel whose counters count what the test says each process did since the counter opened: every
 * event of a process reads `work(pid)` (the group) or 10 × work (the hardware event, running half the
 * time it is enabled, so scaled × 2).
 */
class FakeKernel implements PerfKernel {
  readonly open_ = new Map<number, { pid: number; leader: number; base: number; first: boolean }>();
  readonly opened: number[] = [];
  readonly work = new Map<number, number>();
  failWith = new Map<number, number>(); // pid → errno
  private next = 100;
  private clock = 0;

  open(attr: Buffer, pid: number, _cpu: number, groupFd: number): number {
    const errno = this.failWith.get(pid);
    if (errno !== undefined) throw new SyscallError('perf_event_open', errno);
    const fd = this.next++;
    const first = attr === PLAN.attrs[0]; // the first counter of a process's set
    this.open_.set(fd, { pid, leader: groupFd, base: this.work.get(pid) ?? 0, first });
    if (first) this.opened.push(pid);
    return fd;
  }
  enable(): void {}
  read(fd: number, buf: Buffer): number {
    const c = this.open_.get(fd);
    if (!c) throw new SyscallError('read', 9);
    const done = (this.work.get(c.pid) ?? 0) - c.base;
    this.clock += 1000;
    const put = (...values: number[]) => {
      values.forEach((v, i) => {
        buf.writeBigUInt64LE(BigInt(v), i * 8);
      });
    };
    const members = [...this.open_.values()].filter((m) => m.leader === fd).length;
    if (members > 0) {
      put(members + 1, this.clock, this.clock, ...Array<number>(members + 1).fill(done));
      return 24 + 8 * (members + 1);
    }
    put(10 * done, this.clock, this.clock / 2);
    return 24;
  }
  close(fd: number): void {
    if (!this.open_.delete(fd)) throw new SyscallError('close', 9);
  }
  /** Processes with open counters. */
  pids(): number[] {
    return [...this.open_.values()].filter((c) => c.first).map((c) => c.pid);
  }
}

interface World {
  kernel: FakeKernel;
  procs: Map<number, ProcessInfo>;
  ticks: { now: number };
  notSelected: Set<number>;
  logs: { msg: string; err?: string; processes?: number }[];
  counters: UnitCounters;
}

function world(): World {
  const kernel = new FakeKernel();
  const procs = new Map<number, ProcessInfo>();
  const ticks = { now: 1000 };
  const notSelected = new Set<number>();
  const logs: World['logs'] = [];
  const logger = createLogger({
    level: 'info',
    format: 'json',
    write: (l: string) => logs.push(JSON.parse(l)),
  });
  const counters = new UnitCounters({
    kernel,
    plan: PLAN,
    processInfo: (pid) => procs.get(pid),
    bootTicks: () => ticks.now,
    selected: (pid) => !notSelected.has(pid),
    logger,
  });
  return { kernel, procs, ticks, notSelected, logs, counters };
}

/** Totals as { PageFault, MinorFault, CpuCycles }. */
function totals(w: World, units: { uuid: string; pids: number[] }[]): Record<string, number[]> {
  return Object.fromEntries([...w.counters.update(units)].map(([uuid, t]) => [uuid, [...t]]));
}

describe('UnitCounters', () => {
  it('adds what each read counted; an ended process keeps its count in the total; its counters close', () => {
    const w = world();
    w.procs.set(10, { ppid: 1, start: 100 });
    w.procs.set(11, { ppid: 1, start: 100 });
    assert.deepEqual(totals(w, [{ uuid: 'j1', pids: [10, 11] }]), { j1: [0, 0, 0] }, 'opened, not read yet');
    assert.equal(w.kernel.open_.size, 6, '2 processes × 3 events');
    w.kernel.work.set(10, 5);
    w.kernel.work.set(11, 7);
    // PageFault, MinorFault: 5 + 7; CpuCycles: 10 × 12 counted half the time → 240
    assert.deepEqual(totals(w, [{ uuid: 'j1', pids: [10, 11] }]), { j1: [12, 12, 240] });
    w.kernel.work.set(11, 9); // did 2 more, then ended
    assert.deepEqual(totals(w, [{ uuid: 'j1', pids: [10] }]), { j1: [14, 14, 280] }, 'last read of 11');
    assert.deepEqual(w.kernel.pids(), [10], "11's descriptors are closed");
    assert.deepEqual(totals(w, [{ uuid: 'j1', pids: [10] }]), { j1: [14, 14, 280] }, 'never goes back');
    assert.equal(w.counters.openSets, 1);
  });

  it('closes every descriptor of a unit that ended, and all at close()', () => {
    const w = world();
    for (const pid of [20, 21, 30]) w.procs.set(pid, { ppid: 1, start: 100 });
    totals(w, [
      { uuid: 'a', pids: [20, 21] },
      { uuid: 'b', pids: [30] },
    ]);
    assert.equal(w.kernel.open_.size, 9);
    assert.deepEqual(Object.keys(totals(w, [{ uuid: 'b', pids: [30] }])), ['b']);
    assert.deepEqual(w.kernel.pids(), [30]);
    w.counters.close();
    assert.equal(w.kernel.open_.size, 0);
  });

  it('does not count twice a child started after its parent’s (inheriting) counters opened', () => {
    const w = world();
    w.procs.set(40, { ppid: 1, start: 100 });
    w.procs.set(41, { ppid: 40, start: 900 }); // already running when 40's counters open: counters of its own
    w.ticks.now = 1000; // 40's counters open at tick 1000
    totals(w, [{ uuid: 'j', pids: [40, 41] }]);
    assert.deepEqual(w.kernel.opened, [40, 41]);
    w.procs.set(42, { ppid: 40, start: 1500 }); // forked later: 40's counters count it
    w.procs.set(43, { ppid: 42, start: 1600 }); // and its children
    w.procs.set(44, { ppid: 41, start: 1700 }); // 41's counters count this one
    totals(w, [{ uuid: 'j', pids: [40, 41, 42, 43, 44] }]);
    assert.deepEqual(w.kernel.opened, [40, 41], 'no counters for covered processes');
  });

  it('gives counters of their own to processes that were counted through a process that ended', () => {
    const w = world();
    w.procs.set(50, { ppid: 1, start: 100 });
    totals(w, [{ uuid: 'j', pids: [50] }]);
    w.procs.set(51, { ppid: 50, start: 2000 });
    w.procs.set(52, { ppid: 51, start: 2100 });
    w.kernel.work.set(50, 3);
    assert.deepEqual(totals(w, [{ uuid: 'j', pids: [50, 51, 52] }]).j, [3, 3, 60]);
    assert.deepEqual(w.kernel.opened, [50]);
    // 50 ends (its children live on): its last read, then 51 and 52 are counted by counters of their own
    w.kernel.work.set(50, 4);
    assert.deepEqual(totals(w, [{ uuid: 'j', pids: [51, 52] }]).j, [4, 4, 80]);
    assert.deepEqual(w.kernel.opened, [50, 51, 52]);
    assert.deepEqual(w.kernel.pids().sort(), [51, 52]);
    w.kernel.work.set(51, 6);
    assert.deepEqual(totals(w, [{ uuid: 'j', pids: [51, 52] }]).j, [10, 10, 200]);
  });

  it('looks past processes that are not profiled to the ancestor whose counters they inherited', () => {
    const w = world();
    w.procs.set(60, { ppid: 1, start: 100 });
    totals(w, [{ uuid: 'j', pids: [60] }]);
    w.procs.set(61, { ppid: 60, start: 1200 });
    w.procs.set(62, { ppid: 61, start: 1300 });
    w.notSelected.add(61); // e.g. a SLURM helper with --collector.perf.env-var
    totals(w, [{ uuid: 'j', pids: [60, 61, 62] }]);
    assert.deepEqual(w.kernel.opened, [60]);
    // a process not profiled whose parent is outside the unit: its child gets counters
    w.procs.set(70, { ppid: 1, start: 1400 });
    w.procs.set(71, { ppid: 70, start: 1500 });
    w.notSelected.add(70);
    totals(w, [{ uuid: 'j', pids: [60, 61, 62, 70, 71] }]);
    assert.deepEqual(w.kernel.opened, [60, 71]);
  });

  it('decides parents before children seen in the same update (oldest first)', () => {
    const w = world();
    w.procs.set(81, { ppid: 80, start: 300 });
    w.procs.set(80, { ppid: 1, start: 200 });
    totals(w, [{ uuid: 'j', pids: [81, 80] }]);
    // both were running before any counter opened: both get their own
    assert.deepEqual(w.kernel.opened, [80, 81]);
  });

  it('logs open failures once per update and reason; retries only a lack of descriptors', () => {
    const w = world();
    for (const pid of [90, 91, 92, 93]) w.procs.set(pid, { ppid: 1, start: 100 });
    w.kernel.failWith.set(90, 13); // EACCES
    w.kernel.failWith.set(91, 13);
    w.kernel.failWith.set(92, 24); // EMFILE
    w.kernel.failWith.set(93, 3); // ESRCH: ended meanwhile, not an error
    totals(w, [{ uuid: 'j', pids: [90, 91, 92, 93] }]);
    const errors = w.logs.filter((l) => l.msg.startsWith('perf: cannot open counters'));
    assert.deepEqual(
      errors.map((l) => [l.err, l.processes]),
      [
        ['EACCES', 2],
        ['EMFILE', 1],
      ],
    );
    assert.equal(w.kernel.open_.size, 0, 'nothing left half open');
    w.kernel.failWith.clear();
    totals(w, [{ uuid: 'j', pids: [90, 91, 92, 93] }]);
    assert.deepEqual(w.kernel.opened, [92], 'EMFILE retried; the others stay uncounted');
  });
});
