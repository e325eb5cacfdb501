// TSDB updater (spec api-server.md §12): per-unit aggregates of one window from Prometheus instant
// queries, in batches of uuids sized from Prometheus' own limits; units shorter than the cutoff are
// flagged `ignore` (and optionally their series deleted). Aggregation across windows happens in the DB
// upserts (weighted averages, summed totals).

import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import { z } from 'zod';
import { validate } from '../../common/config.js';
import { parseDuration } from '../../common/duration.js';
import {
  createHttpClient,
  type HttpClient,
  httpClientConfigShape,
  httpFetch,
} from '../../common/httpclient.js';
import type { Logger } from '../../common/logger.js';
import type { UnitRecord } from '../db/index.js';
import { UNKNOWN_SOURCE } from '../footprint.js';
import { METRIC_FIELDS, type MetricField, type MetricMap, SAMPLING_FIELD } from '../models.js';
import { applyCounter, DEFAULT_COUNTER_QUERIES, reconcilable, unitCounters } from './counter.js';
import { compileTemplate, goDuration, type QueryTemplate, type TemplateValues } from './template.js';
import type { Updater } from './types.js';

/** Metrics the updater may set (§12.1): every metric column but the times, which come from the manager. */
export type TsdbMetric = Exclude<MetricField, 'total_time_seconds'>;
export const TSDB_METRICS = METRIC_FIELDS.filter((f): f is TsdbMetric => f !== 'total_time_seconds');

const avgQuery = (series: string) =>
  `avg_over_time(avg by (uuid) (${series}{uuid=~"{{.UUIDs}}"} >= 0 < inf)[{{.Range}}:])`;
const energyQuery = (series: string, by = 'uuid') =>
  `sum_over_time(sum by (${by}) (${series}{uuid=~"{{.UUIDs}}"} >= 0 < inf)[{{.Range}}:{{.ScrapeInterval}}]) * {{.ScrapeIntervalMilli}} / 3.6e9`;
const emissionsQuery = (series: string, provider: string) =>
  `sum_over_time(sum by (uuid) (${series}{uuid=~"{{.UUIDs}}",provider="${provider}"} >= 0 < inf)[{{.Range}}:{{.ScrapeInterval}}]) * {{.ScrapeIntervalMilli}} / 1e3`;
const emissions = (series: string) => ({
  rte_total: emissionsQuery(series, 'rte'),
  emaps_total: emissionsQuery(series, 'emaps'),
  owid_total: emissionsQuery(series, 'owid'),
});
const increase = (series: string) =>
  `sum by (uuid) (increase(${series}{uuid=~"{{.UUIDs}}"}[{{.Range}}]) >= 0 < inf)`;
const io = (dir: 'read' | 'write') => ({
  bytes_total: increase(`ceems_ebpf_${dir}_bytes_total`),
  requests_total: increase(`ceems_ebpf_${dir}_requests_total`),
  errors_total: increase(`ceems_ebpf_${dir}_errors_total`),
});

/** Default queries of §12.3. */
export const DEFAULT_QUERIES: Record<string, Record<string, string>> = {
  avg_cpu_usage: { global: avgQuery('uuid:ceems_cpu_usage:ratio_irate') },
  avg_cpu_mem_usage: { global: avgQuery('uuid:ceems_cpu_memory_usage:ratio') },
  total_cpu_energy_usage_kwh: { total: energyQuery('uuid:ceems_host_power_watts:pue') },
  total_cpu_emissions_gms: emissions('uuid:ceems_host_emissions_g_s:pue'),
  avg_gpu_usage: { global: avgQuery('uuid:ceems_gpu_usage:ratio') },
  avg_gpu_mem_usage: { global: avgQuery('uuid:ceems_gpu_memory_usage:ratio') },
  total_gpu_energy_usage_kwh: { total: energyQuery('uuid:ceems_gpu_power_watts:pue') },
  total_gpu_emissions_gms: emissions('uuid:ceems_gpu_emissions_g_s:pue'),
  total_io_write_stats: io('write'),
  total_io_read_stats: io('read'),
  total_ingress_stats: { bytes_total: increase('ceems_ebpf_ingress_bytes_total') },
  total_egress_stats: { bytes_total: increase('ceems_ebpf_egress_bytes_total') },
  // provenance (issue 20): the same energy split by the labels of the per-unit power records
  total_cpu_energy_by_source_kwh: {
    $power_source: energyQuery('uuid:ceems_host_power_watts:pue', 'uuid, power_source'),
  },
  total_gpu_energy_by_source_kwh: {
    $power_source: energyQuery('uuid:ceems_gpu_power_watts:pue', 'uuid, power_source'),
  },
  total_cpu_energy_by_pue_kwh: { $pue: energyQuery('uuid:ceems_host_power_watts:pue', 'uuid, pue') },
  total_gpu_energy_by_pue_kwh: { $pue: energyQuery('uuid:ceems_gpu_power_watts:pue', 'uuid, pue') },
};

/**
 * A sub-metric key `$<label>` stands for one sub-metric per value of that label in the query's result;
 * series without the label count as `unknown` (issue 20).
 */
const LABEL_SUB_METRIC = /^\$([a-zA-Z_][a-zA-Z0-9_]*)$/;

const durationString = z.string().refine(
  (s) => {
    try {
      parseDuration(s);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not a valid duration' },
);

export const tsdbExtraConfigSchema = z
  .strictObject({
    query_max_series: z.number().int().positive().default(50),
    query_min_samples: z.number().gt(0).lte(1).default(0.5),
    cutoff_duration: durationString.default('0s'),
    delete_ignored: z.boolean().default(false),
    labels_to_drop: z.array(z.string()).default([]),
    /** Label matchers of this cluster's node series in a Prometheus shared by several clusters (B4). */
    node_matchers: z.string().default(''),
    // an empty metric key (null), as ceems_tool prints for series that do not exist, has no sub-metric
    queries: z.record(z.string(), z.record(z.string(), z.string()).nullable()).default({}),
    /** The exporter's energy counter series of short units (B9); an empty query switches it off. */
    energy_counter_queries: z
      .strictObject({ joules: z.string(), share: z.string() })
      .default(DEFAULT_COUNTER_QUERIES),
  })
  .default({
    query_max_series: 50,
    query_min_samples: 0.5,
    cutoff_duration: '0s',
    delete_ignored: false,
    labels_to_drop: [],
    node_matchers: '',
    queries: {},
    energy_counter_queries: DEFAULT_COUNTER_QUERIES,
  });

export const tsdbUpdaterConfigSchema = z.object({
  id: z.string(),
  updater: z.literal('tsdb'),
  web: z.object({ url: z.string().default(''), ...httpClientConfigShape }).default({ url: '' }),
  extra_config: tsdbExtraConfigSchema,
});
export type TsdbUpdaterConfig = z.input<typeof tsdbUpdaterConfigSchema>;

/** Prometheus settings the queries depend on (§12.4 step 3). */
export interface PromSettings {
  scrapeMs: number;
  evaluationMs: number;
  lookbackMs: number;
  timeoutMs: number;
  maxSamples: number;
}

export const DEFAULT_SETTINGS: PromSettings = {
  scrapeMs: 60_000,
  evaluationMs: 60_000,
  lookbackMs: 300_000,
  timeoutMs: 120_000,
  maxSamples: 50_000_000,
};
const SETTINGS_TTL_MS = 6 * 3600_000;

/** `batch = min(max(⌊min_samples × maxSamples ÷ (max_series × samplesPerSeries)⌋, 10), #uuids)` (§12.4 step 5). */
export function batchSize(
  rangeMs: number,
  s: PromSettings,
  cfg: { query_max_series: number; query_min_samples: number },
  nUuids: number,
): number {
  const samplesPerSeries = Math.max(Math.floor(rangeMs / 1000 / (s.scrapeMs / 1000)), 1);
  const maxLabels = s.maxSamples / (cfg.query_max_series * samplesPerSeries);
  return Math.min(Math.max(Math.floor(cfg.query_min_samples * maxLabels), 10), nUuids);
}

/** The template fields of a query over `rangeMs` but the uuids. */
const templateValues = (rangeMs: number, s: PromSettings): Omit<TemplateValues, 'UUIDs'> => ({
  Range: goDuration(rangeMs),
  ScrapeInterval: goDuration(s.scrapeMs),
  EvaluationInterval: goDuration(s.evaluationMs),
  RateInterval: goDuration(4 * s.scrapeMs),
  ScrapeIntervalMilli: String(s.scrapeMs),
  EvaluationIntervalMilli: String(s.evaluationMs),
});

const cleanValue = (v: number) => (Number.isFinite(v) && v >= 0 ? v : 0);

interface CompiledQuery {
  metric: TsdbMetric;
  sub: string;
  /** Label whose values name the sub-metrics (`$<label>` keys), instead of `sub`. */
  subLabel?: string;
  template: QueryTemplate;
}

/** One sample of an instant vector: its uuid, its labels and its value. */
interface UnitSample {
  uuid: string;
  labels: Record<string, string>;
  value: number;
}

export class TsdbUpdater implements Updater {
  readonly id: string;
  private readonly url: string;
  private readonly client: HttpClient | undefined;
  private readonly cfg: z.infer<typeof tsdbExtraConfigSchema>;
  private readonly cutoffMs: number;
  private readonly queries: CompiledQuery[];
  private readonly counterQueries: { joules: QueryTemplate; share: QueryTemplate } | undefined;
  private readonly logger: Logger;
  private settings: { value: PromSettings; at: number } | undefined;

  /** Validates the config and compiles every query template; throws on any problem. */
  constructor(input: TsdbUpdaterConfig, opts: { logger: Logger; configDir?: string; configFile?: string }) {
    const cfg = validate(tsdbUpdaterConfigSchema, input, `updater '${input.id}'`);
    this.id = cfg.id;
    this.logger = opts.logger;
    this.cfg = cfg.extra_config;
    this.cutoffMs = parseDuration(this.cfg.cutoff_duration);
    this.url = cfg.web.url.replace(/\/+$/, '');
    const { url: _url, ...clientCfg } = cfg.web;
    const baseDir = opts.configDir ?? (opts.configFile ? dirname(opts.configFile) : process.cwd());
    this.client = this.url ? createHttpClient(clientCfg, baseDir) : undefined;
    const source = Object.keys(this.cfg.queries).length > 0 ? this.cfg.queries : DEFAULT_QUERIES;
    const cq = this.cfg.energy_counter_queries;
    this.counterQueries =
      cq.joules && cq.share
        ? {
            joules: compileTemplate(cq.joules, `updater '${this.id}' energy_counter_queries.joules`),
            share: compileTemplate(cq.share, `updater '${this.id}' energy_counter_queries.share`),
          }
        : undefined;
    this.queries = [];
    for (const [metric, subs] of Object.entries(source)) {
      if (!(TSDB_METRICS as readonly string[]).includes(metric)) {
        this.logger.warn({ updater: this.id, metric }, 'Unknown metric in TSDB updater queries; ignored');
        continue;
      }
      for (const [sub, text] of Object.entries(subs ?? {}))
        this.queries.push({
          metric: metric as CompiledQuery['metric'],
          sub,
          subLabel: LABEL_SUB_METRIC.exec(sub)?.[1],
          template: compileTemplate(text, `updater '${this.id}' query ${metric}.${sub}`),
        });
    }
  }

  private async getJson(path: string, timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
    const res = await httpFetch(this.client!, `${this.url}${path}`, {
      timeoutMs,
      signal,
      maxBytes: 64 * 1024 * 1024,
    });
    if (res.status !== 200) throw new Error(`GET ${path} returned HTTP ${res.status}`);
    return (JSON.parse(res.body) as { data: unknown }).data;
  }

  /** Scrape/evaluation intervals and query limits, cached 6 h; defaults when Prometheus does not say. */
  async promSettings(signal?: AbortSignal): Promise<PromSettings> {
    if (this.settings && Date.now() - this.settings.at < SETTINGS_TTL_MS) return this.settings.value;
    const s = { ...DEFAULT_SETTINGS };
    const dur = (v: unknown, fallback: number) => {
      try {
        return typeof v === 'string' ? parseDuration(v) : fallback;
      } catch {
        return fallback;
      }
    };
    try {
      const config = (await this.getJson('/api/v1/status/config', 10_000, signal)) as { yaml?: string };
      const global = YAML.parse(config.yaml ?? '')?.global ?? {};
      s.scrapeMs = dur(global.scrape_interval, s.scrapeMs);
      s.evaluationMs = dur(global.evaluation_interval, s.evaluationMs);
      const flags = (await this.getJson('/api/v1/status/flags', 10_000, signal)) as Record<string, string>;
      s.lookbackMs = dur(flags['query.lookback-delta'], s.lookbackMs);
      s.timeoutMs = dur(flags['query.timeout'], s.timeoutMs);
      const max = Number(flags['query.max-samples']);
      if (Number.isInteger(max) && max > 0) s.maxSamples = max;
      this.settings = { value: s, at: Date.now() };
    } catch (e) {
      this.logger.warn(
        { updater: this.id, err: (e as Error).message },
        'Cannot read Prometheus settings; using defaults (scrape 1m, evaluation 1m, max samples 50000000)',
      );
    }
    return s;
  }

  /**
   * One instant query at `time` (ms): POST, falling back to GET on 405/501; the samples with a uuid, or
   * every sample (`uuid` '') when `perUnit` is false.
   */
  async instantQuery(
    query: string,
    time: number,
    s: PromSettings,
    signal?: AbortSignal,
    perUnit = true,
  ): Promise<UnitSample[]> {
    const params = new URLSearchParams({
      query,
      time: String(time / 1000),
      lookback_delta: goDuration(s.scrapeMs > 0 ? s.scrapeMs : 10_000),
    });
    const timeoutMs = s.timeoutMs + 10_000;
    const url = `${this.url}/api/v1/query`;
    let res = await httpFetch(this.client!, url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: params.toString(),
      timeoutMs,
      signal,
    });
    if (res.status === 405 || res.status === 501)
      res = await httpFetch(this.client!, `${url}?${params}`, { timeoutMs, signal });
    let body: { status?: string; error?: string; data?: { resultType?: string; result?: unknown } };
    try {
      body = JSON.parse(res.body);
    } catch {
      throw new Error(`HTTP ${res.status}, body is not JSON: ${JSON.stringify(res.body.slice(0, 100))}`);
    }
    if (res.status !== 200 || body.status !== 'success')
      throw new Error(`HTTP ${res.status}: ${body.error ?? 'query failed'}`);
    if (body.data?.resultType !== 'vector' || !Array.isArray(body.data.result))
      throw new Error(`result is ${body.data?.resultType ?? 'missing'}, not a vector`);
    const out: UnitSample[] = [];
    for (const sample of body.data.result as Array<{
      metric?: Record<string, string>;
      value?: [number, string];
    }>) {
      const uuid = perUnit ? sample.metric?.uuid : '';
      if (uuid !== undefined && Array.isArray(sample.value))
        out.push({ uuid, labels: sample.metric!, value: Number(sample.value[1]) });
    }
    return out;
  }

  async update(
    clusterId: string,
    units: UnitRecord[],
    start: number,
    end: number,
    signal?: AbortSignal,
  ): Promise<void> {
    if (!this.client || units.length === 0) return;
    const rangeMs = Math.floor((end - start) / 1000) * 1000;
    const ignored: string[] = [];
    for (const u of units) {
      const ended = u.ended_at_ts ?? 0;
      if (ended > 0 && ended - (u.started_at_ts ?? 0) < this.cutoffMs) {
        u.ignore = 1;
        ignored.push(u.uuid);
      }
    }
    const s = await this.promSettings(signal);
    const rateMs = 4 * s.scrapeMs;
    if (rangeMs >= rateMs && this.queries.length > 0)
      await this.queryAll(clusterId, units, rangeMs, end, s, signal);
    else
      this.logger.debug(
        {
          updater: this.id,
          cluster_id: clusterId,
          range: goDuration(rangeMs),
          rate_interval: goDuration(rateMs),
        },
        'Window shorter than the rate interval; no aggregate queries',
      );
    if (this.counterQueries) await this.reconcileCounters(clusterId, units, start, end, s, signal);
    if ((this.cfg.delete_ignored && ignored.length > 0) || this.cfg.labels_to_drop.length > 0)
      await this.deleteSeries(this.cfg.delete_ignored ? ignored : [], start, end, signal);
  }

  private async queryAll(
    clusterId: string,
    units: UnitRecord[],
    rangeMs: number,
    end: number,
    s: PromSettings,
    signal?: AbortSignal,
  ): Promise<void> {
    const uuids = [...new Set(units.map((u) => u.uuid))];
    const size = batchSize(rangeMs, s, this.cfg, uuids.length);
    const values = templateValues(rangeMs, s);
    // metric → sub-metric → uuid → value
    const results = new Map<string, Map<string, Map<string, number>>>();
    let failed = 0;
    let firstError = '';
    for (let i = 0; i < uuids.length; i += size) {
      const batch = uuids.slice(i, i + size).join('|');
      await Promise.all(
        this.queries.map(async (q) => {
          const query = q.template.render({ ...values, UUIDs: batch });
          try {
            const got = await this.instantQuery(query, end, s, signal);
            if (!results.has(q.metric)) results.set(q.metric, new Map());
            const bySub = results.get(q.metric)!;
            for (const { uuid, labels, value } of got) {
              const sub = q.subLabel ? labels[q.subLabel] || UNKNOWN_SOURCE : q.sub;
              if (!bySub.has(sub)) bySub.set(sub, new Map());
              const byUuid = bySub.get(sub)!;
              // a label's '' and `unknown` are one sub-metric: added; a plain sub-metric keeps its last sample
              byUuid.set(uuid, q.subLabel ? (byUuid.get(uuid) ?? 0) + value : value);
            }
          } catch (e) {
            failed++;
            firstError ||= (e as Error).message;
            this.logger.error(
              {
                updater: this.id,
                cluster_id: clusterId,
                metric: `${q.metric}.${q.sub}`,
                err: (e as Error).message,
              },
              'TSDB query failed',
            );
          }
        }),
      );
    }
    const total = this.queries.length * Math.ceil(uuids.length / size);
    if (failed === total)
      throw new Error(`Prometheus ${this.url} failed every aggregate query of the window: ${firstError}`);
    const handled = new Set(this.queries.map((q) => q.metric));
    for (const u of units) {
      // what the energy of this window was integrated from: its sampling error (docs/footprint.md)
      if (!handled.has(SAMPLING_FIELD)) u[SAMPLING_FIELD] = { scrape: s.scrapeMs / 1000 };
      for (const metric of handled) {
        const map: Record<string, number> = {};
        for (const [sub, byUuid] of results.get(metric) ?? []) {
          const v = byUuid.get(u.uuid);
          if (v !== undefined) map[sub] = cleanValue(v);
        }
        // No sample here keeps what an earlier updater of the chain found: with one updater per TSDB
        // shard, each shard holds the series of its own nodes' units only [D-API-20].
        if (Object.keys(map).length > 0 || u[metric] === undefined) u[metric] = map;
      }
    }
  }

  /**
   * Short units whose whole life is in the window take the node's energy counter delta × their CPU share
   * (counter.ts). The exporter publishes a unit's reading at its first scrape after the unit's end: a
   * unit that ended less than two scrape intervals before the window's end is waited for (at most that
   * long) and the query evaluated then. A failed query keeps the integrated figures.
   */
  private async reconcileCounters(
    clusterId: string,
    units: UnitRecord[],
    start: number,
    end: number,
    s: PromSettings,
    signal?: AbortSignal,
  ): Promise<void> {
    const candidates = units.filter((u) => reconcilable(u, start, end, s.scrapeMs));
    if (candidates.length === 0) return;
    const settled = Math.max(...candidates.map((u) => u.ended_at_ts ?? 0)) + 2 * s.scrapeMs;
    if (settled > Date.now())
      await sleep(Math.min(settled - Date.now(), 2 * s.scrapeMs), undefined, { signal });
    const at = Math.max(end, Math.min(Date.now(), settled));
    const rangeMs = Math.ceil((at - start) / 1000) * 1000;
    const values = templateValues(rangeMs, s);
    const uuids = [...new Set(candidates.map((u) => u.uuid))];
    const size = batchSize(rangeMs, s, this.cfg, uuids.length);
    const joules: UnitSample[] = [];
    const shares: UnitSample[] = [];
    try {
      for (let i = 0; i < uuids.length; i += size) {
        const batch = { ...values, UUIDs: uuids.slice(i, i + size).join('|') };
        const [j, sh] = await Promise.all([
          this.instantQuery(this.counterQueries!.joules.render(batch), at, s, signal),
          this.instantQuery(this.counterQueries!.share.render(batch), at, s, signal),
        ]);
        joules.push(...j);
        shares.push(...sh);
      }
    } catch (e) {
      this.logger.error(
        { updater: this.id, cluster_id: clusterId, err: (e as Error).message },
        'Energy counter query failed; short units keep their integrated energy',
      );
      return;
    }
    const counters = unitCounters(joules, shares);
    for (const u of candidates) {
      const c = counters.get(u.uuid);
      if (c) applyCounter(u, c);
    }
  }

  async clusterEnergy(start: number, end: number, signal?: AbortSignal): Promise<MetricMap | undefined> {
    if (!this.client) return undefined;
    const rangeMs = Math.floor((end - start) / 1000) * 1000;
    const s = await this.promSettings(signal);
    if (rangeMs < s.scrapeMs) return undefined;
    const matchers = this.cfg.node_matchers;
    const kwh = async (record: string) => {
      // the energy query of §12.3 over every node's series instead of a unit's
      const query = `sum(sum_over_time(${record}{${matchers}}[${goDuration(rangeMs)}:${goDuration(s.scrapeMs)}])) * ${s.scrapeMs} / 3.6e9`;
      const r = await this.instantQuery(query, end, s, signal, false);
      return r[0]?.value;
    };
    const [node, unattributed] = await Promise.all([
      kwh('instance:ceems_host_power_watts:pue'),
      kwh('instance:ceems_unattributed_power_watts:pue'),
    ]);
    if (node === undefined || unattributed === undefined) return undefined;
    return { node: cleanValue(node), unattributed: cleanValue(unattributed) };
  }

  private async deleteSeries(
    ignored: string[],
    start: number,
    end: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const params = new URLSearchParams();
    for (const m of this.cfg.labels_to_drop) params.append('match[]', m);
    if (ignored.length > 0) params.append('match[]', `{uuid=~"${ignored.join('|')}"}`);
    params.set('start', String((start - this.cutoffMs) / 1000));
    params.set('end', String(end / 1000));
    try {
      const res = await httpFetch(this.client!, `${this.url}/api/v1/admin/tsdb/delete_series?${params}`, {
        method: 'POST',
        timeoutMs: 60_000,
        signal,
      });
      if (res.status !== 204 && res.status !== 200)
        throw new Error(`HTTP ${res.status}: ${res.body.slice(0, 200)}`);
    } catch (e) {
      this.logger.error(
        { updater: this.id, err: (e as Error).message },
        'Deleting series from Prometheus failed',
      );
    }
  }

  async close(): Promise<void> {
    await this.client?.close();
  }
}
