// Request parameters read the way the backend (Go net/http) reads them: URL query string plus
// `application/x-www-form-urlencoded` or `multipart/form-data` bodies. Anything the parser here cannot
// read exactly like Go (bad escapes, invalid UTF-8, quoted-printable parts, odd multipart framing) is
// refused instead of guessed, so no parameter reaches the backend unchecked.

export class BadRequestError extends Error {}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** Go `url.QueryUnescape` into bytes, then strict UTF-8 decoding. */
export function queryUnescape(s: string): string {
  if (!/[%+\u0080-\uffff]/.test(s)) return s; // plain ASCII without escapes decodes to itself
  const src = Buffer.from(s, 'utf8');
  const out = Buffer.allocUnsafe(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === 0x25) {
      const hi = hexValue(src[i + 1] ?? -1);
      const lo = hexValue(src[i + 2] ?? -1);
      if (hi < 0 || lo < 0)
        throw new BadRequestError(`invalid URL escape ${JSON.stringify(s.slice(i, i + 3))}`);
      out[n++] = hi * 16 + lo;
      i += 2;
    } else {
      out[n++] = c === 0x2b ? 0x20 : c;
    }
  }
  try {
    return utf8.decode(out.subarray(0, n));
  } catch {
    throw new BadRequestError('invalid UTF-8 in request parameters');
  }
}

export type Params = Array<[string, string]>;

/** Parses `a=1&b=2` like Go's `url.ParseQuery`, but fails on every pair Go would reject. */
export function parseUrlEncoded(text: string): Params {
  const out: Params = [];
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const rawKey = eq < 0 ? pair : pair.slice(0, eq);
    if (rawKey.includes(';')) throw new BadRequestError('invalid semicolon separator in query');
    out.push([queryUnescape(rawKey), eq < 0 ? '' : queryUnescape(pair.slice(eq + 1))]);
  }
  return out;
}

/** Value of a `;`-separated header parameter (`boundary=…`, `name="…"`); refuses RFC 2231 forms. */
function headerParam(header: string, param: string): string | undefined {
  if (new RegExp(`;\\s*${param}\\*`, 'i').test(header))
    throw new BadRequestError(`unsupported extended parameter ${param}*`);
  const m = new RegExp(`;\\s*${param}=(?:"([^"\\\\]*)"|([^";\\s]+))`, 'i').exec(header);
  return m ? (m[1] ?? m[2]) : undefined;
}

/** Text fields (and file parts, which are checked too) of a `multipart/form-data` body. */
export function parseMultipart(body: Buffer, contentType: string): Params {
  const boundary = headerParam(contentType, 'boundary');
  if (!boundary) throw new BadRequestError('multipart body without boundary');
  const delimiter = Buffer.from(`--${boundary}`);
  const separator = Buffer.from(`\r\n--${boundary}`);
  if (!body.subarray(0, delimiter.length).equals(delimiter))
    throw new BadRequestError('multipart body does not start with its boundary');
  const out: Params = [];
  let pos = delimiter.length;
  for (;;) {
    const tail = body.subarray(pos, pos + 2).toString('latin1');
    if (tail === '--') return out;
    if (tail !== '\r\n') throw new BadRequestError('malformed multipart boundary line');
    const headerEnd = body.indexOf('\r\n\r\n', pos + 2);
    const next = body.indexOf(separator, pos + 2);
    if (headerEnd < 0 || next < 0 || headerEnd > next) throw new BadRequestError('truncated multipart body');
    let name: string | undefined;
    for (const line of body
      .subarray(pos + 2, headerEnd)
      .toString('latin1')
      .split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon < 0) throw new BadRequestError('malformed multipart part header');
      const key = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (key === 'content-disposition') name = headerParam(value, 'name');
      if (key === 'content-transfer-encoding' && !/^(7bit|8bit|binary)$/i.test(value))
        throw new BadRequestError(`unsupported multipart Content-Transfer-Encoding ${value}`);
    }
    if (name === undefined) throw new BadRequestError('multipart part without a field name');
    try {
      out.push([name, utf8.decode(body.subarray(headerEnd + 4, next))]);
    } catch {
      throw new BadRequestError('invalid UTF-8 in multipart field');
    }
    pos = next + separator.length;
  }
}
