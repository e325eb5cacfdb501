// A unit file that cannot be read is logged once per scrape for each unit, file and reason, not once per read:
// the walk and the statistics of a scrape may meet the same broken file, and a broken file stays broken for
// every scrape until it is mended, so the log holds one line per fault and scrape, not one per attempt.

import type { Logger } from '../common/logger.js';

export class FaultLog {
  private readonly seen = new Set<string>();
  private repeats = 0;

  constructor(
    private readonly log: Logger,
    private readonly msg: string,
  ) {}

  /** A scrape begins: each fault may be logged once again; the repeats of the last one are counted at debug. */
  nextScrape(): void {
    if (this.repeats > 0) this.log.debug({ repeats: this.repeats }, `${this.msg}: repeats not logged`);
    this.seen.clear();
    this.repeats = 0;
  }

  /** Logs at error level that `file` of `unit` cannot be read, unless this scrape already did; true if logged. */
  report(unit: string, file: string, reason: string): boolean {
    const key = `${unit}\0${file}\0${reason}`;
    if (this.seen.has(key)) {
      this.repeats++;
      return false;
    }
    this.seen.add(key);
    this.log.error({ uuid: unit, file, err: reason }, this.msg);
    return true;
  }
}
