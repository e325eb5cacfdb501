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
  required: ['kwh', 'sources', 'provenance', 'estimated_fraction', 'pue'],
  additionalProperties: false,
  properties: {
    kwh: { type: 'number', minimum: 0, description: 'the `total` of the unit energy metric of /units' },
    sources: {
      ...kwhBy(
        'power source (cray, redfish, ipmi, rapl, estimated, dcgm, amd-device-metrics, amd-smi); `unknown` is energy recorded without its source',
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
  },
});

/** One record, as the API description embeds it (no `$schema`/`$id` inside another document). */
export const FOOTPRINT_RECORD_SCHEMA = {
  title: 'CEEMS unit footprint record',
  description:
    'One compute unit (SLURM job, VM, pod) with its energy, the power source and PUE behind it, and its operational emissions per provider. Numbers are those of GET /api/v1/units. The version follows semver: fields are only added in minor versions.',
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
      required: ['host', 'gpu', 'total_kwh'],
      properties: {
        host: energyPart('host (CPU, memory and the rest of the node)'),
        gpu: energyPart('GPU'),
        total_kwh: { type: 'number', minimum: 0 },
      },
    },
    emissions: {
      type: 'object',
      required: ['operational'],
      properties: {
        operational: {
          type: 'array',
          description:
            'one entry per emission factor provider (rte, emaps, owid…): never summed across providers',
          items: {
            type: 'object',
            required: ['provider', 'factor_g_per_kwh', 'host_g', 'gpu_g', 'total_g'],
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
            },
          },
        },
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
