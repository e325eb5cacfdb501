// Who is asking, exactly as the API server decides it (spec §5.2): the first configured user header
// present and non-empty, else — only when the web config has basic-auth users, whose password the web
// server checked before any route ran — the basic-auth login, mapped to a user name. A login that the
// map names is a person: the header is then ignored, so a person cannot claim another name with it.

import { identify } from '../api/auth.js';
import { checkIdentity } from '../common/identity.js';
import type { WebConfig } from '../common/webconfig.js';

export type Who =
  | { ok: true; user: string; via: 'header' | 'basic-auth' }
  | { ok: false; status: 400 | 401; reason: string };

/** The basic-auth login of an `Authorization` header, or undefined. */
export function basicAuthLogin(header: string | undefined): string | undefined {
  if (!header?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon > 0 ? decoded.slice(0, colon) : undefined;
}

export function whoIs(
  rawHeaders: readonly string[],
  authorization: string | undefined,
  userHeaders: readonly string[],
  webConfig: WebConfig | undefined,
  userMap: ReadonlyMap<string, string>,
): Who {
  // A verified login: the web server answered 401 before any route when the password was wrong.
  const login = webConfig && webConfig.basicAuthUsers.size > 0 ? basicAuthLogin(authorization) : undefined;
  const mapped = login === undefined ? undefined : userMap.get(login);
  if (mapped !== undefined) return { ok: true, user: mapped, via: 'basic-auth' };
  const id = identify(rawHeaders, userHeaders);
  if (id.ok) return { ok: true, user: id.user, via: 'header' };
  if (id.status === 400) return { ok: false, status: 400, reason: id.error };
  if (login !== undefined) {
    const c = checkIdentity(login);
    if (!c.ok) return { ok: false, status: 400, reason: `invalid basic-auth login: ${c.reason}` };
    return { ok: true, user: login, via: 'basic-auth' };
  }
  return { ok: false, status: 401, reason: 'no user identified' };
}
