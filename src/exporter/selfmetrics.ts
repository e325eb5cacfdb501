// The exporter's own metrics: process_* and nodejs_* from prom-client (instead of Go's go_*), plus the
// promhttp_* handler families of client_golang (spec D-EXP-14).

import {
  Counter,
  collectDefaultMetrics,
  Gauge,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from 'prom-client';
import { formatFloat, type MetricFamily, type MetricType } from '../common/exposition.js';

export class SelfMetrics {
  private readonly registry = new Registry();
  readonly requests: Counter<'code'>;
  readonly inFlight: Gauge;

  constructor(withRuntime: boolean) {
    this.requests = new Counter({
      name: 'promhttp_metric_handler_requests_total',
      help: 'Total number of scrapes by HTTP status code.',
      labelNames: ['code'],
      registers: [this.registry],
    });
    this.inFlight = new Gauge({
      name: 'promhttp_metric_handler_requests_in_flight',
      help: 'Current number of scrapes being served.',
      registers: [this.registry],
    });
    // client_golang pre-initialises these three codes
    for (const code of ['200', '500', '503']) this.requests.inc({ code }, 0);
    if (withRuntime) collectDefaultMetrics({ register: this.registry });
  }

  async families(): Promise<MetricFamily[]> {
    const json = (await this.registry.getMetricsAsJSON()) as MetricObjectWithValues<MetricValue<string>>[];
    return json.map((m) => ({
      name: m.name,
      help: m.help,
      type: String(m.type) as MetricType,
      samples: m.values.map((v) => {
        const labels: Record<string, string> = {};
        for (const [k, val] of Object.entries(v.labels ?? {})) {
          labels[k] = typeof val === 'number' ? formatFloat(val) : String(val);
        }
        const name = (v as { metricName?: string }).metricName;
        return name && name !== m.name ? { name, labels, value: v.value } : { labels, value: v.value };
      }),
    }));
  }
}
