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
