// One scrape: all enabled collectors run concurrently, each bounded by a timeout; a failing or slow
// collector reports ceems_scrape_collector_success 0 while the others still report.

import type { MetricFamily } from '../common/exposition.js';
import type { Logger } from '../common/logger.js';
import { enterFatalSignalSection } from '../common/signalguard.js';
import { type Collector, FamilySet, NoDataError } from './collector.js';

export interface NamedCollector {
  readonly name: string;
  readonly collector: Collector;
}

/** Sub-collectors (perf, ebpf, rdma) emit their own duration sample into this family. */
export const DURATION_FAMILY = 'ceems_scrape_collector_duration_seconds';
export const DURATION_HELP = 'ceems_exporter: Duration of a collector scrape.';

class TimeoutError extends Error {}

/** The exporter is stopping: a scrape in flight answers now instead of holding back the shutdown. */
class StoppingError extends Error {}

async function runOne(
  c: NamedCollector,
  timeoutMs: number,
  log: Logger,
  stopping?: AbortSignal,
): Promise<{ set: FamilySet; ok: boolean; seconds: number }> {
  const set = new FamilySet();
  const controller = new AbortController();
  const start = process.hrtime.bigint();
  let timer: NodeJS.Timeout | undefined;
  let onStop: (() => void) | undefined;
  let ok = true;
  try {
    await Promise.race([
      Promise.resolve().then(() => {
        // its synchronous fs calls (readdir, stat, reads) may block in the kernel: signals stay fatal meanwhile
        enterFatalSignalSection();
        return c.collector.update(set, controller.signal);
      }),
      new Promise((_, reject) => {
        timer = setTimeout(() => {
          controller.abort();
          reject(new TimeoutError(`timed out after ${timeoutMs} ms`));
        }, timeoutMs);
        onStop = () => {
          controller.abort();
          reject(new StoppingError('exporter is stopping'));
        };
        if (stopping?.aborted) onStop();
        else stopping?.addEventListener('abort', onStop, { once: true });
      }),
    ]);
  } catch (e) {
    ok = false;
    const err = e as Error;
    if (e instanceof NoDataError)
      log.debug({ collector: c.name, err: err.message }, 'collector returned no data');
    else if (e instanceof StoppingError)
      log.debug({ collector: c.name, err: err.message }, 'collector interrupted');
    else log.error({ collector: c.name, err: err.message }, 'collector failed');
  } finally {
    clearTimeout(timer);
    if (onStop) stopping?.removeEventListener('abort', onStop);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  // A timed-out collector's partial samples are discarded: a scrape never mixes two points in time.
  return { set: ok ? set : new FamilySet(), ok, seconds };
}

/** One scrape; `stopping` (the exporter's shutdown) ends the collectors still running as failed. */
export async function scrape(
  collectors: readonly NamedCollector[],
  timeoutMs: number,
  log: Logger,
  stopping?: AbortSignal,
): Promise<MetricFamily[]> {
  const results = await Promise.all(collectors.map((c) => runOne(c, timeoutMs, log, stopping)));
  const all = new FamilySet();
  results.forEach((r, i) => {
    const name = collectors[i]!.name;
    all.emit(DURATION_FAMILY, 'gauge', DURATION_HELP, { collector: name, subcollector: '' }, r.seconds);
    all.emit(
      'ceems_scrape_collector_success',
      'gauge',
      'ceems_exporter: Whether a collector succeeded.',
      { collector: name },
      r.ok ? 1 : 0,
    );
  });
  for (const r of results) all.merge(r.set);
  const dups = all.duplicates;
  if (dups.length > 0)
    log.error({ series: dups.slice(0, 5).join(', '), count: dups.length }, 'duplicate series dropped');
  return [...all.families.values()];
}
