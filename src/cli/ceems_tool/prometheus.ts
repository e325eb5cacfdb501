// The Prometheus HTTP API calls ceems_tool makes to learn what a running Prometheus scrapes.

import YAML from 'yaml';
import { parseDuration } from '../../common/duration.js';
import type { HttpClient } from '../../common/httpclient.js';
import { buildUrl, CliError, httpGet, parseJson } from '../http.js';

export type LabelSet = Record<string, string>;

export interface Prometheus {
  readonly window: Window;
  /** Global scrape and evaluation intervals in ms (Prometheus defaults 1m when unset). */
  globalIntervals(): Promise<{ scrapeMs: number; evaluationMs: number }>;
  /** Scrape interval (ms) of each job with active targets. */
  jobScrapeIntervals(): Promise<Map<string, number>>;
  /** Label sets of the series matching any of the selectors in the window, in Prometheus' order. */
  series(selectors: string | string[]): Promise<LabelSet[]>;
  /** Instant vector of `query` at the end of the window. */
  query(query: string): Promise<{ labels: LabelSet; value: number }[]>;
}

export interface Window {
  start: Date;
  end: Date;
}

export function createPrometheus(url: string, client: HttpClient, window: Window): Prometheus {
  const what = 'Prometheus';
  const api = async (path: string, params: [string, string][] = []): Promise<unknown> => {
    const full = buildUrl(url, path, params);
    const res = await httpGet(client, full, what);
    const body = parseJson(res.body, what) as { status?: string; data?: unknown; error?: string };
    if (res.status !== 200 || body.status !== 'success') {
      throw new CliError(
        `${what} API ${path} failed: HTTP ${res.status}${body.error ? `: ${body.error}` : ''}`,
      );
    }
    return body.data;
  };
  const secs = (d: Date) => String(d.getTime() / 1000);
  return {
    window,
    async globalIntervals() {
      const data = (await api('/api/v1/status/config')) as { yaml?: string };
      let cfg: { global?: { scrape_interval?: string; evaluation_interval?: string } } = {};
      try {
        cfg = YAML.parse(data.yaml ?? '') ?? {};
      } catch (e) {
        throw new CliError(`cannot parse the configuration returned by Prometheus: ${(e as Error).message}`);
      }
      return {
        scrapeMs: parseDuration(cfg.global?.scrape_interval ?? '1m'),
        evaluationMs: parseDuration(cfg.global?.evaluation_interval ?? '1m'),
      };
    },
    async jobScrapeIntervals() {
      const data = (await api('/api/v1/targets', [['state', 'active']])) as {
        activeTargets?: {
          labels?: LabelSet;
          scrapePool?: string;
          scrapeInterval?: string;
          discoveredLabels?: LabelSet;
        }[];
      };
      const out = new Map<string, number>();
      for (const t of data.activeTargets ?? []) {
        const job = t.labels?.job ?? t.scrapePool;
        const interval = t.scrapeInterval ?? t.discoveredLabels?.__scrape_interval__;
        if (job && interval && !out.has(job)) out.set(job, parseDuration(interval));
      }
      return out;
    },
    async series(selectors) {
      const data = await api('/api/v1/series', [
        ...[selectors].flat().map((s): [string, string] => ['match[]', s]),
        ['start', secs(window.start)],
        ['end', secs(window.end)],
      ]);
      return Array.isArray(data) ? (data as LabelSet[]) : [];
    },
    async query(query) {
      const data = (await api('/api/v1/query', [
        ['query', query],
        ['time', secs(window.end)],
      ])) as { resultType?: string; result?: { metric: LabelSet; value: [number, string] }[] };
      if (data.resultType !== 'vector') return [];
      return (data.result ?? []).map((r) => ({ labels: r.metric, value: Number(r.value[1]) }));
    },
  };
}
