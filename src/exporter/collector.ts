// Collector contract of the exporter (modelled on node_exporter): each collector lives in its own file,
// declares its flags and default state, and fails alone.

import { isNotFound } from '../common/errno.js';
import {
  keepsOrder,
  LabelCache,
  type Labels,
  type MetricFamily,
  type MetricType,
  markWireOrder,
  seriesKey,
  wireOrder,
} from '../common/exposition.js';
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

/**
 * Accumulates samples into families. Repeated series (same name and labels) are found in one sorted pass
 * when `duplicates` is read, not per sample: the first emitted is kept, later ones are dropped and listed.
 */
export class FamilySet implements Emitter {
  readonly families = new Map<string, MetricFamily>();
  private readonly dropped: string[] = [];
  /** Families that received samples since the last duplicate check. */
  private readonly unchecked = new Set<MetricFamily>();

  emit(name: string, type: MetricType, help: string, labels: Labels, value: number): void {
    let f = this.families.get(name);
    if (!f) {
      f = { name, type, help, samples: [] };
      this.families.set(name, f);
    }
    f.samples.push({ labels, value });
    this.unchecked.add(f);
  }

  /** Moves the samples of `other` in (after those already here); repeated series are dropped on check. */
  merge(other: FamilySet): void {
    for (const f of other.families.values()) {
      const mine = this.families.get(f.name);
      if (!mine) this.families.set(f.name, f);
      else for (const s of f.samples) mine.samples.push(s);
      this.unchecked.add(mine ?? f);
    }
  }

  /** Series dropped as repeated (`name k=v ...`), checking the families that changed since the last read. */
  get duplicates(): string[] {
    if (this.unchecked.size > 0) {
      const cache = new LabelCache();
      for (const f of this.unchecked) this.dedupe(f, cache);
      this.unchecked.clear();
    }
    return this.dropped;
  }

  /**
   * Puts `f` in wire order without repeated series, in place; the first of equal series (in emission order)
   * stays. Marks it as in wire order, so that the encoder does not sort it again.
   */
  private dedupe(f: MetricFamily, cache: LabelCache): void {
    // index loops: this runs once per family and scrape, too rarely to be optimised, and for-of over an array
    // allocates an iterator result per element until it is (1 MB per 1,000-unit scrape)
    const samples = f.samples;
    const n = samples.length;
    if (keepsOrder(f.type)) {
      const seen = new Set<string>();
      let kept = 0;
      for (let i = 0; i < n; i++) {
        const s = samples[i]!;
        const key = seriesKey(s.name ?? f.name, s.labels);
        if (seen.has(key)) this.dropped.push(label(key));
        else {
          seen.add(key);
          samples[kept++] = s;
        }
      }
      samples.length = kept;
      markWireOrder(f);
      return;
    }
    const sorted = wireOrder(f, cache);
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const s = sorted[i]!;
      if (kept > 0 && cache.compare(samples[kept - 1]!, s) === 0) {
        this.dropped.push(label(seriesKey(f.name, s.labels)));
        continue;
      }
      samples[kept++] = s;
    }
    samples.length = kept;
    markWireOrder(f);
  }
}

function label(key: string): string {
  return key.replace(/\xff/g, ' ').replace(/\xfe/g, '=');
}
