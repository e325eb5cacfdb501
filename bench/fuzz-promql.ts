// Differential fuzzing of ceems_lb's PromQL reading against a real Prometheus (the testbed's 2.42 on port
// 9298, started and stopped here): `npm run fuzz -- [--seed=N] [--count=N] [--per-group=N]` prints the
// counts and every kind of disagreement with examples, and exits 1 on any disagreement. As a module of
// bench/run.ts (`npm run bench`) it runs 10,000 queries (300 with --small) and prints its figures only.

import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startTestbedPrometheus } from '../test/helpers/prometheus.js';
import {
  type DiffReport,
  differential,
  formatReport,
  PrometheusFormatter,
} from '../test/helpers/promql-diff.js';
import { generate } from '../test/helpers/promql-gen.js';

const PROM_PORT = 9298;

export interface FuzzOptions {
  seed: number;
  count: number;
}

/** Generates `count` queries from `seed` and runs the differential check against a fresh Prometheus. */
export async function fuzz(o: FuzzOptions): Promise<{ report: DiffReport; generateMs: number }> {
  const t0 = performance.now();
  const items = generate(o.seed, o.count);
  const generateMs = performance.now() - t0;
  const prometheus = startTestbedPrometheus(PROM_PORT, []);
  const formatter = new PrometheusFormatter(prometheus.url);
  try {
    return { report: await differential(formatter, items, o.seed), generateMs };
  } finally {
    await formatter.close();
    prometheus.stop();
  }
}

export async function run(small: boolean): Promise<void> {
  const count = small ? 300 : 10_000;
  const { report, generateMs } = await fuzz({ seed: 1, count });
  console.log(formatReport(report, 0));
  console.log(
    `generation ${generateMs.toFixed(0)} ms; LB check + Prometheus format_query ${(report.ms / count).toFixed(2)} ms/query`,
  );
}

if (resolve(process.argv[1] ?? '') === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string', default: String(Date.now() % 1_000_000) },
      count: { type: 'string', default: '10000' },
      'per-group': { type: 'string', default: '3' },
    },
  });
  const seed = Number(values.seed);
  const count = Number(values.count);
  if (!Number.isInteger(seed) || !Number.isInteger(count) || count < 1) {
    console.error('usage: npm run fuzz -- [--seed=N] [--count=N] [--per-group=N]');
    process.exit(2);
  }
  const { report, generateMs } = await fuzz({ seed, count });
  console.log(formatReport(report, Number(values['per-group'])));
  console.log(`generation ${generateMs.toFixed(0)} ms`);
  process.exit(report.disagreements.length > 0 ? 1 : 0);
}
