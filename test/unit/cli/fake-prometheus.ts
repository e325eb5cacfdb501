// A fake Prometheus HTTP API for ceems_tool tests: status/config, targets, series (with a small selector
// matcher: `name{l="v",l=~"re",l!="v"}` and `{__name__=...}`) and instant queries answered from a table.

import { type FakeServer, startFake } from './fake-api.js';

export type Labels = Record<string, string>;

export interface FakePrometheusData {
  scrapeInterval?: string;
  evaluationInterval?: string;
  /** job → scrape interval */
  jobs?: Record<string, string>;
  series: Labels[];
  /** instant query answer (undefined → empty vector); every query text is recorded in `queries` */
  query?: (q: string) => number | undefined;
}

function matcher(selector: string): (l: Labels) => boolean {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)?(?:\{(.*)\})?$/.exec(selector.trim());
  if (!m) throw new Error(`fake Prometheus: cannot parse selector ${selector}`);
  const tests: ((l: Labels) => boolean)[] = [];
  if (m[1]) tests.push((l) => l.__name__ === m[1]);
  for (const part of (m[2] ?? '').matchAll(/([a-zA-Z_]+)\s*(=~|!=|!~|=)\s*"((?:[^"\\]|\\.)*)"/g)) {
    const [, name, op, raw] = part;
    const value = JSON.parse(`"${raw}"`) as string;
    const re = new RegExp(`^(?:${value})$`);
    tests.push((l) => {
      const v = l[name!] ?? '';
      if (op === '=') return v === value;
      if (op === '!=') return v !== value;
      if (op === '=~') return re.test(v);
      return !re.test(v);
    });
  }
  return (l) => tests.every((t) => t(l));
}

/** Prometheus' series order (labels.Compare): label by label in name order, by name then value. */
function compareLabels(a: Labels, b: Labels): number {
  const x = Object.entries(a).sort(([p], [q]) => (p < q ? -1 : 1));
  const y = Object.entries(b).sort(([p], [q]) => (p < q ? -1 : 1));
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const [[xn, xv], [yn, yv]] = [x[i]!, y[i]!];
    if (xn !== yn) return xn < yn ? -1 : 1;
    if (xv !== yv) return xv < yv ? -1 : 1;
  }
  return x.length - y.length;
}

export function startFakePrometheus(data: FakePrometheusData): Promise<FakeServer> {
  const ok = (d: unknown) => ({ status: 200, body: JSON.stringify({ status: 'success', data: d }) });
  return startFake((req) => {
    const params = new Map(req.query);
    switch (req.path) {
      case '/api/v1/status/config':
        return ok({
          yaml: `global:\n  scrape_interval: ${data.scrapeInterval ?? '15s'}\n  evaluation_interval: ${data.evaluationInterval ?? '15s'}\nscrape_configs: []\n`,
        });
      case '/api/v1/targets':
        return ok({
          activeTargets: Object.entries(data.jobs ?? {}).map(([job, interval]) => ({
            discoveredLabels: { __scrape_interval__: interval, job },
            labels: { job, instance: 'node:9010' },
            scrapePool: job,
            health: 'up',
          })),
          droppedTargets: [],
        });
      case '/api/v1/series': {
        const matchers = req.query.filter(([k]) => k === 'match[]').map(([, v]) => matcher(v));
        return ok(data.series.filter((l) => matchers.some((m) => m(l))).sort(compareLabels));
      }
      case '/api/v1/query': {
        const v = data.query?.(params.get('query') ?? '');
        return ok({
          resultType: 'vector',
          result: v === undefined ? [] : [{ metric: {}, value: [0, String(v)] }],
        });
      }
      default:
        return { status: 404, body: '404 page not found' };
    }
  });
}
