// Settings of the built-in web view (/ui/). The API server's flags and config file belong to its own
// program; until they carry these, they come from the environment, read once at start-up.

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

/** `CEEMS_API_SERVER_UI_BASIC_AUTH_USERS`: `login=user,login2=user2` (spaces ignored). */
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

/** Options from `CEEMS_API_SERVER_UI_LB_URL` and `CEEMS_API_SERVER_UI_BASIC_AUTH_USERS`. */
export function webViewOptionsFromEnv(
  userHeaders: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): WebViewOptions {
  const lb = env.CEEMS_API_SERVER_UI_LB_URL?.trim();
  if (lb) new URL(lb); // a typo fails the start-up, not the first chart
  return {
    userHeaders,
    basicAuthUsers: parseUserMap(env.CEEMS_API_SERVER_UI_BASIC_AUTH_USERS),
    lbUrl: lb ? lb.replace(/\/+$/, '') : undefined,
    lbTimeoutMs: 10_000,
  };
}
