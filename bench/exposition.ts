// Exposition encoder: rendering a 1,000-unit scrape (≈ 12 families × 1,000 series) vs the floor of joining
// pre-rendered lines of the same size.

import { encode, type MetricFamily } from '../src/common/exposition.js';

function families(units: number): MetricFamily[] {
  const names = [
    'cpu_user_seconds_total',
    'cpu_system_seconds_total',
    'cpus',
    'memory_rss_bytes',
    'memory_cache_bytes',
    'memory_used_bytes',
    'memory_total_bytes',
    'memory_fail_count',
    'memsw_used_bytes',
    'memsw_total_bytes',
    'cpu_psi_seconds',
    'memory_psi_seconds',
  ];
  return names.map((n) => ({
    name: `ceems_compute_unit_${n}`,
    help: `help of ${n}`,
    type: n.endsWith('_total') ? 'counter' : 'gauge',
    samples: Array.from({ length: units }, (_, i) => ({
      labels: {
        uuid: String(1_000_000 + ((i * 7919) % units)),
        manager: 'slurm',
        hostname: 'node-001',
        cgrouphostname: '',
      },
      value: i * 1234.5678,
    })),
  }));
}

function time(fn: () => unknown, reps: number): number {
  fn();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) fn();
  return (performance.now() - t0) / reps;
}

export function run(small: boolean): void {
  const units = small ? 100 : 1000;
  const reps = small ? 5 : 50;
  const fams = families(units);
  const text = encode(fams);
  const lines = text.split('\n');
  const encodeMs = time(() => encode(fams), reps);
  const floorMs = time(() => lines.join('\n'), reps);
  console.log(`units=${units} series=${units * fams.length} bytes=${text.length}`);
  console.log(
    `encode: ${encodeMs.toFixed(2)} ms   floor (join pre-rendered lines): ${floorMs.toFixed(3)} ms   ratio ${(encodeMs / floorMs).toFixed(1)}x`,
  );
}
