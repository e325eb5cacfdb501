// Reverse proxy from compute nodes to their BMC's Redfish API (spec cli.md §3). The target is found from
// the client's addresses (X-Real-IP values and the peer address) in a static map, else from the
// X-Redfish-Url header sent by the exporter's redfish collector, which is then remembered for those IPs.

import { dirname } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { request } from 'undici';
import { z } from 'zod';
import { ConfigError, type ConfigNotice, loadConfigFile, type RenamedKey } from '../common/config.js';
import {
  createHttpClient,
  HOP_BY_HOP_HEADERS,
  type HttpClient,
  httpClientConfigShape,
} from '../common/httpclient.js';
import type { Logger } from '../common/logger.js';

export const DEFAULT_ALLOWED_API_RESOURCES = [
  '^/redfish/v1/$',
  '^/redfish/v1/Sessions$',
  '^/redfish/v1/SessionService/Sessions$',
  '^/redfish/v1/SessionService/Sessions/[a-zA-Z0-9-_]*$',
  '^/redfish/v1/Chassis$',
  '^/redfish/v1/Chassis/[a-zA-Z0-9-_]*$',
  '^/redfish/v1/Chassis/[a-zA-Z0-9-_]*/Power$',
];

const targetUrl = z.url({ protocol: /^https?$/ });

const proxyShape = z.strictObject({
  targets: z.array(z.strictObject({ host_ip_addrs: z.array(z.string()).min(1), url: targetUrl })).default([]),
  allowed_api_resources: z.array(z.string()).optional(),
  ...httpClientConfigShape,
});

export const proxyConfigSchema = z
  .strictObject({ redfish_proxy: proxyShape.optional() })
  .refine((o) => o.redfish_proxy !== undefined, { message: "root key 'redfish_proxy' is missing" });

/** Names of older releases (read leniently, common/config.ts). */
export const PROXY_RENAMED_KEYS: readonly RenamedKey[] = [
  { in: '', from: 'redfish_config', to: 'redfish_proxy' },
  { in: 'redfish_proxy', from: 'insecure_skip_verify', to: 'tls_config.insecure_skip_verify' },
];

export interface ProxyConfig {
  /** Node IP → BMC base URL (origin only). */
  targets: Map<string, string>;
  /** undefined = every path allowed (no config file). */
  allowed: RegExp[] | undefined;
  http: z.infer<z.ZodObject<typeof httpClientConfigShape>>;
  baseDir: string;
  /** Ignored unknown keys and deprecated names, to be logged. */
  notices: ConfigNotice[];
}

/** Reads the proxy config; no file means no static targets and every path allowed. */
export function loadProxyConfig(path: string, expandEnv: boolean): ProxyConfig {
  if (path === '')
    return {
      targets: new Map(),
      allowed: undefined,
      http: {},
      baseDir: process.cwd(),
      notices: [],
    };
  const { config: doc, notices } = loadConfigFile(path, proxyConfigSchema, {
    what: `redfish_proxy config file '${path}'`,
    renamed: PROXY_RENAMED_KEYS,
    expandEnv,
  });
  const { targets, allowed_api_resources, ...http } = doc.redfish_proxy!;
  const allowed = (allowed_api_resources ?? DEFAULT_ALLOWED_API_RESOURCES).map((re, i) => {
    try {
      return new RegExp(re);
    } catch (e) {
      throw new ConfigError(
        `redfish_proxy config file '${path}': allowed_api_resources.${i}: invalid regex '${re}': ${(e as Error).message}`,
      );
    }
  });
  const map = new Map<string, string>();
  for (const t of targets) for (const ip of t.host_ip_addrs) map.set(ip, new URL(t.url).origin);
  return {
    targets: map,
    allowed,
    http,
    baseDir: dirname(path),
    notices,
  };
}

// hop-by-hop headers and those the proxy sets itself
const STRIPPED_REQUEST = new Set([
  ...HOP_BY_HOP_HEADERS,
  'host',
  'x-redfish-url',
  'authorization',
  'content-length',
]);
const STRIPPED_RESPONSE = HOP_BY_HOP_HEADERS;
// RFC 9110 §5.1 field name; excludes HTTP/2 pseudo-headers (`:authority`, `:path`...) of an HTTP/2 front
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * The headers of `from` a proxy may pass on: real field names only, none of `stripped`. The one place
 * where headers cross the proxy, in both directions.
 */
export function forwardableHeaders(
  from: Record<string, string | string[] | undefined>,
  stripped: ReadonlySet<string>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(from)) {
    const name = k.toLowerCase();
    if (v !== undefined && FIELD_NAME.test(name) && !stripped.has(name)) out[name] = v;
  }
  return out;
}

const plainIp = (a: string | undefined) => (a?.startsWith('::ffff:') ? a.slice(7) : a);

function errorReply(reply: FastifyReply, code: number, msg: string) {
  return reply
    .code(code)
    .type('text/plain; charset=utf-8')
    .header('X-Content-Type-Options', 'nosniff')
    .send(`${msg}\n`);
}

export const UPSTREAM_TIMEOUT_MS = 30_000;

export class RedfishProxy {
  private readonly client: HttpClient;

  constructor(
    private readonly cfg: ProxyConfig,
    private readonly log: Logger,
  ) {
    this.client = createHttpClient(cfg.http, cfg.baseDir, { timeoutMs: UPSTREAM_TIMEOUT_MS });
  }

  /** Client addresses in lookup order: X-Real-IP values, then the peer address. */
  private clientIps(req: FastifyRequest): string[] {
    const h = req.headers['x-real-ip'];
    const real = (Array.isArray(h) ? h : h ? [h] : []).flatMap((v) => v.split(',')).map((v) => v.trim());
    return [...real, plainIp(req.raw.socket.remoteAddress)].filter((v): v is string => !!v);
  }

  /** BMC origin for this request, or an error message. */
  target(req: FastifyRequest): string | undefined {
    const ips = this.clientIps(req);
    for (const ip of ips) {
      const t = this.cfg.targets.get(ip);
      if (t) return t;
    }
    const header = req.headers['x-redfish-url'];
    if (typeof header !== 'string' || header === '') return undefined;
    let origin: string;
    try {
      const u = new URL(header);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
      origin = u.origin;
    } catch {
      return undefined;
    }
    for (const ip of ips) this.cfg.targets.set(ip, origin);
    return origin;
  }

  register(app: FastifyInstance): void {
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 16 * 1024 * 1024 }, (_req, body, done) =>
      done(null, body),
    );
    app.all('/*', (req, reply) => this.handle(req, reply));
  }

  private async handle(req: FastifyRequest, reply: FastifyReply) {
    const url = req.raw.url ?? '/';
    const path = url.split('?')[0]!;
    if (this.cfg.allowed && !this.cfg.allowed.some((re) => re.test(path)))
      return errorReply(reply, 401, `access to api resource ${path} is not allowed`);
    const origin = this.target(req);
    if (!origin) return errorReply(reply, 400, 'failed to find redfish target');

    const headers = { ...forwardableHeaders(req.headers, STRIPPED_REQUEST), ...this.client.headers() };
    const peer = plainIp(req.raw.socket.remoteAddress);
    if (peer) {
      const prior = req.headers['x-forwarded-for'];
      headers['x-forwarded-for'] = prior ? `${prior}, ${peer}` : peer;
    }
    const body = Buffer.isBuffer(req.body) && req.body.length > 0 ? req.body : undefined;
    const abort = new AbortController();
    // The client went away before the answer was written: stop waiting for the BMC.
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    try {
      const res = await request(`${origin}${url}`, {
        method: req.method as 'GET',
        headers,
        body,
        dispatcher: this.client.dispatcher,
        signal: AbortSignal.any([abort.signal, AbortSignal.timeout(UPSTREAM_TIMEOUT_MS)]),
      });
      reply.code(res.statusCode).headers(forwardableHeaders(res.headers, STRIPPED_RESPONSE));
      if (res.statusCode === 204 || res.statusCode === 304) {
        await res.body.dump();
        return reply.send();
      }
      return reply.send(res.body);
    } catch (e) {
      this.log.error({ target: origin, path, err: (e as Error).message }, 'Failed to proxy request to BMC');
      // As Go's httputil.ReverseProxy: 502 with an empty body.
      return reply.code(502).send();
    }
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
