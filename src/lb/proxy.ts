// Forwarding to a backend (spec lb.md §9.3, §10): streaming responses with back-pressure, per-request
// timeouts, one retry on another backend after a connection error, and `filter_labels` rewrites.

import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { gunzipSync, inflateSync } from 'node:zlib';
import type { Dispatcher } from 'undici';
import { HOP_BY_HOP_HEADERS } from '../common/httpclient.js';
import type { Logger } from '../common/logger.js';
import type { Backend, BackendPool } from './backend.js';

/** Request headers never forwarded: hop-by-hop, recomputed by the client, or credentials of the caller. */
const DROPPED_REQUEST = new Set([
  ...HOP_BY_HOP_HEADERS,
  'host',
  'content-length',
  'expect',
  'authorization',
  'x-ceems-admin-user',
]);
const MAX_FILTERED_BODY = 512 * 1024 * 1024;

export interface ForwardRequest {
  readonly method: string;
  /** Raw path and query string as received; appended to the backend path unchanged. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer | undefined;
  readonly clientIp: string;
  /** Whether a failed attempt may be repeated on another backend. */
  readonly retryable: boolean;
}

export interface ProxyOptions {
  readonly timeoutMs: number;
  readonly log: Logger;
}

function requestHeaders(req: ForwardRequest, backend: Backend): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const connectionTokens = String(req.headers.connection ?? '')
    .toLowerCase()
    .split(',')
    .map((t) => t.trim());
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || DROPPED_REQUEST.has(k) || connectionTokens.includes(k)) continue;
    out[k] = v;
  }
  const prior = req.headers['x-forwarded-for'];
  out['x-forwarded-for'] = prior ? `${prior}, ${req.clientIp}` : req.clientIp;
  Object.assign(out, backend.client.headers());
  return out;
}

function responseHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP_HEADERS.has(k)) out[k] = v;
  return out;
}

export function sendUnavailable(res: ServerResponse): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
  res.end('Service not available\n');
}

/** Removes `labels` from a parsed JSON API response in place (spec §10 [D-LB-8]). */
export function filterResponse(path: string, body: unknown, labels: readonly string[]): unknown {
  if (typeof body !== 'object' || body === null) return body;
  const doc = body as { data?: unknown };
  const drop = (set: unknown) => {
    if (set && typeof set === 'object') for (const l of labels) delete (set as Record<string, unknown>)[l];
  };
  const valuesOf = /\/label\/([^/]+)\/values$/.exec(path);
  if (/(^|\/)(query|query_range)$/.test(path)) {
    const result = (doc.data as { result?: unknown } | null)?.result;
    if (Array.isArray(result)) for (const r of result) drop((r as { metric?: unknown })?.metric);
  } else if (/(^|\/)series$/.test(path)) {
    if (Array.isArray(doc.data)) for (const s of doc.data) drop(s);
  } else if (/(^|\/)labels$/.test(path)) {
    if (Array.isArray(doc.data)) doc.data = doc.data.filter((l) => !labels.includes(l as string));
  } else if (valuesOf) {
    let name = valuesOf[1]!;
    try {
      name = decodeURIComponent(name);
    } catch {
      // keep the raw segment
    }
    if (labels.includes(name)) doc.data = null;
  }
  return doc;
}

async function sendFiltered(
  res: ServerResponse,
  upstream: Dispatcher.ResponseData,
  path: string,
  labels: readonly string[],
): Promise<void> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of upstream.body) {
    size += (c as Buffer).length;
    if (size > MAX_FILTERED_BODY) throw new Error('backend response too large to filter');
    chunks.push(c as Buffer);
  }
  let raw = Buffer.concat(chunks);
  const encoding = String(upstream.headers['content-encoding'] ?? '').toLowerCase();
  if (encoding === 'gzip') raw = gunzipSync(raw);
  else if (encoding === 'deflate') raw = inflateSync(raw);
  const text = raw.toString('utf8');
  const headers = responseHeaders(upstream.headers);
  delete headers['content-encoding'];
  let out: string;
  try {
    out = JSON.stringify(filterResponse(path, JSON.parse(text), labels)) + (text.endsWith('\n') ? '\n' : '');
  } catch {
    out = text; // not JSON after all: pass through unchanged
  }
  headers['content-length'] = String(Buffer.byteLength(out));
  res.writeHead(upstream.statusCode, headers);
  res.end(out);
}

/**
 * Proxies one request to a backend of the cluster. Connection failures mark the backend dead and, for
 * retryable requests, try one other backend; with no backend left the client gets 503.
 */
export async function forward(
  pool: BackendPool,
  clusterId: string,
  req: ForwardRequest,
  res: ServerResponse,
  opts: ProxyOptions,
): Promise<void> {
  const abort = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) abort.abort(new Error('client closed the connection'));
  };
  res.once('close', onClose);
  const tried = new Set<Backend>();
  const attempts = req.retryable ? 2 : 1;
  try {
    for (let attempt = 0; attempt < attempts; attempt++) {
      const backend = pool.pick(clusterId, tried);
      if (!backend) break;
      tried.add(backend);
      backend.inFlight++;
      try {
        let upstream: Dispatcher.ResponseData;
        try {
          upstream = await backend.client.dispatcher.request({
            origin: backend.origin,
            path: backend.basePath + req.url,
            method: req.method as Dispatcher.HttpMethod,
            headers: requestHeaders(req, backend),
            body: req.body,
            headersTimeout: opts.timeoutMs,
            bodyTimeout: opts.timeoutMs,
            signal: abort.signal,
          });
        } catch (e) {
          if (abort.signal.aborted) return;
          opts.log.debug({ backend: backend.toString(), err: (e as Error).message }, 'proxy error');
          pool.markDead(backend, (e as Error).message);
          continue;
        }
        const path = req.url.split('?')[0]!;
        const json = /json/i.test(String(upstream.headers['content-type'] ?? ''));
        if (backend.filterLabels.length > 0 && upstream.statusCode === 200 && json) {
          await sendFiltered(res, upstream, path, backend.filterLabels);
        } else {
          res.writeHead(upstream.statusCode, responseHeaders(upstream.headers));
          await pipeline(upstream.body, res);
        }
        return;
      } finally {
        backend.inFlight--;
      }
    }
    sendUnavailable(res);
  } catch (e) {
    // The response has started (or the client left): nothing can be retried, end the connection.
    opts.log.debug({ err: (e as Error).message }, 'proxy stream failed');
    if (!res.headersSent) sendUnavailable(res);
    else res.destroy();
  } finally {
    res.off('close', onClose);
  }
}
