// One polling wait for every test: jobs reaching a state, Prometheus holding samples, a process switching
// user, a file losing its ACL entries.

/**
 * Calls `check` every `intervalMs` until it returns something other than undefined or false, and returns
 * that. A throwing check counts as "not yet"; after `timeoutMs` the error names `what` and the last throw.
 */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The `ceems_` sample lines of a scrape (at most `max` characters): what a failed wait saw. */
export function scrapeExcerpt(text: string, max = 3000): string {
  const lines = text.split('\n').filter((l) => l.startsWith('ceems_'));
  const out = lines.join('\n');
  return out.length > max ? `${out.slice(0, max)}\n… (${lines.length} lines)` : out || '(no ceems_ samples)';
}

/**
 * Scrapes `url` every `intervalMs` until `pick` returns something; on time-out the error holds the last
 * scrape's `ceems_` lines, so that a failure says what the exporter did report.
 */
export async function waitForScrape<T>(
  url: string,
  what: string,
  timeoutMs: number,
  pick: (text: string) => T | undefined | false,
  intervalMs = 500,
): Promise<T> {
  return waitFor(
    what,
    timeoutMs,
    async () => {
      const text = await (await fetch(url)).text();
      const v = pick(text);
      if (v === undefined || v === false) throw new Error(`last scrape of ${url}:\n${scrapeExcerpt(text)}`);
      return v;
    },
    intervalMs,
  );
}
