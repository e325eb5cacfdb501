// HTTP layer of the API server (spec §5): web config (TLS, basic auth), per-IP rate limit, identity from
// the user headers with anti-spoofing and per-route access levels (auth.ts), CORS, compression, routes and
// the API description.

import compress from '@fastify/compress';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from '../common/logger.js';
import type { Database } from '../common/sqlite.js';
import { type SqlReader, sqliteReader } from '../common/sqlreader.js';
import { createWebServer, type WebServer } from '../common/webserver.js';
import { webViewOptions } from '../web/options.js';
import { webViewRoutes } from '../web/routes.js';
import { authHook, type RouteAccess, RouteAccessRegistry } from './auth.js';
import { type ClusterEmbodied, DEFAULT_CLUSTER_EMBODIED } from './embodied.js';
import { jsonError } from './http.js';
import { clusterRoutes } from './routes/clusters.js';
import type { RouteContext } from './routes/context.js';
import { demoRoutes } from './routes/demo.js';
import { healthRoutes } from './routes/health.js';
import { landingRoutes } from './routes/landing.js';
import { registerOpenApi } from './routes/openapi.js';
import { projectRoutes } from './routes/projects.js';
import { statsRoutes } from './routes/stats.js';
import { unitRoutes } from './routes/units.js';
import { UsageCache, usageRoutes } from './routes/usage.js';
import { userRoutes } from './routes/users.js';

export interface ApiServerOptions {
  listenAddresses: string[];
  webConfigFile?: string;
  logger: Logger;
  /** `--web.route-prefix` (`/` by default). */
  routePrefix: string;
  /** Headers carrying the user name; the first present and non-empty one wins (common/identity.ts). */
  userHeaders: string[];
  /** Requests per minute per client IP; 0 = unlimited. */
  maxRequests: number;
  /** `--web.cors.origin` regex source, anchored here. */
  corsOrigin: string;
  compression: boolean;
  compressionLevel: number;
  maxPeriodMs: number;
  /** Resolved IANA zone of the DB. */
  timeZone: string;
  externalUrl: string;
  /** The web view's `--web.ui.lb-url` and `--web.ui.basic-auth-users` (src/web/options.ts). */
  ui?: { lbUrl?: string; basicAuthUsers?: string };
  /** Opens the read-only SQLite connection (called on first use); unused when `reader` is given. */
  openDb?: () => Database;
  /** The read path of another backend (PostgreSQL, src/common/sqlreader.ts); closed with the server. */
  reader?: SqlReader;
  /** Embodied-emissions classes of each cluster's nodes (config `clusters[].footprint`). */
  embodiedClasses?: ReadonlyMap<string, ClusterEmbodied>;
  now?: () => number;
}

export interface ApiServer {
  server: WebServer;
  app: FastifyInstance;
  /** Every route registered through the app, with its declared access level. */
  routes: readonly RouteAccess[];
  /**
   * The planner statistics changed (CeemsDb.optimize on another connection): the next request opens a new
   * read connection, since SQLite loads them when a connection opens and never again.
   */
  reopenReader(): void;
  close(): Promise<void>;
}

/** Headers only this server may set; always removed from incoming requests. */
const INTERNAL_HEADERS = ['x-ceems-admin-user', 'x-ceems-logged-user'];
const COMPRESSIBLE =
  /^(?:text\/html|text\/css|text\/plain|text\/javascript|application\/javascript|application\/x-javascript|application\/json|application\/atom\+xml|application\/rss\+xml|image\/svg\+xml)(?:;.*)?$/;

/** Client IP for the rate limiter: forwarded-IP headers first (kept quirk), else the peer. */
export function clientIp(req: FastifyRequest): string {
  const first = (h: string) => {
    const v = req.headers[h];
    return (Array.isArray(v) ? v[0] : v)?.split(',')[0]?.trim();
  };
  return first('true-client-ip') || first('x-real-ip') || first('x-forwarded-for') || req.ip;
}

export async function createApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const prefix = opts.routePrefix.replace(/^\/+|\/+$/g, '');
  const api = prefix ? `/${prefix}/api/v1` : '/api/v1';
  const server = createWebServer({
    listenAddresses: opts.listenAddresses,
    webConfigFile: opts.webConfigFile,
    logger: opts.logger,
  });
  const { app } = server;
  // First of all: every route registered from here on must declare its access level.
  const registry = new RouteAccessRegistry(app);
  if (!opts.reader && !opts.openDb) throw new Error('createApiServer: `openDb` or `reader` is required');
  const reader = opts.reader ?? sqliteReader(opts.openDb!);
  const ctx: RouteContext = {
    api,
    reader,
    timeZone: opts.timeZone,
    maxPeriodMs: opts.maxPeriodMs,
    embodied: (clusterId) => opts.embodiedClasses?.get(clusterId) ?? DEFAULT_CLUSTER_EMBODIED,
    now: opts.now ?? Date.now,
    log: opts.logger,
  };

  app.decorateRequest('ceemsUser', '');
  app.decorateRequest('ceemsAdmin', false);

  // Anti-spoofing first, for every request.
  app.addHook('onRequest', async (req) => {
    for (const h of INTERNAL_HEADERS) delete req.headers[h];
  });
  // PostgreSQL text cannot hold a NUL: one in a query parameter is refused alike on both backends [D-API-30].
  app.addHook('onRequest', async (req, reply) => {
    const query = req.url.indexOf('?');
    if (query >= 0 && /%00/i.test(req.url.slice(query)))
      return jsonError(reply, 400, 'bad_data', 'invalid query parameter: NUL character');
  });

  if (opts.maxRequests > 0) {
    await app.register(rateLimit, {
      global: true,
      max: opts.maxRequests,
      timeWindow: 60_000,
      keyGenerator: clientIp,
      errorResponseBuilder: (_req, c) =>
        Object.assign(new Error('Too Many Requests'), { statusCode: c.statusCode, rateLimited: true }),
    });
  }

  // Read on every request (no caching), so a revoked admin loses access at once (§5.2, D-API-2).
  const isAdminUser = async (user: string): Promise<boolean> =>
    (await reader.get('SELECT 1 FROM admin_users WHERE name = ? LIMIT 1', [user])) !== undefined;

  app.addHook('onRequest', authHook({ userHeaders: opts.userHeaders, isAdminUser }));

  const origin = new RegExp(`^(?:${opts.corsOrigin})$`, 's');
  const allowHeaders = ['Accept', 'Authorization', 'Content-Type', 'Origin', ...opts.userHeaders].join(', ');
  await registry.thirdParty('public', () =>
    app.register(cors, {
      // No Origin header: no CORS headers at all.
      origin: (o, cb) => cb(null, o === undefined ? false : origin),
      methods: ['GET'],
      allowedHeaders: allowHeaders,
      exposedHeaders: ['Date'],
      optionsSuccessStatus: 200,
      strictPreflight: false,
    }),
  );
  // @fastify/cors sends these two on preflights only; the original sends them on every CORS response.
  app.addHook('onRequest', async (req, reply) => {
    if (req.headers.origin === undefined) return;
    reply.header('Access-Control-Allow-Headers', allowHeaders);
    reply.header('Access-Control-Allow-Methods', 'GET');
  });

  if (opts.compression) {
    await app.register(compress, {
      global: true,
      encodings: ['gzip', 'deflate'],
      threshold: 0,
      customTypes: COMPRESSIBLE,
      zlibOptions: { level: opts.compressionLevel },
    });
  }

  await registerOpenApi(app, api, opts.externalUrl, registry);

  landingRoutes(app, ctx);
  healthRoutes(app, ctx);
  unitRoutes(app, ctx);
  userRoutes(app, ctx);
  projectRoutes(app, ctx);
  clusterRoutes(app, ctx);
  usageRoutes(new UsageCache())(app, ctx);
  statsRoutes(app, ctx);
  demoRoutes(app, ctx);
  webViewRoutes(
    app,
    ctx,
    webViewOptions(opts.userHeaders, opts.ui?.lbUrl, opts.ui?.basicAuthUsers),
    server.webConfig,
  ); // built-in web view, /ui/

  // Wrong method on an API route → 405. A lookup in the registered GET paths, never `app.hasRoute`, which
  // would parse the request path as a route pattern (`:name(regex)`, `*`).
  let getPaths: Set<string> | undefined;
  app.setNotFoundHandler(async (req, reply) => {
    const path = req.url.split('?')[0]!;
    getPaths ??= new Set(registry.routes.filter((r) => r.methods.includes('GET')).map((r) => r.url));
    if (path.startsWith(`${api}/`) && getPaths.has(path)) {
      return reply.code(405).header('Allow', 'GET, OPTIONS').type('text/plain; charset=utf-8').send('');
    }
    return reply.code(404).type('text/plain; charset=utf-8').send('404 page not found\n');
  });
  app.setErrorHandler(async (err: Error & { statusCode?: number; rateLimited?: boolean }, req, reply) => {
    if (err.rateLimited) {
      return reply
        .code(err.statusCode ?? 429)
        .type('text/plain; charset=utf-8')
        .send('Too Many Requests');
    }
    const status = err.statusCode ?? 500;
    if (status >= 500) opts.logger.error({ err: err.message, url: req.url }, 'request failed');
    return jsonError(
      reply,
      status,
      status < 500 ? 'bad_data' : 'internal',
      status < 500 ? 'invalid request' : err.message,
    );
  });

  return {
    server,
    app,
    routes: registry.routes,
    reopenReader() {
      reader.reopen();
    },
    async close() {
      await server.close();
      await reader.close();
    },
  };
}
