// Embodied (manufacturing) emissions of a unit (issue 20, B5): the node class's manufacturing footprint
// amortised over its lifetime per core-hour and per GPU-hour, charged for the core- and GPU-hours the unit
// was allocated. Reported apart from operational emissions. Defaults and their sources: docs/footprint.md.

import { z } from 'zod';
import type { MetricMap, Unit } from './models.js';
import { expandHostlist } from './resource/hostlist.js';
import { type Bounds, bounds } from './uncertainty.js';

/** Hours of a year as Boavizta counts a server's life (35,040 h for 4 years). */
const HOURS_PER_YEAR = 8760;

export const embodiedClassSchema = z.strictObject({
  /** Manufacturing footprint of one node without its GPUs (kgCO2e). */
  server_kgco2e: z.number().nonnegative().default(970),
  /** Cores the server footprint is shared by. */
  cores: z.number().int().positive().default(48),
  /** Manufacturing footprint of one GPU (kgCO2e). */
  gpu_kgco2e: z.number().nonnegative().default(150),
  lifetime_years: z.number().positive().default(4),
  /** Relative half-width of the footprint figures' interval. */
  uncertainty: z.number().nonnegative().max(1).default(0.5),
});
export type EmbodiedClass = z.infer<typeof embodiedClassSchema>;

const MAX_NODES = 1_000_000;

/**
 * A class of a cluster's nodes: the nodes it holds by name (SLURM host list) or by the partition a job ran
 * in (SLURM partitions usually follow the hardware), with its own footprint figures.
 */
const nodeClassSchema = z
  .strictObject({
    name: z.string().min(1),
    /** SLURM host list, e.g. `gpu[001-040],bigmem01`. */
    nodes: z
      .string()
      .min(1)
      // bounded before expanding (a product of its ranges' sizes bounds the list): `n[1-99999999]` would
      // take the server's memory at start-up
      .superRefine((list, ctx) => {
        let size = 1;
        for (const m of list.matchAll(/(\d+)-(\d+)/g)) size *= Math.max(1, Number(m[2]) - Number(m[1]) + 1);
        if (size > MAX_NODES) ctx.addIssue({ code: 'custom', message: `more than ${MAX_NODES} nodes` });
        else if (/[[\]]/.test(expandHostlist(list).join(','))) {
          ctx.addIssue({ code: 'custom', message: 'malformed host list' });
        }
      })
      .optional(),
    partitions: z.array(z.string().min(1)).min(1).optional(),
    embodied: embodiedClassSchema.prefault({}),
  })
  .refine((c) => c.nodes !== undefined || c.partitions !== undefined, {
    message: 'a node class needs `nodes` or `partitions`',
  });

/** `clusters[].footprint` of the API server's config. */
export const footprintConfigSchema = z.strictObject({
  /** The class of the nodes no `node_classes` entry holds. */
  embodied: embodiedClassSchema.prefault({}),
  node_classes: z.array(nodeClassSchema).default([]),
});
export type FootprintConfig = z.infer<typeof footprintConfigSchema>;

/** A class as resolved for lookups, and as the footprint record names it. */
export interface NamedClass {
  name: string;
  embodied: EmbodiedClass;
}

/** Name of the cluster-wide class (`footprint.embodied`) in the records. */
export const DEFAULT_CLASS_NAME = 'default';

/** The node classes of one cluster, resolved once at start-up. */
export class ClusterEmbodied {
  private readonly byNode = new Map<string, NamedClass>();
  private readonly byPartition = new Map<string, NamedClass>();
  readonly fallback: NamedClass;

  constructor(config: FootprintConfig = footprintConfigSchema.parse({})) {
    this.fallback = { name: DEFAULT_CLASS_NAME, embodied: config.embodied };
    // The first class listing a node or partition wins, as an operator reads the list.
    for (const c of config.node_classes) {
      const named = { name: c.name, embodied: c.embodied };
      for (const n of c.nodes ? expandHostlist(c.nodes) : [])
        if (!this.byNode.has(n)) this.byNode.set(n, named);
      for (const p of c.partitions ?? []) if (!this.byPartition.has(p)) this.byPartition.set(p, named);
    }
  }

  /** Class of a node a unit of `partition` ran on: by node name, else by partition, else the default. */
  classOf(node: string | undefined, partition: string | undefined): NamedClass {
    return (
      (node === undefined ? undefined : this.byNode.get(node)) ??
      (partition === undefined ? undefined : this.byPartition.get(partition)) ??
      this.fallback
    );
  }
}

export const DEFAULT_CLUSTER_EMBODIED = new ClusterEmbodied();

/** The defaults: Boavizta's Dell R740 (2 × 24 cores) and Luccioni et al.'s GPU figure (docs/footprint.md). */
export const DEFAULT_EMBODIED: EmbodiedClass = embodiedClassSchema.parse({});

export interface EmbodiedEmissions extends Bounds {
  grams: number;
  core_hours: number;
  gpu_hours: number;
  g_per_core_hour: number;
  g_per_gpu_hour: number;
}

/** The share of a unit's allocation on the nodes of one class. */
export interface ClassShare extends Bounds {
  name: string;
  nodes: number;
  core_hours: number;
  gpu_hours: number;
  grams: number;
}

export interface UnitEmbodiedEmissions extends EmbodiedEmissions {
  /** The class of most of the unit's nodes (the first listed on a tie). */
  class: EmbodiedClass & { name: string };
  /** Each class the unit's nodes belong to, in the order of its first node. */
  node_classes: ClassShare[];
}

const stringTag = (u: Unit, key: string): string | undefined => {
  const v = (u.tags as Record<string, unknown> | undefined)?.[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
};

/**
 * Embodied emissions of a stored unit over the classes of its nodes (SLURM: `tags.nodelistexp`,
 * `tags.partition`; other managers store no node, so their units get the partition-less default). A
 * multi-node unit's core- and GPU-hours are split evenly over its nodes: SLURM's totals do not say how
 * they were spread, and jobs are mostly allocated evenly. The bounds of the classes add linearly (their
 * figures come from the same kind of vendor estimate, so their errors are not independent).
 */
export function unitEmbodiedEmissions(u: Unit, cluster: ClusterEmbodied): UnitEmbodiedEmissions {
  const time = u.total_time_seconds ?? {};
  const nodeList = stringTag(u, 'nodelistexp')?.split('|') ?? [undefined];
  const partition = stringTag(u, 'partition');
  const counts = new Map<NamedClass, number>();
  for (const node of nodeList) {
    const c = cluster.classOf(node, partition);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  const shares: ClassShare[] = [];
  let main: NamedClass | undefined;
  let total = { grams: 0, lower: 0, upper: 0, core_hours: 0, gpu_hours: 0, g_cores: 0, g_gpus: 0 };
  for (const [c, n] of counts) {
    if (!main || n > counts.get(main)!) main = c;
    const part = n / nodeList.length;
    const e = embodiedEmissions(
      { alloc_cputime: (time.alloc_cputime ?? 0) * part, alloc_gputime: (time.alloc_gputime ?? 0) * part },
      c.embodied,
    );
    shares.push({ name: c.name, nodes: n, ...pick(e) });
    total = {
      grams: total.grams + e.grams,
      lower: total.lower + e.lower,
      upper: total.upper + e.upper,
      core_hours: total.core_hours + e.core_hours,
      gpu_hours: total.gpu_hours + e.gpu_hours,
      g_cores: total.g_cores + e.core_hours * e.g_per_core_hour,
      g_gpus: total.g_gpus + e.gpu_hours * e.g_per_gpu_hour,
    };
  }
  const mainRates = embodiedEmissions({}, main!.embodied);
  return {
    grams: total.grams,
    lower: total.lower,
    upper: total.upper,
    core_hours: total.core_hours,
    gpu_hours: total.gpu_hours,
    // the rate the unit was charged at: one class's own, a mix's weighted by its hours
    g_per_core_hour: total.core_hours > 0 ? total.g_cores / total.core_hours : mainRates.g_per_core_hour,
    g_per_gpu_hour: total.gpu_hours > 0 ? total.g_gpus / total.gpu_hours : mainRates.g_per_gpu_hour,
    class: { name: main!.name, ...main!.embodied },
    node_classes: shares,
  };
}

const pick = (e: EmbodiedEmissions) => ({
  core_hours: e.core_hours,
  gpu_hours: e.gpu_hours,
  grams: e.grams,
  lower: e.lower,
  upper: e.upper,
});

/** Embodied emissions of a unit from its `total_time_seconds` (alloc_cputime, alloc_gputime). */
export function embodiedEmissions(timeSeconds: MetricMap, cls: EmbodiedClass): EmbodiedEmissions {
  const lifetimeHours = cls.lifetime_years * HOURS_PER_YEAR;
  const gPerCoreHour = (cls.server_kgco2e * 1000) / (lifetimeHours * cls.cores);
  const gPerGpuHour = (cls.gpu_kgco2e * 1000) / lifetimeHours;
  const coreHours = Math.max(0, timeSeconds.alloc_cputime ?? 0) / 3600;
  const gpuHours = Math.max(0, timeSeconds.alloc_gputime ?? 0) / 3600;
  const grams = coreHours * gPerCoreHour + gpuHours * gPerGpuHour;
  return {
    grams,
    ...bounds(grams, cls.uncertainty),
    core_hours: coreHours,
    gpu_hours: gpuHours,
    g_per_core_hour: gPerCoreHour,
    g_per_gpu_hour: gPerGpuHour,
  };
}
