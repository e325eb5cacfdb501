// Wire data models of the API server (spec api-server.md §8). Field order of each interface is the JSON
// wire order; `jsonenc.ts` applies the omitempty rules and Go-compatible number formatting.

/** Metric map (`total_time_seconds`, `avg_*`, `total_*`): sub-metric name → value. */
export type MetricMap = Record<string, number>;

/** Generic map (`allocation`, `tags`): arbitrary JSON values. */
export type GenericMap = Record<string, unknown>;

/**
 * Provenance of the energy columns (issue 20, migration 11): kWh by the `power_source` label and by the
 * `pue` label of the per-unit power records. Keyed maps summed like every `total_*` metric, so that a
 * unit fed partly by an estimate says how much, and `usage` sums them per project.
 */
export const PROVENANCE_FIELDS = [
  'total_cpu_energy_by_source_kwh',
  'total_gpu_energy_by_source_kwh',
  'total_cpu_energy_by_pue_kwh',
  'total_gpu_energy_by_pue_kwh',
] as const;

/**
 * Seconds between the samples the energy was integrated from (`scrape`: Prometheus' scrape interval),
 * averaged over the unit's windows by walltime: the sampling error of its energy (issue 20, migration 12).
 */
export const SAMPLING_FIELD = 'avg_sample_interval_seconds';

/** The metric columns of `units`, `usage` and `daily_usage`, in wire order: the original's 13, then ours. */
export const METRIC_FIELDS = [
  'total_time_seconds',
  'avg_cpu_usage',
  'avg_cpu_mem_usage',
  'total_cpu_energy_usage_kwh',
  'total_cpu_emissions_gms',
  'avg_gpu_usage',
  'avg_gpu_mem_usage',
  'total_gpu_energy_usage_kwh',
  'total_gpu_emissions_gms',
  'total_io_write_stats',
  'total_io_read_stats',
  'total_ingress_stats',
  'total_egress_stats',
  ...PROVENANCE_FIELDS,
  SAMPLING_FIELD,
] as const;
export type MetricField = (typeof METRIC_FIELDS)[number];

/** Weighted-average metrics and the `total_time_seconds` key that weighs them (§10.4). */
export const AVG_WEIGHTS: Readonly<Record<string, string>> = {
  avg_cpu_usage: 'alloc_cputime',
  avg_cpu_mem_usage: 'alloc_cpumemtime',
  avg_gpu_usage: 'alloc_gputime',
  avg_gpu_mem_usage: 'alloc_gpumemtime',
  [SAMPLING_FIELD]: 'walltime',
};

export type Metrics = { [K in MetricField]?: MetricMap };

/** One compute unit: SLURM job, OpenStack VM or Kubernetes pod (§8.1). */
export interface Unit extends Metrics {
  cluster_id?: string;
  resource_manager?: string;
  uuid: string;
  name?: string;
  project?: string;
  groupname?: string;
  username?: string;
  /** `DatetimezoneLayout` in the DB time zone, or `Unknown` / `N/A`. */
  created_at?: string;
  started_at?: string;
  ended_at?: string;
  /** Unix milliseconds; 0 = unknown. */
  created_at_ts?: number;
  started_at_ts?: number;
  ended_at_ts?: number;
  elapsed?: string;
  state?: string;
  allocation?: GenericMap;
  tags?: GenericMap;
}

/** Wire order of Unit fields (also the `field` whitelist of the unit endpoints). */
export const UNIT_FIELDS = [
  'cluster_id',
  'resource_manager',
  'uuid',
  'name',
  'project',
  'groupname',
  'username',
  'created_at',
  'started_at',
  'ended_at',
  'created_at_ts',
  'started_at_ts',
  'ended_at_ts',
  'elapsed',
  'state',
  'allocation',
  ...METRIC_FIELDS,
  'tags',
] as const;

/** Aggregate usage of one user in one project of one cluster (§8.2). */
export interface Usage extends Metrics {
  cluster_id: string;
  resource_manager: string;
  num_units: number;
  project: string;
  groupname: string;
  username: string;
}

export const USAGE_FIELDS = [
  'cluster_id',
  'resource_manager',
  'num_units',
  'project',
  'groupname',
  'username',
  ...METRIC_FIELDS,
] as const;

/** Account / tenant / namespace with its members (flat list, D-API-3). */
export interface Project {
  uid?: string;
  cluster_id: string;
  resource_manager: string;
  name: string;
  users: string[] | null;
  tags?: string[];
}
export const PROJECT_FIELDS = ['uid', 'cluster_id', 'resource_manager', 'name', 'users', 'tags'] as const;

/** User with the projects it belongs to; also the shape of admin users. */
export interface User {
  uid?: string;
  cluster_id: string;
  resource_manager?: string;
  name: string;
  projects?: string[];
  tags?: string[];
}
export const USER_FIELDS = ['uid', 'cluster_id', 'resource_manager', 'name', 'projects', 'tags'] as const;

export interface Cluster {
  id: string;
  manager: string;
}

export interface Stat {
  cluster_id: string;
  resource_manager: string;
  num_units: number;
  num_inactive_units: number;
  num_active_units: number;
  num_projects: number;
  num_users: number;
  /** Issue 20, B4: kWh the recording rules distributed on the nodes (`node`) and to no unit (`unattributed`). */
  total_node_energy_kwh?: MetricMap;
}

/** Field of the per-cluster energy of the nodes (table `cluster_energy`, `Stat`). */
export const NODE_ENERGY_FIELD = 'total_node_energy_kwh';
