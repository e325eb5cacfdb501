// HTTP GET for the command-line tools: Prometheus HTTPClientConfig auth/TLS (via createHttpClient), gzip
// responses decoded, and network failures turned into messages that name the server that failed.

import { gunzipSync } from 'node:zlib';
import { request } from 'undici';
import type { HttpClient } from '../common/httpclient.js';

/**
 * An error meant for the terminal. Tools prefix the message with `<tool>: error: ` unless it is `verbatim`
 * (messages whose exact text is part of the spec).
 */
export class CliError extends Error {
  readonly verbatim: boolean;
  constructor(message: string, opts: { verbatim?: boolean } = {}) {
    super(message);
    this.verbatim = opts.verbatim ?? false;
  }
}

export interface GetResult {
  status: number;
  body: string;
}

/** Builds `<base><path>?<params>` keeping any path prefix of `base` (e.g. a route prefix). */
export function buildUrl(base: string, path: string, params: [string, string][] = []): string {
  const u = new URL(base);
  u.pathname = u.pathname.replace(/\/+$/, '') + path;
  for (const [k, v] of params) u.searchParams.append(k, v);
  return u.toString();
}

/** GET with the client's auth headers plus `headers`; `what` names the server in error messages. */
export async function httpGet(
  client: HttpClient,
  url: string,
  what: string,
  opts: { headers?: Record<string, string>; timeoutMs?: number; maxBytes?: number } = {},
): Promise<GetResult> {
  const maxBytes = opts.maxBytes ?? 512 * 1024 * 1024;
  try {
    const res = await request(url, {
      method: 'GET',
      headers: { 'accept-encoding': 'gzip', ...client.headers(), ...opts.headers },
      dispatcher: client.dispatcher,
      signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000),
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        res.body.destroy();
        throw new CliError(`response of ${what} at ${redact(url)} is larger than ${maxBytes} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    let raw = Buffer.concat(chunks);
    if (String(res.headers['content-encoding'] ?? '').includes('gzip')) {
      try {
        raw = gunzipSync(raw);
      } catch (e) {
        throw new CliError(`invalid gzip response from ${what} at ${redact(url)}: ${(e as Error).message}`);
      }
    }
    return { status: res.statusCode, body: raw.toString('utf8') };
  } catch (e) {
    if (e instanceof CliError) throw e;
    const err = e as Error & { code?: string; cause?: { code?: string; message?: string } };
    const detail =
      err.name === 'TimeoutError'
        ? 'request timed out'
        : (err.cause?.code ?? err.code ?? err.cause?.message ?? err.message);
    throw new CliError(`cannot reach ${what} at ${redact(url)}: ${detail}`);
  }
}

/** Parses a JSON body, naming the server when it is not JSON. */
export function parseJson(body: string, what: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    const snippet = body.length > 200 ? `${body.slice(0, 200)}…` : body;
    throw new CliError(`${what} did not return JSON: ${JSON.stringify(snippet)}`);
  }
}

/** URL without credentials, for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = 'xxxxx';
    return u.toString();
  } catch {
    return url;
  }
}
