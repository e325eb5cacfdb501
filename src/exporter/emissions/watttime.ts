// `wt` provider: WattTime marginal operating emissions rate (co2_moer) of one region, lbs/MWh → g/kWh.

import type { HttpClient } from '../../common/httpclient.js';
import {
  type DynamicProvider,
  type EmissionFactor,
  encodeQuery,
  getJson,
  HttpStatusError,
  isObject,
} from './provider.js';

export const WT_BASE_URL = 'https://api.watttime.org';
const TOKEN_TTL_MS = 25 * 60_000;
const LBS_PER_MWH_TO_G_PER_KWH = 0.453592;

export interface WattTimeCredentials {
  username: string;
  password: string;
  region: string;
}

/** `/v3/historical` answer → last `data[].value` converted to gCO2/kWh. */
export function parseHistorical(doc: unknown): number {
  const data = isObject(doc) && Array.isArray(doc.data) ? doc.data : [];
  const last = data[data.length - 1];
  const v = isObject(last) ? last.value : undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error('WattTime response has no data[].value');
  return v * LBS_PER_MWH_TO_G_PER_KWH;
}

/** RFC 3339 in UTC without fractional seconds, as Go formats time.RFC3339 for a UTC time. */
const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export function historicalUrl(baseUrl: string, region: string, now: Date): string {
  return `${baseUrl}/v3/historical?${encodeQuery({
    end: rfc3339(now),
    region,
    signal_type: 'co2_moer',
    start: rfc3339(new Date(now.getTime() - 15 * 60_000)),
  })}`;
}

export function wattTimeProvider(
  http: HttpClient,
  creds: WattTimeCredentials,
  opts: { baseUrl?: string; now?: () => number } = {},
): DynamicProvider {
  const base = opts.baseUrl ?? WT_BASE_URL;
  const now = opts.now ?? Date.now;
  let token: { value: string; expires: number } | undefined;

  async function login(signal: AbortSignal): Promise<string> {
    const basic = Buffer.from(`${creds.username}:${creds.password}`).toString('base64');
    const doc = await getJson(http, `${base}/login`, {
      headers: { authorization: `Basic ${basic}` },
      signal,
    });
    const t = isObject(doc) ? doc.token : undefined;
    if (typeof t !== 'string' || t === '') throw new Error('WattTime /login response has no token');
    token = { value: t, expires: now() + TOKEN_TTL_MS };
    return t;
  }

  const historical = async (t: string, signal: AbortSignal) =>
    getJson(http, historicalUrl(base, creds.region, new Date(now())), {
      headers: { authorization: `Bearer ${t}` },
      signal,
    });

  return {
    id: 'wt',
    name: 'Watt Time',
    refreshMs: 2 * 60_000,
    async fetch(signal): Promise<EmissionFactor[]> {
      const t = token && token.expires > now() ? token.value : await login(signal);
      let doc: unknown;
      try {
        doc = await historical(t, signal);
      } catch (e) {
        // A token revoked before its 25 minutes: log in again once.
        if (!(e instanceof HttpStatusError && e.status === 401)) throw e;
        doc = await historical(await login(signal), signal);
      }
      return [{ country: creds.region, countryCode: creds.region, value: parseHistorical(doc) }];
    },
  };
}
