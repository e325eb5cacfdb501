// The 24 events of the perf sub-collector (spec exporter.md §10.1): profiler name (the value of the
// `--collector.perf.*-profilers` flags), kernel event (type and config of struct perf_event_attr) and the
// exported family with its HELP text.

import { cacheConfig, PERF_TYPE } from './attr.js';

export type EventKind = 'hardware' | 'software' | 'cache';

export interface PerfEvent {
  /** Profiler name as the flags spell it (`CpuCycles`, `PageFault`, `L1DataReadHit`, …). */
  readonly name: string;
  readonly kind: EventKind;
  /** perf_event_attr.type: PERF_TYPE_HARDWARE, PERF_TYPE_SOFTWARE or PERF_TYPE_HW_CACHE. */
  readonly type: number;
  /** perf_event_attr.config. */
  readonly config: number;
  /** Family name without the `ceems_perf_` prefix. */
  readonly metric: string;
  readonly help: string;
}

// include/uapi/linux/perf_event.h
const HW = { CPU_CYCLES: 0, INSTRUCTIONS: 1, CACHE_REFERENCES: 2, CACHE_MISSES: 3, BRANCH_INSTRUCTIONS: 4 };
const HW_BRANCH_MISSES = 5;
const HW_REF_CPU_CYCLES = 9;
const SW = { PAGE_FAULTS: 2, CONTEXT_SWITCHES: 3, CPU_MIGRATIONS: 4, PAGE_FAULTS_MIN: 5, PAGE_FAULTS_MAJ: 6 };
const CACHE = { L1D: 0, L1I: 1, LL: 2, ITLB: 4, BPU: 5 };
const OP = { READ: 0, WRITE: 1 };
const RESULT = { ACCESS: 0, MISS: 1 };

const hw = (name: string, config: number, metric: string, help: string): PerfEvent => ({
  name,
  kind: 'hardware',
  type: PERF_TYPE.HARDWARE,
  config,
  metric,
  help,
});
const sw = (name: string, config: number, metric: string, help: string): PerfEvent => ({
  name,
  kind: 'software',
  type: PERF_TYPE.SOFTWARE,
  config,
  metric,
  help,
});
const cache = (name: string, id: number, op: number, result: number, metric: string, help: string) =>
  ({
    name,
    kind: 'cache',
    type: PERF_TYPE.HW_CACHE,
    config: cacheConfig(id, op, result),
    metric,
    help,
  }) satisfies PerfEvent;

/** In the spec's table order; a kind's events are opened in this order. */
export const PERF_EVENTS: readonly PerfEvent[] = [
  hw('CpuCycles', HW.CPU_CYCLES, 'cpucycles_total', 'Number of CPU cycles (frequency scaled)'),
  hw('CpuInstr', HW.INSTRUCTIONS, 'instructions_total', 'Number of CPU instructions'),
  hw('BranchInstr', HW.BRANCH_INSTRUCTIONS, 'branch_instructions_total', 'Number of CPU branch instructions'),
  hw('BranchMisses', HW_BRANCH_MISSES, 'branch_misses_total', 'Number of CPU branch misses'),
  hw(
    'CacheRef',
    HW.CACHE_REFERENCES,
    'cache_refs_total',
    'Number of cache references (non frequency scaled)',
  ),
  hw('CacheMisses', HW.CACHE_MISSES, 'cache_misses_total', 'Number of cache misses'),
  hw('RefCpuCycles', HW_REF_CPU_CYCLES, 'ref_cpucycles_total', 'Number of CPU cycles'),
  sw('PageFault', SW.PAGE_FAULTS, 'page_faults_total', 'Number of page faults'),
  sw('ContextSwitch', SW.CONTEXT_SWITCHES, 'context_switches_total', 'Number of context switches'),
  sw('CpuMigration', SW.CPU_MIGRATIONS, 'cpu_migrations_total', 'Number of CPU process migrations'),
  sw('MinorFault', SW.PAGE_FAULTS_MIN, 'minor_faults_total', 'Number of minor page faults'),
  sw('MajorFault', SW.PAGE_FAULTS_MAJ, 'major_faults_total', 'Number of major page faults'),
  cache(
    'L1DataReadHit',
    CACHE.L1D,
    OP.READ,
    RESULT.ACCESS,
    'cache_l1d_read_hits_total',
    'Number L1 data cache read hits',
  ),
  cache(
    'L1DataReadMiss',
    CACHE.L1D,
    OP.READ,
    RESULT.MISS,
    'cache_l1d_read_misses_total',
    'Number L1 data cache read misses',
  ),
  cache(
    'L1DataWriteHit',
    CACHE.L1D,
    OP.WRITE,
    RESULT.ACCESS,
    'cache_l1d_write_hits_total',
    'Number L1 data cache write hits',
  ),
  cache(
    'L1InstrReadMiss',
    CACHE.L1I,
    OP.READ,
    RESULT.MISS,
    'cache_l1_instr_read_misses_total',
    'Number instruction L1 instruction read misses',
  ),
  cache(
    'InstrTLBReadHit',
    CACHE.ITLB,
    OP.READ,
    RESULT.ACCESS,
    'cache_tlb_instr_read_hits_total',
    'Number instruction TLB read hits',
  ),
  cache(
    'InstrTLBReadMiss',
    CACHE.ITLB,
    OP.READ,
    RESULT.MISS,
    'cache_tlb_instr_read_misses_total',
    'Number instruction TLB read misses',
  ),
  cache(
    'LLReadHit',
    CACHE.LL,
    OP.READ,
    RESULT.ACCESS,
    'cache_ll_read_hits_total',
    'Number last level read hits',
  ),
  cache(
    'LLReadMiss',
    CACHE.LL,
    OP.READ,
    RESULT.MISS,
    'cache_ll_read_misses_total',
    'Number last level read misses',
  ),
  cache(
    'LLWriteHit',
    CACHE.LL,
    OP.WRITE,
    RESULT.ACCESS,
    'cache_ll_write_hits_total',
    'Number last level write hits',
  ),
  cache(
    'LLWriteMiss',
    CACHE.LL,
    OP.WRITE,
    RESULT.MISS,
    'cache_ll_write_misses_total',
    'Number last level write misses',
  ),
  cache('BPUReadHit', CACHE.BPU, OP.READ, RESULT.ACCESS, 'cache_bpu_read_hits_total', 'Number BPU read hits'),
  cache(
    'BPUReadMiss',
    CACHE.BPU,
    OP.READ,
    RESULT.MISS,
    'cache_bpu_read_misses_total',
    'Number BPU read misses',
  ),
];

/**
 * The events of `kind` that `names` select [D-EXP-10]: the listed profilers only, all of the kind when
 * none is listed. An unknown name throws, listing the valid ones.
 */
export function selectEvents(kind: EventKind, names: readonly string[]): PerfEvent[] {
  const ofKind = PERF_EVENTS.filter((e) => e.kind === kind);
  if (names.length === 0) return ofKind;
  const unknown = names.filter((n) => !ofKind.some((e) => e.name === n));
  if (unknown.length > 0)
    throw new Error(
      `unknown ${kind} profiler${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `'${n}'`).join(', ')} (valid: ${ofKind.map((e) => e.name).join(', ')})`,
    );
  return ofKind.filter((e) => names.includes(e.name));
}
