// JSON Schema (draft 2020-12) of the footprint record (footprint.ts). docs/footprint-schema.json is this
// object as text; a test keeps the two equal and validates real records against it.

import { FOOTPRINT_SCHEMA_VERSION } from './footprint.js';

const kwhBy = (what: string) => ({
  type: 'object',
  description: `kWh by ${what}`,
  additionalProperties: { type: 'number', minimum: 0 },
});

const energyPart = (what: string) => ({
  type: 'object',
  description: `${what} energy of the unit, PUE included (kWh), and how it was obtained`,
  required: [
    'kwh',
    'sources',
    'provenance',
    'estimated_fraction',
    'pue',
    'lower_kwh',
    'upper_kwh',
    'uncertainty',
    'counter_node_kwh',
  ],
  additionalProperties: false,
  properties: {
    kwh: { type: 'number', minimum: 0, description: 'the `total` of the unit energy metric of /units' },
    sources: {
      ...kwhBy(
        "power source (cray, redfish, ipmi, rapl, estimated, dcgm, amd-device-metrics, amd-smi; rapl-counter, cray-counter, hwmon-counter: a node energy counter read at the unit's start and end, since 1.4.0); `unknown` is energy recorded without its source",
      ),
    },
    provenance: {
      enum: ['measured', 'estimated', 'partly_estimated', 'partly_unknown', 'unknown', 'none'],
    },
    estimated_fraction: {
      type: ['number', 'null'],
      minimum: 0,
      maximum: 1,
      description: 'share of kwh from the estimated-power model; null without energy',
    },
    pue: {
      type: ['number', 'null'],
      minimum: 1,
      description: 'energy-weighted PUE included in kwh; null when none was recorded',
    },
    lower_kwh: { type: 'number', minimum: 0, description: 'kwh × (1 − uncertainty.combined), at least 0' },
    upper_kwh: {
      type: 'number',
      minimum: 0,
      description:
        'kwh × (1 + uncertainty.combined); from a counter: counter_node_kwh × (1 + uncertainty.source)',
    },
    uncertainty: {
      type: 'object',
      description: 'relative half-widths of ~95 % intervals (docs/footprint.md)',
      required: ['source', 'attribution', 'sampling', 'combined'],
      additionalProperties: false,
      properties: {
        source: { type: 'number', minimum: 0, description: 'energy-weighted accuracy of the power sources' },
        attribution: {
          type: 'number',
          minimum: 0,
          description: "the attribution model's split of node power",
        },
        sampling: {
          type: 'number',
          minimum: 0,
          maximum: 1,
          description: 'sample interval ÷ unit duration, over the kWh not read from a counter',
        },
        combined: { type: 'number', minimum: 0, description: 'the three in quadrature' },
      },
    },
    counter_node_kwh: {
      type: ['number', 'null'],
      minimum: 0,
      description:
        "the whole node's energy counter delta over the unit's life (kWh, PUE included) when kwh is the unit's CPU share of it (short units); else null. Since 1.4.0",
    },
  },
});

const grams = (description: string) => ({ type: 'number', minimum: 0, description });

const embodied = {
  type: 'object',
  description:
    "manufacturing emissions of the unit's allocated core-hours and GPU-hours, amortised over the node class's lifetime; never part of operational",
  required: [
    'grams',
    'lower',
    'upper',
    'core_hours',
    'gpu_hours',
    'g_per_core_hour',
    'g_per_gpu_hour',
    'class',
    'node_classes',
  ],
  additionalProperties: false,
  properties: {
    grams: grams('gCO2e'),
    lower: grams('gCO2e, lower bound'),
    upper: grams('gCO2e, upper bound'),
    core_hours: { type: 'number', minimum: 0 },
    gpu_hours: { type: 'number', minimum: 0 },
    g_per_core_hour: grams(
      "server footprint ÷ (lifetime hours × cores); over several node classes, their rates weighted by the unit's core-hours on each",
    ),
    g_per_gpu_hour: grams(
      "GPU footprint ÷ lifetime hours; over several classes, weighted by the unit's GPU-hours",
    ),
    class: {
      type: 'object',
      description:
        "the class of most of the unit's nodes (API server config clusters[].footprint.node_classes[], else clusters[].footprint.embodied, named `default`)",
      required: ['server_kgco2e', 'cores', 'gpu_kgco2e', 'lifetime_years', 'uncertainty'],
      properties: {
        name: { type: 'string', description: 'the node class name; since 1.3.0' },
        server_kgco2e: { type: 'number', minimum: 0 },
        cores: { type: 'integer', minimum: 1 },
        gpu_kgco2e: { type: 'number', minimum: 0 },
        lifetime_years: { type: 'number', exclusiveMinimum: 0 },
        uncertainty: { type: 'number', minimum: 0, maximum: 1 },
      },
    },
    node_classes: {
      type: 'array',
      description:
        "the unit's allocation on each class of its nodes (core- and GPU-hours split evenly over its nodes); the parts sum to the totals above; since 1.3.0",
      items: {
        type: 'object',
        required: ['name', 'nodes', 'core_hours', 'gpu_hours', 'grams', 'lower', 'upper'],
        additionalProperties: false,
        properties: {
          name: { type: 'string' },
          nodes: { type: 'integer', minimum: 1 },
          core_hours: { type: 'number', minimum: 0 },
          gpu_hours: { type: 'number', minimum: 0 },
          grams: grams('gCO2e'),
          lower: grams('gCO2e, lower bound'),
          upper: grams('gCO2e, upper bound'),
        },
      },
    },
  },
};

/** One record, as the API description embeds it (no `$schema`/`$id` inside another document). */
export const FOOTPRINT_RECORD_SCHEMA = {
  title: 'CEEMS unit footprint record',
  description:
    'One compute unit (SLURM job, VM, pod) with its energy, the power source and PUE behind it, its operational emissions per provider, its embodied emissions apart, and lower/upper bounds of each (docs/footprint.md). Numbers are those of GET /api/v1/units. The version follows semver: fields are only added in minor versions.',
  type: 'object',
  required: [
    'schema_version',
    'cluster_id',
    'resource_manager',
    'uuid',
    'project',
    'username',
    'started_at_ts',
    'ended_at_ts',
    'resources',
    'energy',
    'emissions',
  ],
  properties: {
    schema_version: { type: 'string', pattern: '^1\\.[0-9]+\\.[0-9]+$' },
    cluster_id: { type: 'string' },
    resource_manager: { type: 'string' },
    uuid: { type: 'string', minLength: 1 },
    name: { type: 'string' },
    project: { type: 'string' },
    groupname: { type: 'string' },
    username: { type: 'string' },
    started_at: { type: 'string', description: 'in the API time zone, or Unknown/N/A' },
    ended_at: { type: 'string', description: 'in the API time zone, or Unknown while running' },
    started_at_ts: { type: 'integer', minimum: 0, description: 'Unix ms, 0 = unknown' },
    ended_at_ts: { type: 'integer', minimum: 0, description: 'Unix ms, 0 = running' },
    elapsed: { type: 'string' },
    state: { type: 'string' },
    short_unit: {
      type: 'boolean',
      description:
        'shorter than two sample intervals: its energy rests on one sample or none (sampling uncertainty up to 100 %); since 1.2.0',
    },
    sample_interval_seconds: {
      type: ['number', 'null'],
      exclusiveMinimum: 0,
      description:
        'seconds between the samples its energy was integrated from; null when not recorded; since 1.2.0',
    },
    resources: {
      type: 'object',
      required: ['allocation', 'time_seconds'],
      properties: {
        allocation: { type: 'object', description: 'allocation of /units (cpus, mem, gpus…)' },
        time_seconds: {
          type: 'object',
          description: 'total_time_seconds of /units (walltime, alloc_cputime, alloc_gputime…)',
          additionalProperties: { type: 'number' },
        },
      },
    },
    energy: {
      type: 'object',
      required: ['host', 'gpu', 'total_kwh', 'lower_kwh', 'upper_kwh'],
      properties: {
        host: energyPart('host (CPU, memory and the rest of the node)'),
        gpu: energyPart('GPU'),
        total_kwh: { type: 'number', minimum: 0 },
        lower_kwh: { type: 'number', minimum: 0, description: 'sum of the parts’ lower bounds' },
        upper_kwh: { type: 'number', minimum: 0, description: 'sum of the parts’ upper bounds' },
      },
    },
    emissions: {
      type: 'object',
      required: ['operational', 'embodied'],
      properties: {
        operational: {
          type: 'array',
          description:
            'one entry per emission factor provider (rte, emaps, owid…): never summed across providers',
          items: {
            type: 'object',
            required: [
              'provider',
              'factor_g_per_kwh',
              'host_g',
              'gpu_g',
              'total_g',
              'lower_g',
              'upper_g',
              'factor_spread',
            ],
            additionalProperties: false,
            properties: {
              provider: { type: 'string' },
              factor_g_per_kwh: {
                type: ['number', 'null'],
                minimum: 0,
                description: 'energy-weighted mean grid factor over the unit: total_g / energy.total_kwh',
              },
              host_g: { type: 'number', minimum: 0 },
              gpu_g: { type: 'number', minimum: 0 },
              total_g: { type: 'number', minimum: 0 },
              lower_g: grams(
                'bounds of total_g: energy uncertainty and factor spread in quadrature, per part',
              ),
              upper_g: grams('upper bound of total_g'),
              factor_spread: {
                type: 'number',
                minimum: 0,
                description: "assumed relative spread of the provider's factor over the unit's life",
              },
            },
          },
        },
        embodied,
      },
    },
  },
} as const;

/** The standalone, versioned schema: docs/footprint-schema.json. */
export const FOOTPRINT_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: `urn:ceems:footprint-schema:${FOOTPRINT_SCHEMA_VERSION}`,
  ...FOOTPRINT_RECORD_SCHEMA,
};
