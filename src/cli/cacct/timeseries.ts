// `--ts` (cli.md §1.8): raw time series of the listed units, fetched from the TSDB through the load
// balancer, saved as one CSV per series plus metadata.json.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HttpClient } from '../../common/httpclient.js';
import { buildUrl, CliError, httpGet, parseJson } from '../http.js';
import type { ApiRow } from './api.js';

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK = 0xffffffffffffffffn;
const SEP = 0xff;

/** Prometheus label-set fingerprint: FNV-1a 64 over sorted names, each `name 0xff value 0xff`. */
export function fingerprint(labels: Record<string, string>): string {
  let h = FNV_OFFSET;
  const add = (b: number) => {
    h ^= BigInt(b);
    h = (h * FNV_PRIME) & MASK;
  };
  for (const name of Object.keys(labels).sort()) {
    for (const b of Buffer.from(name, 'utf8')) add(b);
    add(SEP);
    for (const b of Buffer.from(labels[name]!, 'utf8')) add(b);
    add(SEP);
  }
  return h.toString(16).padStart(16, '0');
}

/** Shortest plain decimal form of a number (Go `FormatFloat(v, 'f', -1, 64)`): never an exponent. */
export function plainDecimal(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  if (Object.is(v, -0)) return '-0';
  const s = String(v);
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s;
  const [, sign, int, frac = '', exp] = m;
  const digits = int! + frac;
  const point = 1 + Number(exp);
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  return `${sign}${digits.padEnd(point, '0')}`;
}

/** Unix seconds with at most millisecond precision, shortest form. */
export function formatTimestamp(seconds: number): string {
  return plainDecimal(Math.round(seconds * 1000) / 1000);
}

/** Go json.Encoder with a tab indent (without its final newline): HTML-sensitive characters escaped. */
function goJson(v: unknown): string {
  return JSON.stringify(v, null, '\t')
    .replaceAll('<', '\\u003c')
    .replaceAll('>', '\\u003e')
    .replaceAll('&', '\\u0026')
    .replaceAll('\u2028', '\\u2028')
    .replaceAll('\u2029', '\\u2029');
}

export interface TsOptions {
  url: string;
  client: HttpClient;
  user: string;
  userHeader: string;
  clusterId: string;
  queries: Record<string, string>;
  outDir: string;
  now: Date;
}

const DEFAULT_MAX_SAMPLES = 50_000_000;
// Prometheus refuses range queries with more than 11 000 points per series.
const MAX_POINTS = 11_000;
const MIN_STEP_S = 10;

interface RangeSeries {
  metric: Record<string, string>;
  values: [number, string][];
}

async function maxSamples(o: TsOptions, headers: Record<string, string>): Promise<number> {
  try {
    const res = await httpGet(o.client, buildUrl(o.url, '/api/v1/status/flags'), 'the TSDB', { headers });
    const v = Number(
      (parseJson(res.body, 'the TSDB') as { data?: Record<string, string> }).data?.['query.max-samples'],
    );
    return res.status === 200 && Number.isInteger(v) && v > 0 ? v : DEFAULT_MAX_SAMPLES;
  } catch {
    return DEFAULT_MAX_SAMPLES; // the load balancer may not expose the flags endpoint
  }
}

/** Step in seconds: 10 s, enlarged so one query stays under Prometheus' point and sample limits. */
export function stepFor(durationS: number, maxSamplesPerQuery: number): number {
  return Math.max(MIN_STEP_S, Math.ceil(durationS / MAX_POINTS), Math.ceil(durationS / maxSamplesPerQuery));
}

/** Runs every query for every unit and writes the files; returns the number of series saved. */
export async function dumpTimeSeries(units: readonly ApiRow[], o: TsOptions): Promise<number> {
  const headers: Record<string, string> = { 'X-Ceems-Cluster-Id': o.clusterId, 'X-Grafana-User': o.user };
  headers[o.userHeader] = o.user;
  const limit = await maxSamples(o, headers);
  const meta: { fingerprint: string; labels: Record<string, string> }[] = [];
  mkdirSync(o.outDir, { recursive: true, mode: 0o700 });
  for (const unit of units) {
    const uuid = String(unit.uuid ?? '');
    const startMs = Number(unit.started_at_ts ?? 0);
    const endMs = Number(unit.ended_at_ts ?? 0) || o.now.getTime();
    if (uuid === '' || !(startMs > 0) || endMs <= startMs) continue;
    const start = startMs / 1000;
    const end = endMs / 1000;
    const step = stepFor(end - start, limit);
    for (const [name, template] of Object.entries(o.queries)) {
      const query = template.replace('%s', uuid);
      const url = buildUrl(o.url, '/api/v1/query_range', [
        ['query', query],
        ['start', formatTimestamp(start)],
        ['end', formatTimestamp(end)],
        ['step', `${step}s`],
      ]);
      const res = await httpGet(o.client, url, 'the TSDB', { headers });
      if (res.status === 401 || res.status === 403) {
        throw new CliError(`the TSDB refused query '${name}' for unit ${uuid} (HTTP ${res.status})`);
      }
      const body = parseJson(res.body, 'the TSDB') as {
        status?: string;
        error?: string;
        data?: { resultType?: string; result?: RangeSeries[] };
      };
      if (body.status !== 'success' || body.data?.resultType !== 'matrix') {
        throw new CliError(
          `query '${name}' for unit ${uuid} failed: ${body.error ?? `HTTP ${res.status}, no matrix result`}`,
        );
      }
      // the original saves only series that name their unit
      for (const s of (body.data.result ?? []).filter((r) => r.metric.uuid !== undefined)) {
        const fp = fingerprint(s.metric);
        const rows = s.values.map(([t, v]) => `${formatTimestamp(t)},${plainDecimal(Number(v))}`);
        writeFileSync(
          join(o.outDir, `${fp}.csv`),
          `timestamp,value\n${rows.join('\n')}${rows.length ? '\n' : ''}`,
        );
        // Go encodes map keys sorted
        const labels = Object.fromEntries(Object.entries(s.metric).sort(([a], [b]) => (a < b ? -1 : 1)));
        meta.push({ fingerprint: fp, labels });
      }
    }
  }
  // json.Encoder ends its output with a newline; an empty list stays `[]` (the original writes `null`)
  writeFileSync(join(o.outDir, 'metadata.json'), `${goJson(meta)}\n`, { mode: 0o600 });
  return meta.length;
}
