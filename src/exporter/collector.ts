// Collector contract of the exporter (modelled on node_exporter): each collector lives in its own file,
// declares its flags and default state, and fails alone.

import { isNotFound } from '../common/errno.js';
import { type Labels, type MetricFamily, type MetricType, seriesKey } from '../common/exposition.js';
import type { FlagSpec, ParsedFlags } from '../common/flags.js';
import type { Logger } from '../common/logger.js';

/** The data source does not exist on this node: success 0, logged at debug level only. */
export class NoDataError extends Error {}

/** `read(path)`, with a missing file or directory turned into NoDataError (the node has no such data). */
export function readOrNoData<T>(path: string, read: (path: string) => T): T {
  try {
    return read(path);
  } catch (e) {
    if (isNotFound(e)) throw new NoDataError(`${path} does not exist`);
    throw e;
  }
}

export interface CollectorContext {
  readonly hostname: string;
  readonly procfs: string;
  readonly sysfs: string;
  readonly cgroupfs: string;
  readonly flags: ParsedFlags;
  readonly logger: Logger;
}

/** Receives the samples of one collector during one scrape. */
export interface Emitter {
  emit(name: string, type: MetricType, help: string, labels: Labels, value: number): void;
}

export interface Collector {
  /** Emits the current samples; may be async (commands, HTTP). Must honour `signal` when it waits. */
  update(out: Emitter, signal: AbortSignal): void | Promise<void>;
  /** Releases resources at shutdown. */
  stop?(): void | Promise<void>;
}

export interface CollectorDefinition {
  readonly name: string;
  readonly defaultEnabled: boolean;
  readonly flags: readonly FlagSpec[];
  /** Builds the collector at start-up; throwing aborts start-up with that message. */
  create(ctx: CollectorContext): Collector | Promise<Collector>;
}

/** Accumulates samples into families; keeps the first of duplicate series. */
export class FamilySet implements Emitter {
  readonly families = new Map<string, MetricFamily>();
  private readonly keys = new Set<string>();
  duplicates: string[] = [];

  emit(name: string, type: MetricType, help: string, labels: Labels, value: number): void {
    let f = this.families.get(name);
    if (!f) {
      f = { name, type, help, samples: [] };
      this.families.set(name, f);
    }
    const key = seriesKey(name, labels);
    if (this.keys.has(key)) {
      this.duplicates.push(key.replace(/\xff/g, ' ').replace(/\xfe/g, '='));
      return;
    }
    this.keys.add(key);
    f.samples.push({ labels, value });
  }

  /** Moves the samples of `other` in; series already present are dropped and reported. */
  merge(other: FamilySet): void {
    for (const f of other.families.values())
      for (const s of f.samples) this.emit(f.name, f.type, f.help, s.labels, s.value);
  }
}
