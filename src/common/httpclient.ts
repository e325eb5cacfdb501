// Prometheus common `HTTPClientConfig` (basic_auth, authorization, tls_config, proxy_url, http_headers,
// follow_redirects) → an undici dispatcher plus request headers. Used for every outgoing HTTP client of
// the stack (Prometheus, Grafana, OpenStack, Redfish, the API server seen from the LB).

import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { Agent, type Dispatcher, interceptors, ProxyAgent, request } from 'undici';
import { z } from 'zod';

const TLS_VERSIONS = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' } as const;
const tlsVersion = z.enum(Object.keys(TLS_VERSIONS) as [keyof typeof TLS_VERSIONS]);

export const tlsConfigSchema = z.strictObject({
  ca: z.string().optional(),
  ca_file: z.string().optional(),
  cert: z.string().optional(),
  cert_file: z.string().optional(),
  key: z.string().optional(),
  key_file: z.string().optional(),
  server_name: z.string().optional(),
  insecure_skip_verify: z.boolean().optional(),
  min_version: tlsVersion.optional(),
  max_version: tlsVersion.optional(),
});

/** The client keys that may appear inline next to `url` in a config block. */
export const httpClientConfigShape = {
  basic_auth: z
    .strictObject({
      username: z.string().optional(),
      username_file: z.string().optional(),
      password: z.string().optional(),
      password_file: z.string().optional(),
    })
    .optional(),
  authorization: z
    .strictObject({
      type: z.string().optional(),
      credentials: z.string().optional(),
      credentials_file: z.string().optional(),
    })
    .optional(),
  bearer_token: z.string().optional(),
  bearer_token_file: z.string().optional(),
  oauth2: z.unknown().optional(),
  tls_config: tlsConfigSchema.optional(),
  proxy_url: z.string().optional(),
  no_proxy: z.string().optional(),
  proxy_from_environment: z.boolean().optional(),
  proxy_connect_header: z.record(z.string(), z.union([z.string(), z.array(z.string())])).optional(),
  follow_redirects: z.boolean().optional(),
  enable_http2: z.boolean().optional(),
  http_headers: z
    .record(
      z.string(),
      z.strictObject({
        values: z.array(z.string()).optional(),
        secrets: z.array(z.string()).optional(),
        files: z.array(z.string()).optional(),
      }),
    )
    .optional(),
};
export const httpClientConfigSchema = z.strictObject(httpClientConfigShape);
export type HttpClientConfig = z.infer<typeof httpClientConfigSchema>;

export class HttpClientConfigError extends Error {}

function readSecret(baseDir: string, file: string, what: string): string {
  const p = isAbsolute(file) ? file : resolve(baseDir, file);
  try {
    return readFileSync(p, 'utf8').trim();
  } catch (e) {
    throw new HttpClientConfigError(
      `cannot read ${what} '${p}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

export interface HttpClient {
  readonly dispatcher: Dispatcher;
  /** Headers to send on every request (auth + http_headers); files are re-read on each call. */
  headers(): Record<string, string>;
  close(): Promise<void>;
}

/** Builds a client; relative file names resolve against `baseDir` (the config file's directory). */
export function createHttpClient(
  cfg: HttpClientConfig = {},
  baseDir = process.cwd(),
  opts: { timeoutMs?: number } = {},
): HttpClient {
  if (cfg.oauth2 !== undefined)
    throw new HttpClientConfigError('oauth2 client configuration is not supported by this build');
  const auths = [cfg.basic_auth, cfg.authorization, cfg.bearer_token ?? cfg.bearer_token_file].filter(
    (x) => x !== undefined,
  );
  if (auths.length > 1)
    throw new HttpClientConfigError(
      'at most one of basic_auth, authorization and bearer_token may be configured',
    );
  const t = cfg.tls_config ?? {};
  const file = (inline: string | undefined, f: string | undefined, what: string) =>
    inline ?? (f ? readSecret(baseDir, f, what) : undefined);
  const connect = {
    ca: file(t.ca, t.ca_file, 'tls_config.ca_file'),
    cert: file(t.cert, t.cert_file, 'tls_config.cert_file'),
    key: file(t.key, t.key_file, 'tls_config.key_file'),
    servername: t.server_name,
    rejectUnauthorized: !(t.insecure_skip_verify ?? false),
    minVersion: t.min_version ? TLS_VERSIONS[t.min_version] : undefined,
    maxVersion: t.max_version ? TLS_VERSIONS[t.max_version] : undefined,
  };
  const timeouts = opts.timeoutMs
    ? { headersTimeout: opts.timeoutMs, bodyTimeout: opts.timeoutMs, connectTimeout: opts.timeoutMs }
    : {};
  const proxy =
    cfg.proxy_url ??
    (cfg.proxy_from_environment ? (process.env.HTTPS_PROXY ?? process.env.HTTP_PROXY) : undefined);
  const base: Dispatcher = proxy
    ? new ProxyAgent({ uri: proxy, requestTls: connect, ...timeouts })
    : new Agent({ connect, allowH2: cfg.enable_http2 ?? false, ...timeouts });
  const dispatcher =
    (cfg.follow_redirects ?? true) ? base.compose(interceptors.redirect({ maxRedirections: 10 })) : base;
  return {
    dispatcher,
    headers() {
      const h: Record<string, string> = {};
      if (cfg.basic_auth) {
        const b = cfg.basic_auth;
        const user =
          b.username ??
          (b.username_file ? readSecret(baseDir, b.username_file, 'basic_auth.username_file') : '');
        const pass =
          b.password ??
          (b.password_file ? readSecret(baseDir, b.password_file, 'basic_auth.password_file') : '');
        h.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
      }
      if (cfg.authorization) {
        const a = cfg.authorization;
        const cred =
          a.credentials ??
          (a.credentials_file
            ? readSecret(baseDir, a.credentials_file, 'authorization.credentials_file')
            : '');
        h.authorization = `${a.type ?? 'Bearer'} ${cred}`;
      }
      if (cfg.bearer_token || cfg.bearer_token_file) {
        h.authorization = `Bearer ${cfg.bearer_token ?? readSecret(baseDir, cfg.bearer_token_file!, 'bearer_token_file')}`;
      }
      for (const [name, v] of Object.entries(cfg.http_headers ?? {})) {
        const values = [
          ...(v.values ?? []),
          ...(v.secrets ?? []),
          ...(v.files ?? []).map((f) => readSecret(baseDir, f, `http_headers.${name}.files`)),
        ];
        if (values.length > 0) h[name.toLowerCase()] = values.join(', ');
      }
      return h;
    },
    close: () => dispatcher.close(),
  };
}

export interface FetchResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** GET/POST with a client, an overall timeout and a body size cap; throws on network errors/timeouts. */
export async function httpFetch(
  client: HttpClient,
  url: string,
  init: {
    method?: 'GET' | 'POST' | 'DELETE';
    headers?: Record<string, string>;
    body?: string;
    timeoutMs?: number;
    maxBytes?: number;
    signal?: AbortSignal;
  } = {},
): Promise<FetchResult> {
  const signals = [AbortSignal.timeout(init.timeoutMs ?? 30_000)];
  if (init.signal) signals.push(init.signal);
  const res = await request(url, {
    method: init.method ?? 'GET',
    headers: { ...client.headers(), ...init.headers },
    body: init.body,
    dispatcher: client.dispatcher,
    signal: AbortSignal.any(signals),
  });
  const max = init.maxBytes ?? 256 * 1024 * 1024;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > max) {
      res.body.destroy();
      throw new Error(`response from ${url} larger than ${max} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') };
}

/** Hop-by-hop headers (RFC 9110 §7.6.1): never forwarded by a proxy in either direction. */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);
