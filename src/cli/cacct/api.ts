// Requests of cacct to the CEEMS API server (cli.md §1.5) and its error contract (§1.9).

import type { HttpClient } from '../../common/httpclient.js';
import { buildUrl, CliError, httpGet, parseJson } from '../http.js';
import type { Field } from './fields.js';
import { SUMMARY_FIELDS } from './summary.js';

export type MetricMap = Record<string, number>;
/** A Unit or Usage row as returned by the API (api-server.md §8); only requested fields are present. */
export type ApiRow = Record<string, unknown>;

export const FORBIDDEN_MESSAGE =
  'forbidden. It is likely that the user is attempting to view statistics of others';
export const SERVER_ERROR_MESSAGE = 'server did not return any data due to unknown error';

export interface Query {
  url: string;
  client: HttpClient;
  userHeader: string;
  user: string;
  clusterId: string;
  start: Date;
  end: Date;
  fields: readonly Field[];
  accounts: readonly string[];
  jobs: readonly string[];
  /** Non-empty ⇒ admin endpoints. */
  users: readonly string[];
}

function commonParams(q: Query, extraFields: string[]): [string, string][] {
  const params: [string, string][] = [
    ['cluster_id', q.clusterId],
    ['from', String(Math.floor(q.start.getTime() / 1000))],
    ['to', String(Math.floor(q.end.getTime() / 1000))],
  ];
  for (const f of new Set([...q.fields.map((f) => f.apiField), ...extraFields])) params.push(['field', f]);
  for (const a of q.accounts) params.push(['project', a]);
  for (const j of q.jobs) params.push(['uuid', j]);
  for (const u of q.users) params.push(['user', u]);
  return params;
}

async function getData(q: Query, path: string, params: [string, string][]): Promise<ApiRow[]> {
  const admin = q.users.length > 0 ? '/admin' : '';
  const url = buildUrl(q.url, `/api/v1${path}${admin}`, params);
  const res = await httpGet(q.client, url, 'the CEEMS API server', { headers: { [q.userHeader]: q.user } });
  if (res.status === 401 || res.status === 403) throw new CliError(FORBIDDEN_MESSAGE, { verbatim: true });
  let body: { status?: unknown; data?: unknown; error?: unknown; errorType?: unknown };
  try {
    body = parseJson(res.body, 'the CEEMS API server') as typeof body;
  } catch (e) {
    throw new CliError(`${(e as Error).message} (HTTP ${res.status} for ${url})`);
  }
  if (body === null || typeof body !== 'object' || body.status === 'error' || res.status !== 200) {
    const detail = body && typeof body === 'object' && body.error ? `: ${body.errorType}: ${body.error}` : '';
    throw new CliError(`${SERVER_ERROR_MESSAGE}\n(HTTP ${res.status}${detail})`, { verbatim: true });
  }
  if (body.data === null || body.data === undefined) return [];
  if (!Array.isArray(body.data)) {
    throw new CliError(`unexpected response from the CEEMS API server: "data" is not a list (${url})`);
  }
  return body.data.filter((r): r is ApiRow => r !== null && typeof r === 'object');
}

/**
 * Request 1: the units of the window, running ones included [DIFF D-CLI-20]; with `--job`, also the fields
 * the Summary of those jobs is computed from.
 */
export function fetchUnits(q: Query): Promise<ApiRow[]> {
  const params = commonParams(q, [
    'started_at_ts',
    'ended_at_ts',
    ...(q.jobs.length > 0 ? SUMMARY_FIELDS : []),
  ]);
  if (q.jobs.length === 0) params.push(['running', 'true']);
  return getData(q, '/units', params);
}

/** The footprint records (issue 20) of the units request 1 would list, without its field list. */
export function fetchFootprints(q: Query): Promise<ApiRow[]> {
  const params = commonParams({ ...q, fields: [] }, []);
  if (q.jobs.length === 0) params.push(['running', 'true']);
  return getData(q, '/units/footprint', params);
}

/** Request 2: current usage aggregated per user and project over the window. */
export function fetchUsage(q: Query): Promise<ApiRow[]> {
  // "Same parameters" as request 1 (the server drops the unit-only fields), plus the usage ones.
  const extra = ['started_at_ts', 'ended_at_ts', 'username', 'num_units'];
  if (q.fields.some((f) => f.key === 'elapsed')) extra.push('total_time_seconds');
  return getData(q, '/usage/current', commonParams(q, extra));
}
