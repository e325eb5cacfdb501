// Identity headers (`X-Grafana-User` and the like), read from Node's raw header list so that a repeated
// header is seen instead of being joined or silently picking one copy. Shared by the API server and the LB.
//
// Accepted value: 1 to 256 bytes of letters, digits and `. _ - @ + \ :`, nothing else:
// * Unix/SLURM names are `[A-Za-z0-9._-]`; `user@domain` and `DOMAIN\user` are the SSSD/AD forms;
//   Grafana logins are usually such names or e-mail addresses (`+` for sub-addresses); Kubernetes user
//   names contain `:` (`system:serviceaccount:<ns>:<sa>`, `oidc:<name>`).
// * Refused: whitespace (a name never has it; a trimmed copy could name someone else), `,` (proxies fold a
//   repeated header into a comma-separated list), `;`, quotes, `/`, `%`, `$`, control and non-ASCII
//   characters (Node hands header bytes over as Latin-1, so UTF-8 names would not compare equal anyway).
// * 256 bytes: above the longest name any source allows (Linux LOGIN_NAME_MAX 256 with its NUL, Grafana's
//   login column 190, Keystone names 255, e-mail addresses 254), small enough to keep logs and SQL bounded.

export const MAX_IDENTITY_BYTES = 256;

/** Why a header does not identify anybody; `absent` and `empty` let a caller try its next header. */
export type IdentityFailure =
  | 'absent'
  | 'empty'
  | 'duplicated'
  | 'too_long'
  | 'whitespace'
  | 'invalid_character';

export type IdentityHeader =
  | { ok: true; value: string }
  | { ok: false; failure: IdentityFailure; reason: string };

const ALLOWED = /^[A-Za-z0-9._@+\\:-]+$/;
const NOT_ALLOWED = /[^A-Za-z0-9._@+\\:-]/;

const fail = (failure: IdentityFailure, reason: string): IdentityHeader => ({ ok: false, failure, reason });

/** Checks one header value as a user name. */
export function checkIdentity(value: string): IdentityHeader {
  if (value === '') return fail('empty', 'empty value');
  if (value.length > MAX_IDENTITY_BYTES)
    return fail('too_long', `value longer than ${MAX_IDENTITY_BYTES} bytes`);
  if (value.trim() !== value) return fail('whitespace', 'leading or trailing whitespace');
  if (!ALLOWED.test(value)) {
    const bad = NOT_ALLOWED.exec(value)!;
    const code = bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
    return fail(
      'invalid_character',
      `character U+${code} at position ${bad.index + 1} is not allowed in a user name (letters, digits and . _ - @ + \\ : only)`,
    );
  }
  return { ok: true, value };
}

/**
 * The user name in header `name` (case-insensitive) of `rawHeaders` (Node's `req.rawHeaders`: name, value,
 * name, value…). A header sent more than once is refused even when the copies are equal.
 */
export function readIdentityHeader(rawHeaders: readonly string[], name: string): IdentityHeader {
  const wanted = name.toLowerCase();
  let value: string | undefined;
  let count = 0;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() !== wanted) continue;
    count++;
    value ??= rawHeaders[i + 1]!;
  }
  if (value === undefined) return fail('absent', 'header missing');
  if (count > 1) return fail('duplicated', `header sent ${count} times`);
  return checkIdentity(value);
}
