// The counters of one process: the software events as one group (one read(2) returns them all) and each
// hardware or cache event on its own file descriptor, because the kernel schedules a group on the PMU all
// or nothing and a group of 7 or 12 hardware events may never fit; alone, each is multiplexed and scaled.

import { closeSync, readSync } from 'node:fs';
import { ioctl, PERF_FLAG_FD_CLOEXEC, perfEventOpen } from '../../common/syscall.js';
import {
  countingAttr,
  decodeGroup,
  decodeSingle,
  encodeAttr,
  groupReadBytes,
  PERF_EVENT_IOC_ENABLE,
  PERF_IOC_FLAG_GROUP,
  READ_FORMAT,
  type Reading,
  SINGLE_READ_BYTES,
  ZERO_READING,
} from './attr.js';
import type { PerfEvent } from './events.js';
import { scaledDelta } from './scale.js';

/** The system calls a counter set makes; tests replace them. */
export interface PerfKernel {
  /** perf_event_open(2); throws a SyscallError. */
  open(attr: Buffer, pid: number, cpu: number, groupFd: number, flags: number): number;
  enable(fd: number, group: boolean): void;
  /** read(2) of up to `length` bytes into `buf`; returns the byte count. */
  read(fd: number, buf: Buffer, length: number): number;
  close(fd: number): void;
}

export const LINUX: PerfKernel = {
  open: (attr, pid, cpu, groupFd, flags) =>
    perfEventOpen(attr, pid, cpu, groupFd, flags | PERF_FLAG_FD_CLOEXEC),
  enable: (fd, group) => void ioctl(fd, PERF_EVENT_IOC_ENABLE, group ? PERF_IOC_FLAG_GROUP : 0),
  read: (fd, buf, length) => readSync(fd, buf, 0, length, null),
  close: (fd) => closeSync(fd),
};

const BOTH_TIMES = READ_FORMAT.TOTAL_TIME_ENABLED | READ_FORMAT.TOTAL_TIME_RUNNING;

/** The events a process gets, with their attrs encoded once. Totals are indexed in `events` order. */
export class CounterPlan {
  /** Software events first (the group), then hardware and cache events. */
  readonly events: readonly PerfEvent[];
  readonly groupSize: number;
  readonly attrs: readonly Buffer[];

  constructor(events: readonly PerfEvent[]) {
    const group = events.filter((e) => e.kind === 'software');
    this.events = [...group, ...events.filter((e) => e.kind !== 'software')];
    this.groupSize = group.length;
    this.attrs = this.events.map((e, i) =>
      encodeAttr(
        countingAttr(e.type, e.config, i < this.groupSize ? BOTH_TIMES | READ_FORMAT.GROUP : BOTH_TIMES),
      ),
    );
  }
}

// one buffer for every read of the process: reads are synchronous
const buf = Buffer.alloc(groupReadBytes(8));

/** Open counters of one process, with the readings of the last read (for the deltas). */
export class CounterSet {
  private readonly last: Reading[];

  private constructor(
    private readonly kernel: PerfKernel,
    private readonly plan: CounterPlan,
    /** One per event of the plan, group leader first. */
    private readonly fds: readonly number[],
  ) {
    this.last = plan.events.map(() => ZERO_READING);
  }

  /** Opens and enables the plan's events on `pid` (any CPU); all or none: throws after closing any. */
  static open(kernel: PerfKernel, plan: CounterPlan, pid: number): CounterSet {
    const fds: number[] = [];
    try {
      for (let i = 0; i < plan.events.length; i++) {
        const leader = i > 0 && i < plan.groupSize ? fds[0]! : -1;
        fds.push(kernel.open(plan.attrs[i]!, pid, -1, leader, 0));
      }
      if (plan.groupSize > 0) kernel.enable(fds[0]!, true);
      for (let i = plan.groupSize; i < fds.length; i++) kernel.enable(fds[i]!, false);
    } catch (e) {
      for (const fd of fds) kernel.close(fd);
      throw e;
    }
    return new CounterSet(kernel, plan, fds);
  }

  /** Reads every counter and adds what it counted since the last read (scaled) to `totals`. */
  addDeltas(totals: Float64Array): void {
    const { groupSize } = this.plan;
    if (groupSize > 0) {
      const n = this.kernel.read(this.fds[0]!, buf, groupReadBytes(groupSize));
      if (n < groupReadBytes(groupSize)) throw new Error(`perf group read returned ${n} bytes`);
      const readings = decodeGroup(buf, groupSize);
      for (let i = 0; i < groupSize; i++) this.add(totals, i, readings[i]!);
    }
    for (let i = groupSize; i < this.fds.length; i++) {
      const n = this.kernel.read(this.fds[i]!, buf, SINGLE_READ_BYTES);
      if (n < SINGLE_READ_BYTES) throw new Error(`perf read returned ${n} bytes`);
      this.add(totals, i, decodeSingle(buf));
    }
  }

  private add(totals: Float64Array, i: number, r: Reading): void {
    totals[i]! += scaledDelta(this.last[i]!, r);
    this.last[i] = r;
  }

  close(): void {
    for (const fd of this.fds) {
      try {
        this.kernel.close(fd);
      } catch {
        // closing can only fail for a descriptor that is not open; nothing to release then
      }
    }
  }
}
