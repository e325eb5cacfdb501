// The rdma sub-collector of the slurm, libvirt and k8s collectors (spec exporter.md §10.3): per-unit RDMA
// resources and QP hardware counters from the iproute2 `rdma` tool, mapped to units by PID, and the
// node's port counters from sysfs.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from '../../common/command.js';
import { type ReadFile, readFileFast } from '../../common/fsread.js';
import type { Logger } from '../../common/logger.js';
import { rootCommandOptions } from '../../common/privileges.js';
import type { UnitSubCollector } from '../cgroup/collector.js';
import type { CgroupUnit } from '../cgroup/walk.js';
import type { CollectorContext, Emitter } from '../collector.js';
import { infinibandDevices, parseState, readPortCounters } from '../collectors/infiniband.js';
import { lookPath } from '../gpu/command.js';
import {
  type Parsed,
  parseCqs,
  parseMrs,
  parseQpCounters,
  parseQpModes,
  parseQps,
  QP_HW_COUNTERS,
} from './parse.js';

/**
 * Time all `rdma` runs of one scrape may take together. Well below the default collector timeout (10 s)
 * so that a hanging tool costs the unit collector its RDMA samples only, not its cgroup samples.
 */
export const RDMA_SCRAPE_BUDGET_MS = 3000;

const G = 'gauge';
const C = 'counter';

/** System-wide port counters exported per manager (same sysfs files and HELP as the infiniband collector). */
const PORT_COUNTERS: ReadonlySet<string> = new Set([
  'port_constraint_errors_received_total',
  'port_constraint_errors_transmitted_total',
  'port_data_received_bytes_total',
  'port_data_transmitted_bytes_total',
  'port_discards_received_total',
  'port_discards_transmitted_total',
  'port_errors_received_total',
  'port_packets_received_total',
  'port_packets_transmitted_total',
]);

const HW_COUNTER_HELP: Record<(typeof QP_HW_COUNTERS)[number], string> = {
  rx_write_requests: 'Number of received write requests for the associated QPs',
  rx_read_requests: 'Number of received read requests for the associated QPs',
  rx_atomic_requests: 'Number of received atomic request for the associated QPs',
  req_cqe_error: 'Number of times requester detected CQEs completed with errors',
  req_cqe_flush_error: 'Number of times requester detected CQEs completed with flushed errors',
  req_remote_access_errors: 'Number of times requester detected remote access errors',
  req_remote_invalid_request: 'Number of times requester detected remote invalid request errors',
  resp_cqe_error: 'Number of times responder detected CQEs completed with errors',
  resp_cqe_flush_error: 'Number of times responder detected CQEs completed with flushed errors',
  resp_local_length_error: 'Number of times responder detected local length errors',
  resp_remote_access_errors: 'Number of times responder detected remote access errors',
};

export interface RdmaOptions {
  readonly manager: string;
  readonly hostname: string;
  readonly sysfs: string;
  readonly logger: Logger;
  /** Path of the `rdma` tool; undefined when it is not installed (port counters only). */
  readonly rdmaCmd: string | undefined;
  /** Budget of the `rdma` runs of one scrape (and of each run at stop()). */
  readonly timeoutMs?: number;
  readonly read?: ReadFile;
}

/**
 * One unit's totals of one resource kind across all its lines, labelled — as the original CEEMS (Go) does —
 * with the device (and port) of the unit's first line: one series per unit and family.
 */
interface UnitTotals {
  readonly device: string;
  readonly port: string;
  count: number;
  /** Σ `mrlen` (MRs) or Σ `cqe` (CQs). */
  length: number;
  /** QP hardware counters summed over the unit's counter lines [D-EXP-21]. */
  readonly counters: Map<string, number>;
}

/** The unit's totals in `byUnit`, created with the device (and port) of the unit's first line. */
function totalsOf(
  byUnit: Map<string, UnitTotals>,
  uuid: string,
  first: { readonly device: string; readonly port?: string },
): UnitTotals {
  let t = byUnit.get(uuid);
  if (!t) {
    t = { device: first.device, port: first.port ?? '', count: 0, length: 0, counters: new Map() };
    byUnit.set(uuid, t);
  }
  return t;
}

export class RdmaCollector implements UnitSubCollector {
  private readonly timeoutMs: number;
  private readonly read: ReadFile;
  /** Mellanox links → per-PID QP counters on; filled by the first successful mode check. */
  private modes: Map<string, boolean> | undefined;
  /** Links switched to `auto type,pid on` by this process, switched off again at stop(). */
  private readonly enabledHere = new Set<string>();

  constructor(private readonly o: RdmaOptions) {
    this.timeoutMs = o.timeoutMs ?? RDMA_SCRAPE_BUDGET_MS;
    this.read = o.read ?? readFileFast;
  }

  async update(out: Emitter, units: readonly CgroupUnit[], signal: AbortSignal): Promise<void> {
    // throws NoDataError without /sys/class/infiniband: no RDMA hardware, nothing to run
    const devices = infinibandDevices(this.o.sysfs, this.o.logger);
    if (this.o.rdmaCmd !== undefined) {
      const deadline = Date.now() + this.timeoutMs;
      if (devices.some((d) => d.name.startsWith('mlx'))) await this.enablePerPidCounters(deadline, signal);
      await this.updateUnits(out, units, deadline, signal);
    }
    for (const d of devices)
      for (const p of d.ports) {
        try {
          this.updatePort(out, p.device, p.port, p.dir);
        } catch (e) {
          this.o.logger.error(
            { device: p.device, port: p.port, err: (e as Error).message },
            'rdma: cannot read port counters',
          );
        }
      }
  }

  /** Switches per-PID QP counters off again on the links this process switched on. */
  async stop(): Promise<void> {
    for (const link of this.enabledHere) {
      try {
        await this.run(['statistic', 'qp', 'set', 'link', link, 'auto', 'off'], undefined, undefined, true);
        this.enabledHere.delete(link);
        this.o.logger.info({ link }, 'rdma: per-PID QP counters disabled');
      } catch (e) {
        this.o.logger.warn({ link, err: (e as Error).message }, 'rdma: cannot disable per-PID QP counters');
      }
    }
  }

  /**
   * Runs `rdma args`, killed at `deadline` (epoch ms) or when `signal` aborts; `asRoot`: as uid 0 through
   * cap_setuid/cap_setgid when the exporter runs as its run-as user (switching QP counters is root-only).
   */
  private async run(
    args: readonly string[],
    deadline?: number,
    signal?: AbortSignal,
    asRoot = false,
  ): Promise<string> {
    const { stdout } = await runCommand([this.o.rdmaCmd!, ...args], {
      timeoutMs: deadline === undefined ? this.timeoutMs : Math.max(1, deadline - Date.now()),
      env: { ...process.env, LC_ALL: 'C' },
      ...(signal ? { signal } : {}),
      ...(asRoot ? rootCommandOptions() : {}),
    });
    return stdout;
  }

  /**
   * Mellanox links count QP statistics per PID only with `auto type,pid on`: checked once, and set on
   * each scrape until it succeeds (it needs root).
   */
  private async enablePerPidCounters(deadline: number, signal: AbortSignal): Promise<void> {
    if (!this.modes) {
      let text: string;
      try {
        text = await this.run(['statistic', 'qp', 'mode'], deadline, signal);
      } catch (e) {
        this.o.logger.error({ err: (e as Error).message }, 'rdma: cannot read QP counter modes');
        return;
      }
      const parsed = parseQpModes(text);
      this.reportMalformed('statistic qp mode', parsed);
      this.modes = new Map(
        parsed.entries.filter((m) => m.device.startsWith('mlx')).map((m) => [m.link, m.autoOn]),
      );
    }
    for (const [link, on] of this.modes) {
      if (on) continue;
      try {
        await this.run(
          ['statistic', 'qp', 'set', 'link', link, 'auto', 'type,pid', 'on'],
          deadline,
          signal,
          true,
        );
        this.modes.set(link, true);
        this.enabledHere.add(link);
        this.o.logger.info({ link }, 'rdma: per-PID QP counters enabled');
      } catch (e) {
        this.o.logger.error(
          { link, err: (e as Error).message },
          'rdma: cannot enable per-PID QP counters; retrying next scrape',
        );
      }
    }
  }

  private reportMalformed(command: string, parsed: Parsed<unknown>): void {
    if (parsed.malformed.length > 0)
      this.o.logger.warn(
        { command: `rdma ${command}`, count: parsed.malformed.length, first: parsed.malformed[0] },
        'rdma: skipped output lines that could not be parsed',
      );
  }

  /**
   * Runs the commands once (concurrently) and emits the per-unit families of what succeeded. QP hardware
   * counters are read only when `statistic qp mode` listed a Mellanox link, as the original does: other
   * devices' `statistic qp show` lines are never reported.
   */
  private async updateUnits(
    out: Emitter,
    units: readonly CgroupUnit[],
    deadline: number,
    signal: AbortSignal,
  ): Promise<void> {
    const unitOf = new Map<number, string>();
    for (const u of units) for (const pid of u.pids) unitOf.set(pid, u.uuid);
    /** The entries of one command that belong to a unit, with that unit; none when the command failed. */
    const read = async <T extends { pid: number }>(
      args: readonly string[],
      parse: (text: string) => Parsed<T>,
    ): Promise<Array<[T, string]>> => {
      let text: string;
      try {
        text = await this.run(args, deadline, signal);
      } catch (e) {
        this.o.logger.error({ err: (e as Error).message }, 'rdma: command failed; its metrics are skipped');
        return [];
      }
      const parsed = parse(text);
      this.reportMalformed(args.join(' '), parsed);
      return parsed.entries.flatMap((e): Array<[T, string]> => {
        const uuid = unitOf.get(e.pid);
        return uuid === undefined ? [] : [[e, uuid]];
      });
    };
    const perPidCounters = this.modes !== undefined && this.modes.size > 0;
    const [mrs, cqs, qps, qpCounters] = await Promise.all([
      read(['resource', 'show', 'mr'], parseMrs),
      read(['resource', 'show', 'cq'], parseCqs),
      read(['resource', 'show', 'qp'], parseQps),
      perPidCounters ? read(['statistic', 'qp', 'show'], parseQpCounters) : [],
    ]);
    const mr = new Map<string, UnitTotals>();
    for (const [e, uuid] of mrs) {
      const t = totalsOf(mr, uuid, e);
      t.count++;
      t.length += e.mrlen;
    }
    const cq = new Map<string, UnitTotals>();
    for (const [e, uuid] of cqs) {
      const t = totalsOf(cq, uuid, e);
      t.count++;
      t.length += e.cqe;
    }
    // QP lines first: a unit's QP series carry the link of its first QP, its counters included
    const qp = new Map<string, UnitTotals>();
    for (const [e, uuid] of qps) totalsOf(qp, uuid, e).count++;
    for (const [e, uuid] of qpCounters) {
      const t = totalsOf(qp, uuid, e);
      for (const [name, v] of e.counters) t.counters.set(name, (t.counters.get(name) ?? 0) + v);
    }
    this.emitUnits(out, mr, cq, qp);
  }

  private labels(device: string, port: string): Record<string, string> {
    return { device, hostname: this.o.hostname, manager: this.o.manager, port };
  }

  private emitUnits(
    out: Emitter,
    mrs: ReadonlyMap<string, UnitTotals>,
    cqs: ReadonlyMap<string, UnitTotals>,
    qps: ReadonlyMap<string, UnitTotals>,
  ): void {
    const labels = (uuid: string, t: UnitTotals) => ({ ...this.labels(t.device, t.port), uuid });
    for (const [uuid, t] of mrs) {
      out.emit('ceems_rdma_mrs_active', G, 'Number of active MRs', labels(uuid, t), t.count);
      out.emit('ceems_rdma_mrs_len_active', G, 'Length of active MRs', labels(uuid, t), t.length);
    }
    for (const [uuid, t] of cqs) {
      out.emit('ceems_rdma_cqs_active', G, 'Number of active CQs', labels(uuid, t), t.count);
      out.emit('ceems_rdma_cqe_len_active', G, 'Length of active CQs', labels(uuid, t), t.length);
    }
    for (const [uuid, t] of qps) {
      const l = labels(uuid, t);
      if (t.count > 0) out.emit('ceems_rdma_qps_active', G, 'Number of active QPs', l, t.count);
      for (const name of QP_HW_COUNTERS) {
        const v = t.counters.get(name) ?? 0;
        if (v > 0) out.emit(`ceems_rdma_${name}`, C, HW_COUNTER_HELP[name], l, v);
      }
    }
  }

  private updatePort(out: Emitter, device: string, port: string, dir: string): void {
    const l = this.labels(device, port);
    const stateFile = join(dir, 'state');
    const state = parseState(this.read(stateFile), stateFile);
    const counters = readPortCounters(dir, this.read).filter(
      (c) => PORT_COUNTERS.has(c.spec.metric) && c.value > 0,
    );
    if (state > 0)
      out.emit(
        'ceems_rdma_state_id',
        G,
        'State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, 5: act defer)',
        l,
        state,
      );
    for (const { spec, value } of counters) out.emit(`ceems_rdma_${spec.metric}`, C, spec.help, l, value);
  }
}

/** The rdma sub-collector, once `--collector.rdma.stats` is given. */
export function createRdmaSubCollector(ctx: CollectorContext, manager: string): RdmaCollector {
  const given = ctx.flags.string('collector.rdma.cmd');
  const rdmaCmd = given || lookPath('rdma');
  if (given && !existsSync(given)) throw new Error(`--collector.rdma.cmd: '${given}' does not exist`);
  if (!rdmaCmd)
    ctx.logger.warn(
      { subcollector: 'rdma' },
      "rdma command not found in $PATH; only RDMA port counters are exported (install iproute2's rdma tool)",
    );
  return new RdmaCollector({
    manager,
    hostname: ctx.hostname,
    sysfs: ctx.sysfs,
    logger: ctx.logger.child({ subcollector: 'rdma' }),
    rdmaCmd,
  });
}
