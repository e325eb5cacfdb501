// filter_labels on a large query_range answer (src/lb/jsonfilter.ts): CPU per response of cutting the
// labels out of the backend's bytes, against the floor any re-encoding pays (JSON.parse + JSON.stringify
// of the same body, without even removing anything), in the same run.

import { filterJson } from '../src/lb/jsonfilter.js';

/** A Prometheus-shaped matrix: `series` series of `points` samples with CEEMS unit labels. */
function matrix(series: number, points: number): Buffer {
  const result: string[] = [];
  for (let s = 0; s < series; s++) {
    const values: string[] = [];
    for (let t = 0; t < points; t++)
      values.push(`[${1700000000 + t * 15},"${((s * 7 + t * 13) % 1000) / 7}"]`);
    result.push(
      `{"metric":{"__name__":"ceems_compute_unit_cpu_user_seconds_total","hostname":"node${s}","instance":"node${s}:9010","job":"ceems","manager":"slurm","uuid":"${100000 + s}"},"values":[${values.join(',')}]}`,
    );
  }
  return Buffer.from(`{"status":"success","data":{"resultType":"matrix","result":[${result.join(',')}]}}`);
}

/** CPU milliseconds per call of `f`, the best of `rounds` rounds of `n` calls. */
function cpuMs(f: () => unknown, n: number, rounds: number): number {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < n; i++) f();
    const d = process.cpuUsage(t0);
    best = Math.min(best, (d.user + d.system) / 1000 / n);
  }
  return best;
}

export function run(small: boolean): void {
  const raw = small ? matrix(50, 60) : matrix(2000, 240);
  const [n, rounds] = small ? [5, 2] : [10, 3];
  const floor = cpuMs(() => JSON.stringify(JSON.parse(raw.toString('utf8'))), n, rounds);
  const filtered = cpuMs(() => filterJson('/api/v1/query_range', raw, ['instance', 'job']), n, rounds);
  const mib = raw.length / 1048576;
  console.log(`query_range answer: ${mib.toFixed(1)} MiB`);
  console.log(`JSON.parse + JSON.stringify (re-encoding floor): ${floor.toFixed(1)} ms CPU per response`);
  console.log(
    `filterJson (bytes kept, instance and job cut): ${filtered.toFixed(1)} ms CPU per response (${(filtered / floor).toFixed(2)}x the floor)`,
  );
}
