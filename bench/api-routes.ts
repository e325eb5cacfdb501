// API server read path (issue 9): `/units` and `/usage` latency for one user owning 10k units in a DB of
// 1M units (small mode: 1k of 100k), through the real fastify routes (inject, no socket), against the floor
// of the same rows read straight from SQLite and serialised with JSON.stringify.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CeemsDb, openReader, type UnitRecord } from '../src/api/db/index.js';
import { formatDatetimezone } from '../src/api/timefmt.js';
import { testServer } from '../test/fixtures/api/server.js';

const TZ = 'UTC';
const T0 = Date.UTC(2024, 4, 1);
const USERS = 100; // user uN is the only member of project pN, so u0 owns 1 % of the units
const BATCH = 50_000;

function unit(i: number): UnitRecord {
  const started = T0 + i * 1000;
  const ended = started + 3600_000;
  return {
    cluster_id: 'slurm-0',
    resource_manager: 'slurm',
    uuid: String(1_000_000 + i),
    name: `job-${i}`,
    project: `p${i % USERS}`,
    groupname: `u${i % USERS}`,
    username: `u${i % USERS}`,
    created_at: formatDatetimezone(started - 60_000, TZ),
    started_at: formatDatetimezone(started, TZ),
    ended_at: formatDatetimezone(ended, TZ),
    created_at_ts: started - 60_000,
    started_at_ts: started,
    ended_at_ts: ended,
    elapsed: '01:00:00',
    state: 'COMPLETED',
    allocation: { cpus: 4, mem: 8589934592 },
    tags: { qos: 'normal' },
    total_time_seconds: { walltime: 3600, alloc_cputime: 14400, alloc_gputime: 0 },
    avg_cpu_usage: { global: (i % 100) + 0.5 },
    avg_cpu_mem_usage: { global: 25 },
    total_cpu_energy_usage_kwh: { total: 0.1 + (i % 10) / 100 },
    total_cpu_emissions_gms: { owid_total: 5.5 },
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function measure(
  fn: () => Promise<unknown> | unknown,
  reps: number,
): Promise<{ p50: number; p99: number }> {
  await fn(); // warm-up: statement cache, JIT
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

export async function run(small: boolean): Promise<void> {
  const total = small ? 100_000 : 1_000_000;
  const reps = small ? 5 : 20;
  const dir = mkdtempSync(join(tmpdir(), 'ceems-bench-routes-'));
  try {
    const db = CeemsDb.open(dir);
    const tFill = performance.now();
    for (let start = 0; start < total; start += BATCH) {
      const units = Array.from({ length: Math.min(BATCH, total - start) }, (_, k) => unit(start + k));
      db.storeCollection({
        start: T0 + start * 1000,
        end: T0 + (start + BATCH) * 1000 + 3600_000,
        timeZone: TZ,
        units,
        ...(start === 0
          ? {
              users: Array.from({ length: USERS }, (_, u) => ({
                cluster_id: 'slurm-0',
                resource_manager: 'slurm',
                name: `u${u}`,
                projects: [`p${u}`],
              })),
              projects: Array.from({ length: USERS }, (_, u) => ({
                cluster_id: 'slurm-0',
                resource_manager: 'slurm',
                name: `p${u}`,
                users: [`u${u}`],
              })),
            }
          : {}),
      });
    }
    db.close();
    console.log(
      `DB: ${total.toLocaleString('en-US')} units filled in ${((performance.now() - tFill) / 1000).toFixed(1)} s; user u0 owns ${(total / USERS).toLocaleString('en-US')}`,
    );

    const end = T0 + total * 1000 + 7200_000;
    const server = await testServer({ timeZone: TZ, now: () => end }, dir);
    const window = `from=${Math.floor(T0 / 1000) - 3600}&to=${Math.floor(end / 1000)}`;
    const get = async (url: string) => {
      const r = await server.get(url, 'u0');
      if (r.status !== 200) throw new Error(`${url}: ${r.status} ${r.body.slice(0, 200)}`);
      return r.body;
    };
    const unitsBody = await get(`/api/v1/units?${window}`);
    const count = (JSON.parse(unitsBody) as { data: unknown[] }).data.length;
    if (count !== total / USERS) throw new Error(`expected ${total / USERS} units for u0, got ${count}`);

    const reader = openReader(dir);
    const floorStmt = reader.prepare(
      'SELECT * FROM units WHERE project = ? AND started_at_ts <= ? AND (ended_at_ts = 0 OR ended_at_ts >= ?)',
    );
    const floor = await measure(() => JSON.stringify(floorStmt.all('p0', end, T0 - 3600_000)), reps);
    const units = await measure(() => get(`/api/v1/units?${window}`), reps);
    const current = await measure(() => get(`/api/v1/usage/current?${window}`), reps);
    const global = await measure(() => get('/api/v1/usage/global'), reps);
    reader.close();
    await server.close();

    const f = (m: { p50: number; p99: number }) => `p50 ${m.p50.toFixed(1)} ms, p99 ${m.p99.toFixed(1)} ms`;
    console.log(
      `floor: SELECT the user's ${count.toLocaleString('en-US')} rows + JSON.stringify: ${f(floor)}`,
    );
    console.log(
      `GET /units (${(unitsBody.length / 1e6).toFixed(1)} MB): ${f(units)}  ratio ${(units.p50 / floor.p50).toFixed(1)}x floor`,
    );
    console.log(`GET /usage/current: ${f(current)}  ratio ${(current.p50 / floor.p50).toFixed(2)}x floor`);
    console.log(`GET /usage/global: ${f(global)}  ratio ${(global.p50 / floor.p50).toFixed(2)}x floor`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
