// Keeps the last good factors of one provider and refreshes them in the background, so a scrape never
// waits for a provider. Static providers are served as they are. A 429 answer backs off (Retry-After when given,
// else doubling from the refresh period) and keeps the cached factors.

import type { Logger } from '../../common/logger.js';
import {
  type DynamicProvider,
  type EmissionFactor,
  type EmissionProvider,
  HttpStatusError,
} from './provider.js';

export interface RunnerTiming {
  /** Retry delay after an error while nothing was fetched yet (default min(refresh, 60 s)). */
  firstRetryMs?: number;
  /** Upper bound of the 429 back-off (default 6 h). */
  maxBackoffMs?: number;
}

export class ProviderRunner {
  factors: EmissionFactor[] = [];
  lastError: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly abort = new AbortController();
  private backoffMs = 0;
  private stopped = false;
  /** Settles when the fetch in progress (if any) has finished; for tests and shutdown. */
  current: Promise<void> = Promise.resolve();

  constructor(
    readonly provider: EmissionProvider,
    private readonly log: Logger,
    private readonly timing: RunnerTiming = {},
  ) {}

  start(): void {
    const p = this.provider;
    if ('factors' in p) this.factors = p.factors.filter((f) => f.value > 0);
    else this.current = this.refresh(p);
  }

  private async refresh(p: DynamicProvider): Promise<void> {
    let nextMs = p.refreshMs;
    try {
      this.factors = (await p.fetch(this.abort.signal)).filter((f) => f.value > 0);
      this.lastError = undefined;
      this.backoffMs = 0;
    } catch (e) {
      if (this.stopped) return;
      const err = e as Error;
      this.lastError = err.message;
      if (e instanceof HttpStatusError && e.status === 429) {
        this.backoffMs = Math.min(
          this.timing.maxBackoffMs ?? 6 * 3600_000,
          e.retryAfterMs ?? (this.backoffMs > 0 ? this.backoffMs * 2 : p.refreshMs * 2),
        );
        nextMs = this.backoffMs;
        this.log.warn(
          { provider: p.id, retry_in_ms: nextMs },
          'Emission factor provider rate-limited us; backing off',
        );
      } else {
        if (this.factors.length === 0) nextMs = this.timing.firstRetryMs ?? Math.min(p.refreshMs, 60_000);
        this.log.error(
          { provider: p.id, err: err.message },
          'Failed to fetch emission factors; keeping the last ones',
        );
      }
    }
    if (!this.stopped) {
      this.timer = setTimeout(() => {
        this.current = this.refresh(p);
      }, nextMs);
      this.timer.unref();
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.abort.abort();
  }
}
