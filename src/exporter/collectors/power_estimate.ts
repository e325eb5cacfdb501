// Estimated node power where no meter exists (cloud VMs, test machines without RAPL or BMC): a linear
// model idle + (max − idle) × CPU utilisation, exported under its own family with `source="estimated"`
// so it is never mistaken for measured power. Model and error bounds: docs/power-estimation.md.

import { join } from 'node:path';
import { readFileFast } from '../../common/fsread.js';
import type { Collector, CollectorContext, CollectorDefinition, Emitter } from '../collector.js';
import { parseProcStat } from './cpu.js';

/**
 * Cloud Carbon Footprint's average watts per vCPU at 0 % and 100 % CPU utilisation per cloud provider
 * (CCF methodology, "Energy Estimate (Watt-Hours)", derived from SPECpower results).
 */
export const CCF_WATTS_PER_VCPU = {
  aws: { min: 0.74, max: 3.5 },
  gcp: { min: 0.71, max: 4.26 },
  azure: { min: 0.78, max: 3.76 },
} as const;
export type CloudCoefficients = keyof typeof CCF_WATTS_PER_VCPU;

const FLAG = 'collector.estimated_power';
const FAMILY = 'ceems_estimated_power_watts';
const HELP =
  'Estimated node power in watts (linear CPU-utilisation model, not a measurement): idle + (max - idle) x CPU utilisation';

export interface PowerModel {
  idleWatts: number;
  maxWatts: number;
  /** Where the bounds come from, for the start-up log. */
  origin: string;
}

/** Busy share of CPU time between two /proc/stat samples; undefined when no time passed. */
export function utilisation(prev: Record<string, number>, now: Record<string, number>): number | undefined {
  let total = 0;
  let idle = 0;
  for (const mode of Object.keys(now)) {
    const d = now[mode]! - (prev[mode] ?? 0);
    if (d < 0) return undefined;
    total += d;
    if (mode === 'idle' || mode === 'iowait') idle += d;
  }
  if (!(total > 0)) return undefined;
  return Math.min(1, Math.max(0, 1 - idle / total));
}

export function estimatePower(model: PowerModel, util: number): number {
  return model.idleWatts + (model.maxWatts - model.idleWatts) * util;
}

/**
 * Idle/max bounds from the flags: explicit node watts, else per-CPU watts (explicit or a CCF cloud set)
 * × logical CPUs. Throws a message naming the flags when the model is incomplete or inconsistent.
 */
export function modelFromFlags(ctx: CollectorContext, cpus: number): PowerModel {
  const f = ctx.flags;
  const given = (name: string) => f.isSet(`${FLAG}.${name}`);
  const pair = (a: string, b: string): [number, number] | undefined => {
    if (!given(a) && !given(b)) return undefined;
    if (!given(a) || !given(b)) throw new Error(`--${FLAG}.${a} and --${FLAG}.${b} must be given together`);
    return [f.number(`${FLAG}.${a}`), f.number(`${FLAG}.${b}`)];
  };
  const node = pair('idle-watts', 'max-watts');
  const perCpu = pair('min-watts-per-cpu', 'max-watts-per-cpu');
  const cloud = f.string(`${FLAG}.coefficients`) as CloudCoefficients | '';
  let model: PowerModel;
  if (node) {
    model = { idleWatts: node[0], maxWatts: node[1], origin: 'node watts from flags' };
  } else if (perCpu) {
    model = {
      idleWatts: perCpu[0] * cpus,
      maxWatts: perCpu[1] * cpus,
      origin: `${cpus} CPUs x watts per CPU from flags`,
    };
  } else if (cloud !== '') {
    const c = CCF_WATTS_PER_VCPU[cloud];
    model = {
      idleWatts: c.min * cpus,
      maxWatts: c.max * cpus,
      origin: `${cpus} CPUs x Cloud Carbon Footprint ${cloud} coefficients (${c.min}-${c.max} W per vCPU)`,
    };
  } else {
    throw new Error(
      `the estimated_power collector needs --${FLAG}.idle-watts and --${FLAG}.max-watts, --${FLAG}.min-watts-per-cpu and --${FLAG}.max-watts-per-cpu, or --${FLAG}.coefficients`,
    );
  }
  if (!(model.idleWatts >= 0) || !(model.maxWatts > model.idleWatts))
    throw new Error(
      `estimated_power: need 0 <= idle < max watts, got idle ${model.idleWatts} W and max ${model.maxWatts} W (${model.origin})`,
    );
  return model;
}

export class EstimatedPowerCollector implements Collector {
  private prev: Record<string, number>;
  private lastUtil = 0;
  private readonly statPath: string;

  constructor(
    private readonly ctx: CollectorContext,
    readonly model: PowerModel,
    first: Record<string, number>,
  ) {
    this.statPath = join(ctx.procfs, 'stat');
    // The start-up sample makes the first scrape's utilisation cover the time since start.
    this.prev = first;
  }

  update(out: Emitter): void {
    const now = parseProcStat(readFileFast(this.statPath)).times;
    const u = utilisation(this.prev, now);
    // No elapsed ticks or counters going back (CPU hot-plug): keep the last utilisation.
    if (u !== undefined) this.lastUtil = u;
    this.prev = now;
    out.emit(
      FAMILY,
      'gauge',
      HELP,
      { hostname: this.ctx.hostname, model: 'linear_cpu', source: 'estimated' },
      estimatePower(this.model, this.lastUtil),
    );
  }
}

export const estimatedPower: CollectorDefinition = {
  name: 'estimated_power',
  defaultEnabled: false,
  flags: [
    { name: `${FLAG}.idle-watts`, type: 'float', help: 'Node power at 0 % CPU utilisation in watts.' },
    { name: `${FLAG}.max-watts`, type: 'float', help: 'Node power at 100 % CPU utilisation in watts.' },
    {
      name: `${FLAG}.min-watts-per-cpu`,
      type: 'float',
      help: 'Watts per logical CPU at 0 % utilisation (multiplied by the number of CPUs).',
    },
    {
      name: `${FLAG}.max-watts-per-cpu`,
      type: 'float',
      help: 'Watts per logical CPU at 100 % utilisation (multiplied by the number of CPUs).',
    },
    {
      name: `${FLAG}.coefficients`,
      type: 'enum',
      values: Object.keys(CCF_WATTS_PER_VCPU),
      help: 'Use the Cloud Carbon Footprint average watts per vCPU of this cloud.',
    },
  ],
  create(ctx) {
    const stat = parseProcStat(readFileFast(join(ctx.procfs, 'stat')));
    const model = modelFromFlags(ctx, stat.logical);
    ctx.logger.info(
      { idle_watts: model.idleWatts, max_watts: model.maxWatts, origin: model.origin },
      'Estimating node power from CPU utilisation',
    );
    return new EstimatedPowerCollector(ctx, model, stat.times);
  },
};
