// Embodied (manufacturing) emissions of a unit (issue 20, B5): the node class's manufacturing footprint
// amortised over its lifetime per core-hour and per GPU-hour, charged for the core- and GPU-hours the unit
// was allocated. Reported apart from operational emissions. Defaults and their sources: docs/footprint.md.

import { z } from 'zod';
import type { MetricMap } from './models.js';
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

/** `clusters[].footprint` of the API server's config. */
export const footprintConfigSchema = z.strictObject({ embodied: embodiedClassSchema.prefault({}) });

/** The defaults: Boavizta's Dell R740 (2 × 24 cores) and Luccioni et al.'s GPU figure (docs/footprint.md). */
export const DEFAULT_EMBODIED: EmbodiedClass = embodiedClassSchema.parse({});

export interface EmbodiedEmissions extends Bounds {
  grams: number;
  core_hours: number;
  gpu_hours: number;
  g_per_core_hour: number;
  g_per_gpu_hour: number;
}

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
