// Emission-factor providers (spec exporter.md §11): each one yields factors per country or zone; dynamic
// ones are refreshed in the background by ProviderRunner so that a scrape only reads a cache.

import type { HttpClient, httpFetch } from '../../common/httpclient.js';

export interface EmissionFactor {
  /** Country or zone name (`country` label). */
  country: string;
  /** ISO alpha-2 code, zone or region (`country_code` label). */
  countryCode: string;
  /** gCO2eq/kWh. */
  value: number;
}

interface ProviderBase {
  /** `provider` label, e.g. `rte`. */
  readonly id: string;
  /** `provider_name` label, e.g. `RTE eCO2 Mix`. */
  readonly name: string;
}

/** Data embedded in the build. */
export interface StaticProvider extends ProviderBase {
  readonly factors: readonly EmissionFactor[];
}

/** Data fetched from an API every `refreshMs`. */
export interface DynamicProvider extends ProviderBase {
  readonly refreshMs: number;
  fetch(signal: AbortSignal): Promise<EmissionFactor[]>;
}

export type EmissionProvider = StaticProvider | DynamicProvider;

export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Delay asked by a 429 `Retry-After` header, in ms. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export const HTTP_TIMEOUT_MS = 30_000;

function retryAfterMs(h: string | string[] | undefined): number | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  if (v === undefined) return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** GET returning parsed JSON; non-2xx → HttpStatusError (429 carries Retry-After). */
export async function getJson(
  client: HttpClient,
  url: string,
  opts: { headers?: Record<string, string>; signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<unknown> {
  const where = url.split('?')[0];
  const timeoutMs = opts.timeoutMs ?? HTTP_TIMEOUT_MS;
  let res: Awaited<ReturnType<typeof httpFetch>>;
  try {
    // the HTTP client's module (undici) loads with the first request, not with the exporter
    const http = await import('../../common/httpclient.js');
    res = await http.httpFetch(client, url, {
      headers: { accept: 'application/json', ...opts.headers },
      signal: opts.signal,
      timeoutMs,
      maxBytes: 32 * 1024 * 1024,
    });
  } catch (e) {
    const err = e as Error;
    throw new Error(
      `GET ${where}: ${err.name === 'TimeoutError' ? `timed out after ${timeoutMs} ms` : err.message}`,
    );
  }
  if (res.status < 200 || res.status > 299) {
    const detail = res.body.slice(0, 200).replace(/\s+/g, ' ').trim();
    throw new HttpStatusError(
      res.status,
      `GET ${where}: HTTP ${res.status}${detail ? `: ${detail}` : ''}`,
      res.status === 429 ? retryAfterMs(res.headers['retry-after']) : undefined,
    );
  }
  try {
    return JSON.parse(res.body) as unknown;
  } catch {
    throw new Error(`GET ${where}: response is not JSON`);
  }
}

/** Go's url.Values.Encode: keys sorted, QueryEscape (space → `+`, only `-_.~` and alphanumerics kept). */
export function encodeQuery(params: Record<string, string>): string {
  const esc = (s: string) =>
    encodeURIComponent(s)
      .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
      .replace(/%20/g, '+');
  return Object.keys(params)
    .sort()
    .map((k) => `${esc(k)}=${esc(params[k]!)}`)
    .join('&');
}

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
