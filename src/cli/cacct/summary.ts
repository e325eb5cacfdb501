// Totals of the listed units, for `--job`: the usage endpoint cannot filter by unit, so the Summary of
// `--job=1,37` is computed here from those units, with the API server's arithmetic (api-server.md §7.7):
// totals summed per key, averages weighted by the unit's allocated time, grouped by user and project.

import type { ApiRow } from './api.js';
import { mapKeys, metric } from './report.js';

/** Weight of each average: the allocated time the API server weights it with. */
const AVERAGE_WEIGHTS: Record<string, string> = {
  avg_cpu_usage: 'alloc_cputime',
  avg_cpu_mem_usage: 'alloc_cpumemtime',
  avg_gpu_usage: 'alloc_gputime',
  avg_gpu_mem_usage: 'alloc_gpumemtime',
};

/** Unit fields the summary needs besides the shown ones. */
export const SUMMARY_FIELDS = ['project', 'username', 'total_time_seconds'];

function aggregate(units: readonly ApiRow[], field: string): Record<string, number> | undefined {
  const keys = mapKeys(units, field);
  if (keys.length === 0) return undefined;
  const weightKey = AVERAGE_WEIGHTS[field];
  const out: Record<string, number> = {};
  for (const k of keys) {
    if (weightKey === undefined) {
      out[k] = units.reduce((s, u) => s + (metric(u, field, k) ?? 0), 0);
      continue;
    }
    let sum = 0;
    let weights = 0;
    for (const u of units) {
      const v = metric(u, field, k);
      const w = metric(u, 'total_time_seconds', weightKey) ?? 0;
      if (v === undefined) continue;
      sum += v * w;
      weights += w;
    }
    out[k] = weights > 0 ? sum / weights : 0; // the API's division by zero renders 0
  }
  return out;
}

/** One usage-shaped row per (user, project) of the units, ordered by user then project. */
export function summariseUnits(units: readonly ApiRow[]): ApiRow[] {
  const groups = new Map<string, ApiRow[]>();
  for (const u of units) {
    const key = JSON.stringify([String(u.username ?? ''), String(u.project ?? '')]);
    groups.set(key, [...(groups.get(key) ?? []), u]);
  }
  return [...groups.keys()].sort().map((key) => {
    const members = groups.get(key)!;
    const [username, project] = JSON.parse(key) as [string, string];
    const row: ApiRow = { username, project, groupname: '', num_units: members.length };
    const fields = new Set(members.flatMap((u) => Object.keys(u)));
    for (const f of fields) {
      if (!f.startsWith('avg_') && !f.startsWith('total_')) continue;
      const m = aggregate(members, f);
      if (m) row[f] = m;
    }
    return row;
  });
}
