// `emaps` provider: Electricity Maps latest carbon intensity of every zone the token can read.

import type { HttpClient } from '../../common/httpclient.js';
import { type DynamicProvider, type EmissionFactor, getJson, HttpStatusError, isObject } from './provider.js';

export const EMAPS_BASE_URL = 'https://api.electricitymap.org';
const ZONE_ATTEMPTS = 5;
const ZONE_CONCURRENCY = 4;

export interface Zone {
  code: string;
  /** `"<countryName> <zoneName>"` (just the zone name when the API gives no country). */
  name: string;
}

/** `/v3/zones` answer: `{"DE":{"zoneName":"Germany"},"US-CAL-CISO":{"countryName":"USA","zoneName":"CAISO"}}`. */
export function parseZones(doc: unknown): Zone[] {
  if (!isObject(doc)) throw new Error('Electricity Maps /v3/zones response is not a JSON object');
  const zones: Zone[] = [];
  for (const [code, z] of Object.entries(doc)) {
    if (!isObject(z)) continue;
    const parts = [z.countryName, z.zoneName].filter((p): p is string => typeof p === 'string' && p !== '');
    zones.push({ code, name: parts.join(' ') || code });
  }
  if (zones.length === 0) throw new Error('Electricity Maps /v3/zones returned no zone');
  return zones;
}

export function parseLatest(doc: unknown): number {
  const v = isObject(doc) ? doc.carbonIntensity : undefined;
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new Error('Electricity Maps response has no numeric carbonIntensity');
  return v;
}

export function emapsProvider(
  http: HttpClient,
  token: string,
  opts: { baseUrl?: string; retryDelayMs?: number } = {},
): DynamicProvider {
  const base = opts.baseUrl ?? EMAPS_BASE_URL;
  const headers = { 'auth-token': token };
  let zones: Zone[] | undefined;

  async function loadZones(signal: AbortSignal): Promise<Zone[]> {
    let last: unknown;
    for (let attempt = 1; attempt <= ZONE_ATTEMPTS; attempt++) {
      try {
        return parseZones(await getJson(http, `${base}/v3/zones`, { headers, signal }));
      } catch (e) {
        last = e;
        // Rate limiting is handled by the runner's back-off, not by hammering the API here.
        if (e instanceof HttpStatusError && e.status === 429) throw e;
        if (signal.aborted || attempt === ZONE_ATTEMPTS) break;
        await new Promise((r) => setTimeout(r, (opts.retryDelayMs ?? 1000) * attempt));
      }
    }
    throw last;
  }

  return {
    id: 'emaps',
    name: 'Electricity Maps',
    refreshMs: 30 * 60_000,
    async fetch(signal): Promise<EmissionFactor[]> {
      zones ??= await loadZones(signal);
      const todo = [...zones];
      const out: EmissionFactor[] = [];
      const errors: Error[] = [];
      const worker = async () => {
        for (let z = todo.shift(); z; z = todo.shift()) {
          try {
            const doc = await getJson(
              http,
              `${base}/v3/carbon-intensity/latest?zone=${encodeURIComponent(z.code)}`,
              {
                headers,
                signal,
              },
            );
            out.push({ country: z.name, countryCode: z.code, value: parseLatest(doc) });
          } catch (e) {
            if (e instanceof HttpStatusError && e.status === 429) throw e;
            errors.push(e as Error);
          }
        }
      };
      await Promise.all(Array.from({ length: ZONE_CONCURRENCY }, worker));
      // Zones the token cannot read fail alone; nothing at all is an error.
      if (out.length === 0) throw errors[0] ?? new Error('Electricity Maps returned no carbon intensity');
      return out;
    },
  };
}
