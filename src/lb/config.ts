// ceems_lb configuration (spec lb.md §3): the `ceems_lb` section plus the parts of the API server's
// sections it uses (`ceems_api_server.data.path|backend|url`, `ceems_api_server.web`, `clusters[].id`). The file may be
// the API server's own, so the rest of the API server's sections is not read here; keys nobody knows are
// warnings (common/config.ts).

import { existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, type ConfigNotice, loadConfigFile, type RenamedKey } from '../common/config.js';
import { type HttpClientConfig, httpClientConfigShape } from '../common/httpclient.js';
import type { Strategy } from './backend.js';
import type { LbType } from './endpoints.js';

export const DEFAULT_UNRESTRICTED_METRICS = ['ceems_emissions_gCo2_kWh'];

const webSchema = z.strictObject({ url: z.url({ protocol: /^https?$/ }), ...httpClientConfigShape });
const backendSchema = z.strictObject({
  id: z.string().optional(),
  tsdb: z.array(z.strictObject({ web: webSchema, filter_labels: z.array(z.string()).nullish() })).nullish(),
  pyroscope: z.array(z.strictObject({ web: webSchema })).nullish(),
});

export const lbConfigSchema = z.strictObject({
  ceems_lb: z.strictObject({
    strategy: z.string().optional(),
    unrestricted_metrics: z.array(z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/)).nullish(),
    backends: z.array(backendSchema).min(1, 'at least one backend is required'),
  }),
  ceems_api_server: z
    .looseObject({
      data: z
        .looseObject({
          path: z.string().optional(),
          backend: z.enum(['sqlite', 'postgres']).optional(),
          url: z.string().optional(),
        })
        .nullish(),
      web: z.looseObject({ url: z.string().optional(), ...httpClientConfigShape }).nullish(),
    })
    .nullish(),
  clusters: z.array(z.looseObject({ id: z.string() })).nullish(),
  updaters: z.unknown().optional(), // the API server's
});

/** A URL of the older layout as a server entry; credentials in the URL become its basic auth. */
function serverOfUrl(url: unknown): unknown {
  const m = typeof url === 'string' ? /^(https?:\/\/)([^@/]*)@(.*)$/.exec(url) : null;
  if (!m) return { web: { url } };
  const [user = '', pass = ''] = m[2]!.split(/:(.*)/s);
  const basic_auth = { username: decodeURIComponent(user), password: decodeURIComponent(pass) };
  return { web: { url: `${m[1]}${m[3]}`, basic_auth } };
}
const serversOfUrls = (urls: unknown) => (Array.isArray(urls) ? urls.map(serverOfUrl) : urls);

/** The first releases listed backends as `tsdb_urls` / `pyroscope_urls`, credentials inside the URLs. */
export const LB_RENAMED_KEYS: readonly RenamedKey[] = [
  { in: 'ceems_lb.backends.*', from: 'tsdb_urls', to: 'tsdb', convert: serversOfUrls },
  { in: 'ceems_lb.backends.*', from: 'pyroscope_urls', to: 'pyroscope', convert: serversOfUrls },
];

export interface BackendConfig {
  url: string;
  client: HttpClientConfig;
  filterLabels: string[];
}

export interface LbConfig {
  strategy: Strategy;
  unrestrictedMetrics: string[];
  /** Load-balancer types in order of first appearance, each with its backends per cluster id. */
  types: Array<{ type: LbType; clusters: Map<string, BackendConfig[]> }>;
  /** `<data.path>/ceems.db` when it exists (backend sqlite). */
  dbFile?: string;
  /** `data.url`, the API server's PostgreSQL (backend postgres) [D-LB-20]. */
  dbUrl?: string;
  api?: { url: string; client: HttpClientConfig };
  configDir: string;
  /** Ignored unknown keys, to be logged. */
  notices: ConfigNotice[];
}

function clientOf(web: Record<string, unknown>): HttpClientConfig {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(httpClientConfigShape)) if (web[k] !== undefined) out[k] = web[k];
  return out as HttpClientConfig;
}

export function loadConfig(file: string, expandEnv: boolean): LbConfig {
  const { config: raw, notices } = loadConfigFile(file, lbConfigSchema, {
    expandEnv,
    renamed: LB_RENAMED_KEYS,
  });
  const lb = raw.ceems_lb;
  const strategy = lb.strategy ?? 'round-robin';
  if (strategy !== 'round-robin' && strategy !== 'least-connection') {
    throw new ConfigError(`invalid strategy '${strategy}' (want round-robin or least-connection)`);
  }
  if (lb.backends.some((b) => !b.id)) throw new ConfigError('missing ID for backend(s)');
  if (lb.backends.some((b) => (b.tsdb ?? []).length === 0 && (b.pyroscope ?? []).length === 0)) {
    throw new ConfigError('missing TSDB and Pyroscope URL(s) for backend(s)');
  }
  if (raw.clusters) {
    const ids = new Set(raw.clusters.map((c) => c.id));
    for (const b of lb.backends)
      if (!ids.has(b.id!)) throw new ConfigError(`backend id '${b.id}' is not an id of clusters[]`);
  }
  const types: LbConfig['types'] = [];
  const typeOf = (t: LbType) => {
    let e = types.find((x) => x.type === t);
    if (!e) {
      e = { type: t, clusters: new Map() };
      types.push(e);
    }
    return e.clusters;
  };
  for (const b of lb.backends) {
    for (const t of ['tsdb', 'pyroscope'] as const) {
      const entries = b[t] ?? [];
      if (entries.length === 0) continue;
      const clusters = typeOf(t);
      const list = clusters.get(b.id!) ?? [];
      for (const e of entries) {
        list.push({
          url: e.web.url,
          client: clientOf(e.web),
          filterLabels: 'filter_labels' in e ? [...((e.filter_labels as string[] | null) ?? [])] : [],
        });
      }
      clusters.set(b.id!, list);
    }
  }
  const api = raw.ceems_api_server;
  const postgres = api?.data?.backend === 'postgres';
  const dbUrl = postgres ? api?.data?.url : undefined;
  if (postgres && !dbUrl)
    throw new ConfigError('ceems_api_server.data.url: required with ceems_api_server.data.backend: postgres');
  const dataPath = postgres ? undefined : api?.data?.path;
  const dbFile = dataPath ? resolve(dataPath, 'ceems.db') : undefined;
  const apiUrl = api?.web?.url;
  if (apiUrl !== undefined && !/^https?:\/\/[^/]/.test(apiUrl)) {
    throw new ConfigError(`ceems_api_server.web.url: invalid URL '${apiUrl}'`);
  }
  const dbExists = dbFile !== undefined && existsSync(dbFile);
  if (dbFile && !dbExists && !apiUrl) {
    // Starting without access control because the DB is not there yet would expose every unit.
    throw new ConfigError(
      `CEEMS API server DB ${dbFile} not found (ceems_api_server.data.path) and no ceems_api_server.web.url configured: refusing to run without access control`,
    );
  }
  return {
    strategy,
    unrestrictedMetrics: lb.unrestricted_metrics ?? DEFAULT_UNRESTRICTED_METRICS,
    types,
    dbFile: dbExists ? dbFile : undefined,
    dbUrl,
    api: apiUrl ? { url: apiUrl, client: clientOf(api!.web! as Record<string, unknown>) } : undefined,
    configDir: dirname(resolve(file)),
    notices,
  };
}

/** Files referenced by a client config (to resolve relative paths). */
function clientFiles(c: HttpClientConfig): string[] {
  return [
    c.tls_config?.ca_file,
    c.tls_config?.cert_file,
    c.tls_config?.key_file,
    c.basic_auth?.username_file,
    c.basic_auth?.password_file,
    c.authorization?.credentials_file,
    c.bearer_token_file,
    ...Object.values(c.http_headers ?? {}).flatMap((h) => h.files ?? []),
  ].filter((f): f is string => f !== undefined && !isAbsolute(f));
}

/**
 * Base directory for relative paths of a backend client config [D-LB-11]: the config file's directory,
 * or the web config file's directory (deprecated) when the files exist only there.
 */
export function clientBaseDir(
  c: HttpClientConfig,
  configDir: string,
  webConfigDir: string | undefined,
  warn: (msg: string) => void,
): string {
  const files = clientFiles(c);
  if (!webConfigDir || files.every((f) => existsSync(resolve(configDir, f)))) return configDir;
  if (files.every((f) => existsSync(resolve(webConfigDir, f)))) {
    warn(
      `relative paths in backend client configs are resolved against the --config.file directory; found ${files.join(', ')} relative to the --web.config.file directory, which is deprecated`,
    );
    return webConfigDir;
  }
  return configDir;
}
