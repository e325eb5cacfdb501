// Settings of the built-in web view (/ui/): the API server's flags --web.ui.lb-url and
// --web.ui.basic-auth-users (or their environment variables), checked at start-up.

export interface WebViewOptions {
  /** Headers carrying the user name, as the API server reads them (`--web.user-header-name`). */
  userHeaders: readonly string[];
  /** Basic-auth login → CEEMS user name, for a standalone setup (a login not listed is its own name). */
  basicAuthUsers: ReadonlyMap<string, string>;
  /** Base URL of ceems_lb's TSDB listener; unset = the unit page has no time series. */
  lbUrl?: string;
  /** Time limit of one request to the LB (ms). */
  lbTimeoutMs: number;
}

/** `--web.ui.basic-auth-users`: `login=user,login2=user2` (spaces ignored). */
export function parseUserMap(text: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const pair of (text ?? '').split(',')) {
    const p = pair.trim();
    if (!p) continue;
    const eq = p.indexOf('=');
    if (eq <= 0 || eq === p.length - 1) throw new Error(`invalid login=user pair '${p}'`);
    out.set(p.slice(0, eq).trim(), p.slice(eq + 1).trim());
  }
  return out;
}

/** Options from the flag values (empty = unset); a malformed value throws, naming the flag. */
export function webViewOptions(
  userHeaders: readonly string[],
  lbUrl: string | undefined,
  basicAuthUsers: string | undefined,
): WebViewOptions {
  const lb = lbUrl?.trim();
  if (lb && !URL.canParse(lb)) throw new Error(`--web.ui.lb-url: '${lb}' is not a URL`);
  let users: Map<string, string>;
  try {
    users = parseUserMap(basicAuthUsers);
  } catch (e) {
    throw new Error(`--web.ui.basic-auth-users: ${(e as Error).message}`);
  }
  return {
    userHeaders,
    basicAuthUsers: users,
    lbUrl: lb ? lb.replace(/\/+$/, '') : undefined,
    lbTimeoutMs: 10_000,
  };
}
