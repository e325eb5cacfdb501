// `rte` provider: real-time carbon intensity of the French grid from RTE eCO2mix (opendatasoft API).

import type { HttpClient } from '../../common/httpclient.js';
import {
  type DynamicProvider,
  type EmissionFactor,
  encodeQuery,
  getJson,
  HTTP_TIMEOUT_MS,
  isObject,
} from './provider.js';

export const RTE_BASE_URL = 'https://reseaux-energies-rte.opendatasoft.com';
const RECORDS_PATH = '/api/explore/v2.1/catalog/datasets/eco2mix-national-tr/records';
// built on first use: a time-zone formatter loads ICU's zone data (8 MB of RSS here) into every exporter
let parisDay: Intl.DateTimeFormat | undefined;

function parisDayOf(now: Date): string {
  parisDay ??= new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Paris', dateStyle: 'short' });
  return parisDay.format(now);
}

/** Request URL of the latest record; `now` gives the day in Paris time (the query's time zone). */
export function rteUrl(baseUrl: string, now: Date): string {
  return `${baseUrl}${RECORDS_PATH}?${encodeQuery({
    include_app_metas: 'false',
    include_links: 'false',
    limit: '1',
    offset: '0',
    order_by: 'date_heure desc',
    select: 'taux_co2,date_heure',
    timezone: 'Europe/Paris',
    where: `date_heure in [date'${parisDayOf(now)}' TO now()] and taux_co2 is not null`,
  })}`;
}

export function parseRte(doc: unknown): number {
  const first = isObject(doc) && Array.isArray(doc.results) ? doc.results[0] : undefined;
  const v = isObject(first) ? first.taux_co2 : undefined;
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new Error('RTE response has no results[0].taux_co2');
  return v;
}

export function rteProvider(
  http: HttpClient,
  baseUrl = RTE_BASE_URL,
  timeoutMs = HTTP_TIMEOUT_MS,
): DynamicProvider {
  return {
    id: 'rte',
    name: 'RTE eCO2 Mix',
    refreshMs: 30 * 60_000,
    async fetch(signal): Promise<EmissionFactor[]> {
      const value = parseRte(await getJson(http, rteUrl(baseUrl, new Date()), { signal, timeoutMs }));
      return [{ country: 'France', countryCode: 'FR', value }];
    },
  };
}
