// InfiniBand / OPA HCA ports from /sys/class/infiniband, as node_exporter's infiniband collector with the
// `ceems_` prefix and no hostname label (spec exporter.md §5.8).

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, isNotFound } from '../../common/errno.js';
import { type ReadFile, readFileFast } from '../../common/fsread.js';
import type { Logger } from '../../common/logger.js';
import {
  type Collector,
  type CollectorContext,
  type CollectorDefinition,
  type Emitter,
  NoDataError,
} from '../collector.js';

export interface CounterSpec {
  /** Path relative to the port directory. */
  readonly file: string;
  readonly metric: string;
  readonly help: string;
  /** Data counters count 4-octet words (one per lane); ×4 gives octets. */
  readonly words?: boolean;
}

const RECEIVED_OCTETS = 'Number of data octets received on all links';
const TRANSMITTED_OCTETS = 'Number of data octets transmitted on all links';

export const COUNTERS: readonly CounterSpec[] = [
  {
    file: 'counters_ext/port_multicast_rcv_packets',
    metric: 'legacy_multicast_packets_received_total',
    help: 'Number of multicast packets received',
  },
  {
    file: 'counters_ext/port_multicast_xmit_packets',
    metric: 'legacy_multicast_packets_transmitted_total',
    help: 'Number of multicast packets transmitted',
  },
  {
    file: 'counters_ext/port_rcv_data_64',
    metric: 'legacy_data_received_bytes_total',
    help: RECEIVED_OCTETS,
    words: true,
  },
  {
    file: 'counters_ext/port_rcv_packets_64',
    metric: 'legacy_packets_received_total',
    help: 'Number of data packets received on all links',
  },
  {
    file: 'counters_ext/port_unicast_rcv_packets',
    metric: 'legacy_unicast_packets_received_total',
    help: 'Number of unicast packets received',
  },
  {
    file: 'counters_ext/port_unicast_xmit_packets',
    metric: 'legacy_unicast_packets_transmitted_total',
    help: 'Number of unicast packets transmitted',
  },
  {
    file: 'counters_ext/port_xmit_data_64',
    metric: 'legacy_data_transmitted_bytes_total',
    help: TRANSMITTED_OCTETS,
    words: true,
  },
  {
    file: 'counters_ext/port_xmit_packets_64',
    metric: 'legacy_packets_transmitted_total',
    help: 'Number of data packets received on all links', // sic, kept byte-identical
  },
  {
    file: 'counters/excessive_buffer_overrun_errors',
    metric: 'excessive_buffer_overrun_errors_total',
    help: 'Number of times that OverrunErrors consecutive flow control update periods occurred, each having at least one overrun error.',
  },
  {
    file: 'counters/link_downed',
    metric: 'link_downed_total',
    help: 'Number of times the link failed to recover from an error state and went down',
  },
  {
    file: 'counters/link_error_recovery',
    metric: 'link_error_recovery_total',
    help: 'Number of times the link successfully recovered from an error state',
  },
  {
    file: 'counters/local_link_integrity_errors',
    metric: 'local_link_integrity_errors_total',
    help: 'Number of times that the count of local physical errors exceeded the threshold specified by LocalPhyErrors.',
  },
  {
    file: 'counters/multicast_rcv_packets',
    metric: 'multicast_packets_received_total',
    help: 'Number of multicast packets received (including errors)',
  },
  {
    file: 'counters/multicast_xmit_packets',
    metric: 'multicast_packets_transmitted_total',
    help: 'Number of multicast packets transmitted (including errors)',
  },
  {
    file: 'counters/port_rcv_constraint_errors',
    metric: 'port_constraint_errors_received_total',
    help: 'Number of packets received on the switch physical port that are discarded',
  },
  {
    file: 'counters/port_xmit_constraint_errors',
    metric: 'port_constraint_errors_transmitted_total',
    help: 'Number of packets not transmitted from the switch physical port',
  },
  {
    file: 'counters/port_rcv_data',
    metric: 'port_data_received_bytes_total',
    help: RECEIVED_OCTETS,
    words: true,
  },
  {
    file: 'counters/port_xmit_data',
    metric: 'port_data_transmitted_bytes_total',
    help: TRANSMITTED_OCTETS,
    words: true,
  },
  {
    file: 'counters/port_rcv_discards',
    metric: 'port_discards_received_total',
    help: 'Number of inbound packets discarded by the port because the port is down or congested',
  },
  {
    file: 'counters/port_xmit_discards',
    metric: 'port_discards_transmitted_total',
    help: 'Number of outbound packets discarded by the port because the port is down or congested',
  },
  {
    file: 'counters/port_rcv_errors',
    metric: 'port_errors_received_total',
    help: 'Number of packets containing an error that were received on this port',
  },
  {
    file: 'counters/port_rcv_packets',
    metric: 'port_packets_received_total',
    help: 'Number of packets received on all VLs by this port (including errors)',
  },
  {
    file: 'counters/port_xmit_packets',
    metric: 'port_packets_transmitted_total',
    help: 'Number of packets transmitted on all VLs from this port (including errors)',
  },
  {
    file: 'counters/port_xmit_wait',
    metric: 'port_transmit_wait_total',
    help: 'Number of ticks during which the port had data to transmit but no data was sent during the entire tick',
  },
  {
    file: 'counters/unicast_rcv_packets',
    metric: 'unicast_packets_received_total',
    help: 'Number of unicast packets received (including errors)',
  },
  {
    file: 'counters/unicast_xmit_packets',
    metric: 'unicast_packets_transmitted_total',
    help: 'Number of unicast packets transmitted (including errors)',
  },
  {
    file: 'counters/port_rcv_remote_physical_errors',
    metric: 'port_receive_remote_physical_errors_total',
    help: 'Number of packets marked with the EBP (End of Bad Packet) delimiter received on the port.',
  },
  {
    file: 'counters/port_rcv_switch_relay_errors',
    metric: 'port_receive_switch_relay_errors_total',
    help: 'Number of packets that could not be forwarded by the switch.',
  },
  {
    file: 'counters/symbol_error',
    metric: 'symbol_error_total',
    help: 'Number of minor link errors detected on one or more physical lanes.',
  },
  {
    file: 'counters/VL15_dropped',
    metric: 'vl15_dropped_total',
    help: 'Number of incoming VL15 packets dropped due to resource limitations.',
  },
];

/** `"4: ACTIVE"` → 4. */
export function parseState(text: string, file: string): number {
  const parts = text.split(':');
  const id = parts[0]?.trim() ?? '';
  if (parts.length !== 2 || !/^\d+$/.test(id))
    throw new Error(`could not parse ${file}: expected 'ID: NAME', got '${text.trim()}'`);
  return Number(id);
}

/** `"100 Gb/sec (4X EDR)"` → bytes per second (Gb/s × 125 000 000; the figure is parsed as float32, as in Go). */
export function parseRate(text: string, file: string): number {
  const space = text.indexOf(' ');
  const figure = space < 0 ? '' : text.slice(0, space).trim();
  if (!/^\d+(\.\d+)?$/.test(figure))
    throw new Error(`could not parse ${file}: expected '<N> Gb/sec (...)', got '${text.trim()}'`);
  return Math.trunc(Math.fround(Number(figure)) * 125_000_000);
}

/** Errors that mean "this counter is not available here" (absent, root-only, unsupported by the driver). */
function counterUnavailable(e: unknown): boolean {
  const code = errnoCode(e);
  return (
    isNotFound(e) || code === 'EACCES' || code === 'EINVAL' || code === 'EOPNOTSUPP' || code === 'EISDIR'
  );
}

export interface InfinibandPort {
  readonly device: string;
  /** Port number as a decimal string. */
  readonly port: string;
  readonly dir: string;
}

export interface InfinibandDevice {
  readonly name: string;
  readonly dir: string;
  readonly ports: readonly InfinibandPort[];
}

/**
 * The devices under `<sysfs>/class/infiniband` with their ports, sorted; devices vanishing meanwhile are
 * skipped. NoDataError when the class does not exist (no InfiniBand/RDMA hardware or driver).
 */
export function infinibandDevices(sysfs: string, logger: Logger): InfinibandDevice[] {
  const root = join(sysfs, 'class', 'infiniband');
  let names: string[];
  try {
    names = readdirSync(root).sort();
  } catch (e) {
    if (isNotFound(e)) throw new NoDataError(`infiniband statistics not found (${root})`);
    throw e;
  }
  const devices: InfinibandDevice[] = [];
  for (const name of names) {
    const dir = join(root, name);
    let ports: string[];
    try {
      ports = readdirSync(join(dir, 'ports')).sort();
    } catch (e) {
      if (!isNotFound(e)) throw e;
      logger.debug({ device: name }, 'infiniband: device vanished during the scrape');
      continue;
    }
    devices.push({
      name,
      dir,
      ports: ports.map((port) => {
        if (!/^\d+$/.test(port)) throw new Error(`unexpected port directory ${join(dir, 'ports', port)}`);
        return { device: name, port: String(Number(port)), dir: join(dir, 'ports', port) };
      }),
    });
  }
  return devices;
}

/** The port counters of COUNTERS whose file exists and is numeric, data counters converted to octets. */
export function readPortCounters(
  portDir: string,
  read: ReadFile,
): { readonly spec: CounterSpec; readonly value: number }[] {
  const found: { spec: CounterSpec; value: number }[] = [];
  for (const spec of COUNTERS) {
    let text: string;
    try {
      text = read(join(portDir, spec.file)).trim();
    } catch (e) {
      if (counterUnavailable(e)) continue;
      throw e;
    }
    // Drivers print e.g. `N/A (no PMA)` for counters they cannot read.
    if (!/^\d+$/.test(text)) continue;
    const raw = BigInt(text);
    found.push({ spec, value: Number(spec.words ? BigInt.asUintN(64, raw * 4n) : raw) });
  }
  return found;
}

export class InfinibandCollector implements Collector {
  constructor(
    private readonly ctx: CollectorContext,
    private readonly read: ReadFile = readFileFast,
  ) {}

  update(out: Emitter): void {
    for (const device of infinibandDevices(this.ctx.sysfs, this.ctx.logger)) {
      out.emit(
        'ceems_infiniband_info',
        'gauge',
        'Non-numeric data from /sys/class/infiniband/<device>, value is always 1.',
        {
          board_id: this.optional(join(device.dir, 'board_id')),
          device: device.name,
          firmware_version: this.optional(join(device.dir, 'fw_ver')),
          hca_type: this.optional(join(device.dir, 'hca_type')),
        },
        1,
      );
      for (const port of device.ports) {
        try {
          this.updatePort(out, port);
        } catch (e) {
          if (!isNotFound(e)) throw e;
          this.ctx.logger.debug(
            { device: port.device, port: port.port },
            'infiniband: port vanished during the scrape',
          );
        }
      }
    }
  }

  /** Trimmed file content; `""` when the driver does not expose the file. */
  private optional(file: string): string {
    try {
      return this.read(file).trim();
    } catch (e) {
      if (isNotFound(e)) return '';
      throw e;
    }
  }

  private updatePort(out: Emitter, { device, port, dir }: InfinibandPort): void {
    const labels = { device, port };
    // Read all port attributes first so that a vanished port emits nothing at all.
    const file = (name: string) => join(dir, name);
    const state = parseState(this.read(file('state')), file('state'));
    const physState = parseState(this.read(file('phys_state')), file('phys_state'));
    const rate = parseRate(this.read(file('rate')), file('rate'));
    const counters = readPortCounters(dir, this.read);
    out.emit(
      'ceems_infiniband_state_id',
      'gauge',
      'State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, 5: act defer)',
      labels,
      state,
    );
    out.emit(
      'ceems_infiniband_physical_state_id',
      'gauge',
      'Physical state of the InfiniBand port (0: no change, 1: sleep, 2: polling, 3: disable, 4: shift, 5: link up, 6: link error recover, 7: phytest)',
      labels,
      physState,
    );
    out.emit('ceems_infiniband_rate_bytes_per_second', 'gauge', 'Maximum signal transfer rate', labels, rate);
    for (const { spec, value } of counters)
      out.emit(`ceems_infiniband_${spec.metric}`, 'counter', spec.help, labels, value);
  }
}

export const infiniband: CollectorDefinition = {
  name: 'infiniband',
  defaultEnabled: false,
  flags: [],
  create: (ctx) => new InfinibandCollector(ctx),
};
