// /demo/units and /demo/usage (spec §7.9): random demonstration data, no user header needed.

import { randomInt, randomUUID } from 'node:crypto';
import { sendSuccess } from '../http.js';
import { UNIT_STRUCT, USAGE_STRUCT } from '../jsonenc.js';
import type { Unit, Usage } from '../models.js';
import { apiRoute, type RouteGroup } from './context.js';

interface ManagerDemo {
  manager: string;
  projects: string[];
  running: string;
  states: string[];
}

const MANAGERS: ManagerDemo[] = [
  {
    manager: 'slurm',
    projects: ['acc1', 'acc2', 'acc3', 'acc4', 'acc5'],
    running: 'RUNNING',
    states: ['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'PENDING', 'REQUEUED'],
  },
  {
    manager: 'openstack',
    projects: ['tenant1', 'tenant2', 'tenant3'],
    running: 'ACTIVE',
    states: ['DELETED', 'SHUTOFF', 'BUILD', 'UNKNOWN'],
  },
  {
    manager: 'k8s',
    projects: ['ns1', 'ns2', 'ns3', 'ns4', 'ns5', 'ns6'],
    running: 'Running',
    states: ['Succeeded', 'Failed', 'Pending'],
  },
];
const NOT_STARTED = new Set(['PENDING', 'Pending', 'REQUEUED', 'BUILD', 'UNKNOWN']);

const pick = <T>(list: readonly T[]): T => list[randomInt(list.length)]!;
const rand = (max: number) => Math.random() * max;
const rfc1123 = (ms: number) => new Date(ms).toUTCString();

function elapsed(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const hms = [Math.floor(seconds / 3600) % 24, Math.floor(seconds / 60) % 60, seconds % 60]
    .map((n) => String(n).padStart(2, '0'))
    .join(':');
  return d > 0 ? `${d}-${hms}` : hms;
}

function metrics(active: boolean): Partial<Unit> {
  const v = (max: number) => (active ? rand(max) : 0);
  return {
    avg_cpu_usage: { usage: v(100) },
    avg_cpu_mem_usage: { usage: v(100) },
    total_cpu_energy_usage_kwh: { usage: v(50) },
    total_cpu_emissions_gms: { rte: v(500) },
    avg_gpu_usage: { usage: v(100) },
    avg_gpu_mem_usage: { usage: v(100) },
    total_gpu_energy_usage_kwh: { usage: v(100) },
    total_gpu_emissions_gms: { rte: v(1000) },
    total_io_write_stats: { bytes: Math.round(v(1e10)), requests: Math.round(v(1e6)) },
    total_io_read_stats: { bytes: Math.round(v(1e10)), requests: Math.round(v(1e6)) },
    total_ingress_stats: { bytes: Math.round(v(1e10)), packets: Math.round(v(1e7)) },
    total_egress_stats: { bytes: Math.round(v(1e10)), packets: Math.round(v(1e7)) },
  };
}

export function demoUnits(now = Date.now()): Unit[] {
  const epoch = Math.floor(now / 1000);
  const units: Unit[] = [];
  for (let i = 0; i < 100; i++) {
    const m = pick(MANAGERS);
    const running = i < 20;
    const state = running ? m.running : pick(m.states);
    const started = !NOT_STARTED.has(state);
    const created = now - randomInt(1, 7 * 86400) * 1000;
    const start = started ? created + randomInt(0, 3600) * 1000 : 0;
    const end = started && !running ? start + randomInt(60, 2 * 86400) * 1000 : 0;
    const wall = started ? Math.floor(((end || now) - start) / 1000) : 0;
    const cpus = randomInt(1, 65);
    const gpus = randomInt(0, 5);
    const mem = cpus * 4 * 1024 ** 3;
    units.push({
      cluster_id: `${m.manager}-${randomInt(3)}`,
      resource_manager: m.manager,
      uuid: m.manager === 'slurm' ? String(epoch + i) : randomUUID(),
      name: `demo-${100 - i}`,
      project: pick(m.projects.slice(0, 2)),
      groupname: 'group',
      username: 'user1',
      created_at: rfc1123(created),
      started_at: started ? rfc1123(start) : 'Unknown',
      ended_at: end ? rfc1123(end) : 'Unknown',
      created_at_ts: created,
      started_at_ts: start,
      ended_at_ts: end,
      elapsed: elapsed(wall),
      state,
      allocation: { cpus, gpus, mem, nodes: randomInt(1, 5) },
      total_time_seconds: {
        walltime: wall,
        alloc_cputime: wall * cpus,
        alloc_cpumemtime: wall * (mem / 1024 ** 2),
        alloc_gputime: wall * gpus,
        alloc_gpumemtime: gpus > 0 ? wall : 0,
      },
      ...metrics(started),
      tags: { demo: true },
    });
  }
  return units;
}

export function demoUsage(): Usage[] {
  const out: Usage[] = [];
  for (let u = 1; u <= 7; u++) {
    const m = pick(MANAGERS);
    const projects = [...m.projects].sort(() => Math.random() - 0.5).slice(0, randomInt(1, 4));
    for (const project of projects) {
      const wall = randomInt(3600, 30 * 86400);
      out.push({
        cluster_id: '',
        resource_manager: m.manager,
        num_units: randomInt(1, 500),
        project,
        groupname: 'group',
        username: `user${u}`,
        total_time_seconds: {
          walltime: wall,
          alloc_cputime: wall * 16,
          alloc_cpumemtime: wall * 65536,
          alloc_gputime: wall * 2,
          alloc_gpumemtime: wall,
        },
        ...metrics(true),
      } as Usage);
    }
  }
  return out;
}

export const demoRoutes: RouteGroup = (app, ctx) => {
  apiRoute(
    app,
    `${ctx.api}/demo/units`,
    {
      access: 'public',
      summary: 'Random demonstration units (no user header)',
      tags: ['demo'],
      model: UNIT_STRUCT,
    },
    async (_req, reply) =>
      sendSuccess(reply, UNIT_STRUCT, demoUnits() as unknown as Record<string, unknown>[]),
  );
  apiRoute(
    app,
    `${ctx.api}/demo/usage`,
    {
      access: 'public',
      summary: 'Random demonstration usage (no user header)',
      tags: ['demo'],
      model: USAGE_STRUCT,
    },
    async (_req, reply) =>
      sendSuccess(reply, USAGE_STRUCT, demoUsage() as unknown as Record<string, unknown>[]),
  );
};
