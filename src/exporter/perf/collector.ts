// The perf sub-collector of the slurm, libvirt and k8s collectors (spec exporter.md §10.1): hardware,
// software and cache events of the processes of each unit, counted by perf_event_open(2) counters of each
// process and exported as per-unit totals `ceems_perf_*_total{hostname,manager,uuid}`.

import { join } from 'node:path';
import type { ParsedFlags } from '../../common/flags.js';
import { readFileFast } from '../../common/fsread.js';
import type { Logger } from '../../common/logger.js';
import { SyscallError } from '../../common/syscall.js';
import type { UnitSubCollector } from '../cgroup/collector.js';
import type { CgroupUnit } from '../cgroup/walk.js';
import type { CollectorContext, Emitter } from '../collector.js';
import { CounterPlan, CounterSet, LINUX, type PerfKernel } from './counters.js';
import { type PerfEvent, selectEvents } from './events.js';
import { KINDS } from './flags.js';
import { envVarSelected, readBootTicks, readProcessInfo } from './process.js';
import { UnitCounters } from './tracker.js';

/** The selected events of the enabled kinds; an unknown profiler name throws. */
export function selectedEvents(flags: ParsedFlags): PerfEvent[] {
  return KINDS.filter((k) => flags.bool(`collector.perf.${k.events}`)).flatMap((k) =>
    selectEvents(k.kind, flags.strings(`collector.perf.${k.profilers}`)),
  );
}

/** perf_event_open refuses everything above 2 (Debian's 3 and 4 included), even with cap_perfmon. */
export function checkParanoid(procfs: string): void {
  const file = join(procfs, 'sys/kernel/perf_event_paranoid');
  let level: number;
  try {
    level = Number(readFileFast(file).trim());
  } catch (e) {
    throw new Error(`cannot read ${file} (kernel without perf events?): ${(e as Error).message}`);
  }
  if (level > 2)
    throw new Error(
      `perf_event_open is not possible with perf_event_paranoid=${level}; set it to 2 or lower`,
    );
}

// events already reported unsupported, so that slurm, libvirt and k8s together log each once
const REPORTED = new Set<string>();

/**
 * The events this node can count, found by opening each on the exporter itself once. The others (hardware
 * and cache events in a virtual machine without PMU) are logged in one line, here at start-up only.
 */
export function supportedEvents(
  kernel: PerfKernel,
  events: readonly PerfEvent[],
  log: Logger,
  reported: Set<string> = REPORTED,
): PerfEvent[] {
  const ok: PerfEvent[] = [];
  const failed = new Map<string, string[]>();
  for (const e of events) {
    try {
      CounterSet.open(kernel, new CounterPlan([e]), 0).close();
      ok.push(e);
    } catch (err) {
      const why = err instanceof SyscallError ? `${err.code} (errno ${err.errno})` : (err as Error).message;
      failed.set(why, [...(failed.get(why) ?? []), e.name]);
    }
  }
  const fresh = [...failed].map(([why, names]) => [why, names.filter((n) => !reported.has(n))] as const);
  const names = fresh.flatMap(([, n]) => n);
  if (names.length > 0) {
    for (const n of names) reported.add(n);
    log.warn(
      {
        events: names.join(','),
        err: fresh
          .filter(([, n]) => n.length > 0)
          .map(([why]) => why)
          .join('; '),
      },
      'perf events not supported on this node (no hardware PMU here?); they are not collected',
    );
  }
  return ok;
}

export interface PerfOptions {
  readonly manager: string;
  readonly hostname: string;
  readonly procfs: string;
  readonly logger: Logger;
  /** Events to count, all supported here. */
  readonly events: readonly PerfEvent[];
  /** --collector.perf.env-var prefixes; empty: every process is profiled. */
  readonly envVars: readonly string[];
  readonly kernel?: PerfKernel;
}

export class PerfCollector implements UnitSubCollector {
  private readonly counters: UnitCounters;
  private readonly plan: CounterPlan;

  constructor(private readonly o: PerfOptions) {
    this.plan = new CounterPlan(o.events);
    const skipAuxiliary = o.manager === 'slurm';
    this.counters = new UnitCounters({
      kernel: o.kernel ?? LINUX,
      plan: this.plan,
      processInfo: (pid) => readProcessInfo(o.procfs, pid),
      bootTicks: () => readBootTicks(o.procfs),
      selected:
        o.envVars.length > 0 ? (pid) => envVarSelected(o.procfs, pid, o.envVars, skipAuxiliary) : () => true,
      logger: o.logger,
    });
  }

  /** Processes with open counters (tests, benchmark). */
  get profiledProcesses(): number {
    return this.counters.openSets;
  }

  async update(out: Emitter, units: readonly CgroupUnit[]): Promise<void> {
    if (this.plan.events.length === 0) return;
    const totals = this.counters.update(units);
    for (const u of units) {
      const t = totals.get(u.uuid);
      if (!t) continue;
      const labels = { hostname: this.o.hostname, manager: this.o.manager, uuid: u.uuid };
      this.plan.events.forEach((e, i) => {
        const v = t[i] ?? 0;
        if (v > 0) out.emit(`ceems_perf_${e.metric}`, 'counter', e.help, labels, v);
      });
    }
  }

  stop(): void {
    this.counters.close();
  }
}

/** The perf sub-collector, once any of the `--collector.perf.*-events` flags is given (perfEnabled). */
export function createPerfSubCollector(ctx: CollectorContext, manager: string): PerfCollector {
  const logger = ctx.logger.child({ subcollector: 'perf' });
  const events = selectedEvents(ctx.flags); // unknown profiler names fail start-up
  checkParanoid(ctx.procfs);
  return new PerfCollector({
    manager,
    hostname: ctx.hostname,
    procfs: ctx.procfs,
    logger,
    events: supportedEvents(LINUX, events, logger),
    envVars: ctx.flags.strings('collector.perf.env-var'),
  });
}
