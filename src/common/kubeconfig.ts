// Kubernetes API client configuration: a kubeconfig file (current context, token / client-certificate
// auth, CA) or the in-cluster service-account configuration (spec exporter.md §2.3, §6).

import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { createHttpClient, type HttpClient, type HttpClientConfig, httpFetch } from './httpclient.js';

export class KubeConfigError extends Error {
  override name = 'KubeConfigError';
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Resolved connection settings for one API server. */
export interface KubeConfig {
  /** Base URL, e.g. `https://10.0.0.1:6443`. */
  server: string;
  /** HTTP client settings (TLS + auth) in Prometheus client-config form, files absolute. */
  client: HttpClientConfig;
}

const clusterSchema = z
  .object({
    server: z.string(),
    'certificate-authority': z.string().optional(),
    'certificate-authority-data': z.string().optional(),
    'insecure-skip-tls-verify': z.boolean().optional(),
    'tls-server-name': z.string().optional(),
  })
  .loose();
const userSchema = z
  .object({
    token: z.string().optional(),
    tokenFile: z.string().optional(),
    'client-certificate': z.string().optional(),
    'client-certificate-data': z.string().optional(),
    'client-key': z.string().optional(),
    'client-key-data': z.string().optional(),
    username: z.string().optional(),
    password: z.string().optional(),
  })
  .loose();
const contextSchema = z.object({ cluster: z.string(), user: z.string().optional() }).loose();

const kubeconfigSchema = z
  .object({
    'current-context': z.string().optional(),
    clusters: z.array(z.object({ name: z.string(), cluster: clusterSchema }).loose()).optional(),
    users: z.array(z.object({ name: z.string(), user: userSchema.nullish() }).loose()).optional(),
    contexts: z.array(z.object({ name: z.string(), context: contextSchema }).loose()).optional(),
  })
  .loose();

const b64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

/** Loads a kubeconfig file and resolves its current context. Errors name the file and the key. */
export function loadKubeConfigFile(path: string): KubeConfig {
  let raw: unknown;
  try {
    raw = parse(readFileSync(path, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new KubeConfigError(`cannot read kubeconfig file '${path}': ${err.code ?? err.message}`);
  }
  const r = kubeconfigSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new KubeConfigError(
      `invalid kubeconfig file '${path}': ${i.path.join('.') || '(root)'}: ${i.message}`,
    );
  }
  const cfg = r.data;
  const base = dirname(resolve(path));
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const ctxName = cfg['current-context'] ?? cfg.contexts?.[0]?.name;
  const ctx = cfg.contexts?.find((c) => c.name === ctxName)?.context;
  if (!ctx)
    throw new KubeConfigError(`invalid kubeconfig file '${path}': context '${ctxName ?? ''}' not found`);
  const cluster = cfg.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  if (!cluster)
    throw new KubeConfigError(`invalid kubeconfig file '${path}': cluster '${ctx.cluster}' not found`);
  const user =
    ctx.user === undefined ? undefined : (cfg.users?.find((u) => u.name === ctx.user)?.user ?? undefined);
  if (ctx.user !== undefined && !cfg.users?.some((u) => u.name === ctx.user))
    throw new KubeConfigError(`invalid kubeconfig file '${path}': user '${ctx.user}' not found`);
  if (user && (user.exec !== undefined || user['auth-provider'] !== undefined))
    throw new KubeConfigError(
      `invalid kubeconfig file '${path}': user '${ctx.user}' uses exec/auth-provider credentials, which are not supported; use token, tokenFile or a client certificate`,
    );
  const client: HttpClientConfig = {
    tls_config: {
      ca: cluster['certificate-authority-data'] ? b64(cluster['certificate-authority-data']) : undefined,
      ca_file: cluster['certificate-authority'] ? abs(cluster['certificate-authority']) : undefined,
      cert: user?.['client-certificate-data'] ? b64(user['client-certificate-data']) : undefined,
      cert_file: user?.['client-certificate'] ? abs(user['client-certificate']) : undefined,
      key: user?.['client-key-data'] ? b64(user['client-key-data']) : undefined,
      key_file: user?.['client-key'] ? abs(user['client-key']) : undefined,
      insecure_skip_verify: cluster['insecure-skip-tls-verify'],
      server_name: cluster['tls-server-name'],
    },
  };
  if (user?.token) client.bearer_token = user.token;
  else if (user?.tokenFile) client.bearer_token_file = abs(user.tokenFile);
  else if (user?.username !== undefined)
    client.basic_auth = { username: user.username, password: user.password };
  return { server: cluster.server.replace(/\/+$/, ''), client };
}

/** In-cluster configuration from `KUBERNETES_SERVICE_HOST/PORT` and the service-account token and CA. */
export function inClusterConfig(
  env: NodeJS.ProcessEnv = process.env,
  saDir = SERVICE_ACCOUNT_DIR,
): KubeConfig {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port)
    throw new KubeConfigError(
      'no kubeconfig file given (--collector.k8s.kubeconfig.file) and not running in a cluster: ' +
        'KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set',
    );
  const tokenFile = resolve(saDir, 'token');
  try {
    readFileSync(tokenFile);
  } catch (e) {
    throw new KubeConfigError(
      `cannot read service account token '${tokenFile}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  const h = host.includes(':') ? `[${host}]` : host;
  // the token is re-read on every request: kubelet rotates projected tokens
  return {
    server: `https://${h}:${port}`,
    client: { bearer_token_file: tokenFile, tls_config: { ca_file: resolve(saDir, 'ca.crt') } },
  };
}

/** `--collector.k8s.kubeconfig.file` when given, else in-cluster. */
export function loadKubeConfig(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  saDir = SERVICE_ACCOUNT_DIR,
): KubeConfig {
  return file ? loadKubeConfigFile(file) : inClusterConfig(env, saDir);
}

/** HTTP client for the API server; file errors (CA, certs) become KubeConfigError. */
export function kubeHttpClient(cfg: KubeConfig, timeoutMs = 10_000): HttpClient {
  try {
    return createHttpClient(cfg.client, process.cwd(), { timeoutMs });
  } catch (e) {
    throw new KubeConfigError(`invalid Kubernetes client configuration: ${(e as Error).message}`);
  }
}

/**
 * GETs `path` (query string allowed) from the API server as JSON. Errors name the path and, for HTTP
 * errors, the message of the API's Status object.
 */
export async function kubeGetJson<T>(
  http: HttpClient,
  server: string,
  path: string,
  opts: { timeoutMs: number; maxBytes?: number; signal?: AbortSignal },
): Promise<T> {
  const res = await httpFetch(http, `${server}${path}`, { headers: { accept: 'application/json' }, ...opts });
  const what = `Kubernetes API ${path.split('?')[0]}`;
  if (res.status !== 200) {
    let msg = res.body.slice(0, 200);
    try {
      msg = (JSON.parse(res.body) as { message?: string }).message ?? msg;
    } catch {
      // not a Status object
    }
    throw new Error(`${what} returned HTTP ${res.status}: ${msg}`);
  }
  try {
    return JSON.parse(res.body) as T;
  } catch (e) {
    throw new Error(`${what} returned invalid JSON: ${(e as Error).message}`);
  }
}
