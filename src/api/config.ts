// The API server's YAML configuration (spec §3): `ceems_api_server`, `clusters`, `updaters`. The sections
// of ceems_lb sharing the file (`ceems_lb`, `ceems_api_server.web`) are not read here; keys nobody knows are
// warnings (common/config.ts), as the original's YAML decoding ignores them.

import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, type ConfigNotice, loadConfigFile, parseLenient } from '../common/config.js';
import { parseDuration } from '../common/duration.js';
import { httpClientConfigShape } from '../common/httpclient.js';
import { footprintConfigSchema } from './embodied.js';
import { k8sExtraConfigSchema } from './resource/k8s.js';
import { openstackExtraConfigSchema } from './resource/openstack.js';
import { isValidZone } from './timefmt.js';
import { tsdbExtraConfigSchema } from './updater/tsdb.js';

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

const webUrlClient = z.strictObject({ url: z.string().optional(), ...httpClientConfigShape });

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
  /** Where units are stored (issue 21): the embedded SQLite file under `path`, or a PostgreSQL server. */
  backend: z.enum(['sqlite', 'postgres'], { message: 'must be sqlite or postgres' }).default('sqlite'),
  /** libpq connection URL of the PostgreSQL database (`backend: postgres`). */
  url: z.string().default(''),
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
  grafana: z.strictObject(grafanaShape).optional(),
};

const apiServerSchema = z.strictObject({
  data: z.strictObject(dataShape).prefault({}),
  admin: z.strictObject(adminShape).prefault({}),
  web: z.unknown().optional(), // ceems_lb's view of this server
});

const clusterSchema = z.strictObject({
  id: z.string().regex(ID_RE, 'invalid cluster ID: must match [a-zA-Z0-9-_]+'),
  manager: z.enum(['slurm', 'openstack', 'k8s'], { message: 'unknown resource manager' }),
  updaters: z
    .array(z.string())
    .nullish()
    .transform((v) => v ?? []),
  cli: z
    .strictObject({
      path: z.string().optional(),
      environment_variables: z.record(z.string(), z.coerce.string()).optional(),
    })
    .optional(),
  web: webUrlClient.optional(),
  extra_config: z.record(z.string(), z.unknown()).nullish(),
  /** Embodied emissions of the cluster's nodes (issue 20); defaults in embodied.ts. */
  footprint: footprintConfigSchema.optional(),
});

const updaterSchema = z.strictObject({
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

export const configSchema = z.strictObject({
  ceems_api_server: apiServerSchema.prefault({}),
  ceems_lb: z.unknown().optional(), // read by ceems_lb
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
  /** Ignored unknown keys, to be logged. */
  notices: ConfigNotice[];
}

const EXTRA_CONFIG_SCHEMAS: Partial<Record<ClusterConfig['manager'], z.ZodType>> = {
  openstack: openstackExtraConfigSchema,
  k8s: k8sExtraConfigSchema,
};

/**
 * `extra_config` of each cluster and updater read by the same rule as the rest of the file (its schema
 * belongs to the manager or updater), so that its unknown keys are reported with their place and its
 * errors stop the start-up; the managers and updaters get it without the unknown keys.
 */
function readExtraConfigs(config: ApiServerConfig, file: string): ConfigNotice[] {
  const notices: ConfigNotice[] = [];
  const read = (schema: z.ZodType | undefined, input: unknown, at: string) => {
    if (!schema || input == null) return input;
    const r = parseLenient(schema, input, { file, what: `config file '${file}': ${at}`, at });
    notices.push(...r.notices);
    return r.cleaned; // the manager or updater applies its defaults itself
  };
  config.clusters.forEach((c, i) => {
    c.extra_config = read(EXTRA_CONFIG_SCHEMAS[c.manager], c.extra_config, `clusters.${i}.extra_config`) as
      | Record<string, unknown>
      | undefined;
  });
  config.updaters.forEach((u, i) => {
    u.extra_config = read(tsdbExtraConfigSchema, u.extra_config, `updaters.${i}.extra_config`) as
      | Record<string, unknown>
      | undefined;
  });
  return notices;
}

/** `data.url` and `data.backup_path` with `backend: postgres` (docs/postgresql.md). */
function checkPostgres(data: ApiServerConfig['ceems_api_server']['data'], file: string): void {
  const at = `config file '${file}': ceems_api_server.data`;
  if (data.url === '')
    throw new ConfigError(
      `${at}.url: required with backend postgres (a libpq URL: postgres://user:password@host:5432/ceems)`,
    );
  let url: URL | undefined;
  try {
    url = new URL(data.url);
  } catch {
    // reported below without echoing the URL: it may hold a password
  }
  if (
    !url ||
    !['postgres:', 'postgresql:'].includes(url.protocol) ||
    (url.hostname === '' && !url.searchParams.has('host')) // host=/run/postgresql: a unix socket
  )
    throw new ConfigError(
      `${at}.url: not a PostgreSQL connection URL (expected postgres://user:password@host:5432/ceems)`,
    );
  if (data.backup_path !== '')
    throw new ConfigError(
      `${at}.backup_path: the API server makes no backups of a PostgreSQL database; remove backup_path and back the database up with pg_dump`,
    );
}

/** Reads and validates the config file; `disableChecks` skips the backup-interval sanity check. */
export function loadConfig(
  file: string,
  opts: { expandEnv?: boolean; disableChecks?: boolean; env?: NodeJS.ProcessEnv } = {},
): LoadedConfig {
  if (file === '') throw new ConfigError('--config.file is required');
  const { config, notices } = loadConfigFile(file, configSchema, {
    expandEnv: opts.expandEnv,
    env: opts.env,
  });
  const data = config.ceems_api_server.data;
  if (!opts.disableChecks && data.backup_interval > 0 && data.backup_interval < DAY_MS) {
    throw new ConfigError(
      `config file '${file}': ceems_api_server.data.backup_interval: backup_interval of less than 1 day is not supported (got ${data.backup_interval / 3600e3}h)`,
    );
  }
  if (data.backend === 'postgres') checkPostgres(data, file);
  return {
    config,
    notices: [...notices, ...readExtraConfigs(config, file)],
    configDir: dirname(resolve(file)),
    dataPath: resolve(data.path),
    backupPath: data.backup_path === '' ? '' : resolve(data.backup_path),
  };
}
