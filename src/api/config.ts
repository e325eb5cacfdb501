// The API server's YAML configuration (spec §3): `ceems_api_server`, `clusters`, `updaters`. Other
// top-level keys (e.g. `ceems_lb`) and keys under `ceems_api_server.web` are ignored, as in the original.

import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, readYamlFile, validate } from '../common/config.js';
import { parseDuration } from '../common/duration.js';
import { httpClientConfigShape } from '../common/httpclient.js';
import { isValidZone } from './timefmt.js';

const DAY_MS = 24 * 3600e3;

const duration = (def: string) =>
  z
    .string()
    .default(def)
    .transform((s, ctx) => {
      try {
        return parseDuration(s);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    });

const UPDATE_FROM_RE = /^(?:|today|\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2})?)?)$/;
const ID_RE = /^[a-zA-Z0-9-_]+$/;

const webUrlClient = z.looseObject({ url: z.string().optional(), ...httpClientConfigShape });

const dataShape = {
  path: z.string().default('data'),
  retention_period: duration('30d'),
  update_interval: duration('15m').refine((v) => v > 0, 'must be > 0'),
  max_update_interval: duration('1h').refine((v) => v > 0, 'must be > 0'),
  update_from: z
    .string()
    .default('')
    .refine(
      (v) => UPDATE_FROM_RE.test(v),
      'must be "", today, YYYY-MM-DD, YYYY-MM-DDTHH:MM or YYYY-MM-DDTHH:MM:SS',
    ),
  time_zone: z
    .string()
    .default('Local')
    .refine((v) => isValidZone(v), 'unknown time zone'),
  backup_path: z.string().default(''),
  backup_interval: duration('1d'),
};

const grafanaShape = {
  url: z.url().optional(),
  teams_ids: z
    .array(z.coerce.string())
    .nullish()
    .transform((v) => v ?? []),
  ...httpClientConfigShape,
};

const adminShape = {
  users: z
    .array(z.string())
    .nullish()
    .transform((v) => v ?? []),
  grafana: z.object(grafanaShape).optional(),
};

// Unknown keys are ignored like the original's YAML decoding does (existing files keep working) and
// reported as warnings by `loadConfig`.
const apiServerSchema = z.object({
  data: z.object(dataShape).prefault({}),
  admin: z.object(adminShape).prefault({}),
  web: z.unknown().optional(),
});

/** `<path>.<key>` for every key of `obj` not in `known`. */
function unknownKeys(obj: unknown, known: object, path: string): string[] {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return [];
  return Object.keys(obj)
    .filter((k) => !(k in known))
    .map((k) => `${path}.${k}`);
}

const clusterSchema = z.object({
  id: z.string().regex(ID_RE, 'invalid cluster ID: must match [a-zA-Z0-9-_]+'),
  manager: z.enum(['slurm', 'openstack', 'k8s'], { message: 'unknown resource manager' }),
  updaters: z
    .array(z.string())
    .nullish()
    .transform((v) => v ?? []),
  cli: z
    .object({
      path: z.string().optional(),
      environment_variables: z.record(z.string(), z.coerce.string()).optional(),
    })
    .optional(),
  web: webUrlClient.optional(),
  extra_config: z.record(z.string(), z.unknown()).nullish(),
});

const updaterSchema = z.object({
  id: z.string().regex(ID_RE, 'invalid updater ID: must match [a-zA-Z0-9-_]+'),
  updater: z.enum(['tsdb'], { message: 'unknown updater' }),
  web: webUrlClient.optional(),
  extra_config: z.record(z.string(), z.unknown()).nullish(),
});

function uniqueIds(what: string) {
  return (list: { id: string }[], ctx: z.RefinementCtx) => {
    const seen = new Set<string>();
    list.forEach((c, i) => {
      if (seen.has(c.id))
        ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicate ID ${c.id} in ${what}` });
      seen.add(c.id);
    });
  };
}

export const configSchema = z.looseObject({
  ceems_api_server: apiServerSchema.prefault({}),
  clusters: z
    .array(clusterSchema)
    .nullish()
    .transform((v) => v ?? [])
    .superRefine(uniqueIds('clusters')),
  updaters: z
    .array(updaterSchema)
    .nullish()
    .transform((v) => v ?? [])
    .superRefine(uniqueIds('updaters')),
});

export type ApiServerConfig = z.infer<typeof configSchema>;
export type ClusterConfig = ApiServerConfig['clusters'][number];
export type UpdaterConfig = ApiServerConfig['updaters'][number];

export interface LoadedConfig {
  config: ApiServerConfig;
  /** Directory of the config file: relative paths inside HTTP client configs resolve against it. */
  configDir: string;
  /** Absolute data directory. */
  dataPath: string;
  /** Absolute backup directory, or '' for no backups. */
  backupPath: string;
  /** Ignored unknown keys under `ceems_api_server.data` / `.admin` / `.admin.grafana`. */
  unknownKeys: string[];
}

/** Reads and validates the config file; `disableChecks` skips the backup-interval sanity check. */
export function loadConfig(
  file: string,
  opts: { expandEnv?: boolean; disableChecks?: boolean; env?: NodeJS.ProcessEnv } = {},
): LoadedConfig {
  if (file === '') throw new ConfigError('--config.file is required');
  const raw = readYamlFile(file, { expandEnv: opts.expandEnv, env: opts.env });
  const config = validate(configSchema, raw, `config file '${file}'`);
  const data = config.ceems_api_server.data;
  if (!opts.disableChecks && data.backup_interval > 0 && data.backup_interval < DAY_MS) {
    throw new ConfigError(
      `config file '${file}': ceems_api_server.data.backup_interval: backup_interval of less than 1 day is not supported (got "${String((raw as { ceems_api_server?: { data?: { backup_interval?: unknown } } }).ceems_api_server?.data?.backup_interval)}")`,
    );
  }
  const section = (raw as { ceems_api_server?: { data?: unknown; admin?: { grafana?: unknown } } })
    ?.ceems_api_server;
  return {
    config,
    unknownKeys: [
      ...unknownKeys(section?.data, dataShape, 'ceems_api_server.data'),
      ...unknownKeys(section?.admin, adminShape, 'ceems_api_server.admin'),
      ...unknownKeys(section?.admin?.grafana, grafanaShape, 'ceems_api_server.admin.grafana'),
    ],
    configDir: dirname(resolve(file)),
    dataPath: resolve(data.path),
    backupPath: data.backup_path === '' ? '' : resolve(data.backup_path),
  };
}
