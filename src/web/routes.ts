// The built-in web view under /ui/, mounted into the API server (src/api/server.ts). Its routes declare
// `public` access to the API's authentication hook because they identify the user themselves (identity.ts:
// the same headers, plus basic-auth logins for a standalone setup) and answer with HTML error pages; every
// handler starts from that identity and every unit it shows passes `username = user` unless the user is
// an admin, so guessing a URL shows nothing more than the list does.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { jsonError } from '../api/http.js';
import { type Query, values } from '../api/query.js';
import type { RouteContext } from '../api/routes/context.js';
import type { WebConfig } from '../common/webconfig.js';
import { readAsset, STATIC_ASSETS } from './assets.js';
import {
  clusterOverview,
  getUnit,
  isAdmin,
  listUnits,
  projectTotals,
  SORT_KEYS,
  type UnitRow,
} from './data.js';
import { whoIs } from './identity.js';
import { CLUSTER_POWER, energySource, LbClient, LbError, PANELS, type Panel, UUID_RE } from './lb.js';
import type { WebViewOptions } from './options.js';
import { clusterPage, errorPage, unitPage, unitsPage, type Viewer } from './pages.js';

/** Response headers of every /ui/ answer: only local scripts and styles, no framing, no referrer. */
const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

const ROUTE = { schema: { hide: true } as never, config: { access: 'public' as const } };
const MAX_TEXT = 200;

type Ctx = { viewer: Viewer };

const first = (q: Query, name: string) => values(q, name)[0] ?? '';

export function webViewRoutes(
  app: FastifyInstance,
  ctx: RouteContext,
  opts: WebViewOptions,
  webConfig: () => WebConfig | undefined,
): void {
  const lb = opts.lbUrl ? new LbClient(opts.lbUrl, opts.lbTimeoutMs, ctx.now) : undefined;

  /** The viewer, or an answer already sent (HTML for pages, JSON for the api/ routes). */
  const identify = async (
    req: FastifyRequest,
    reply: FastifyReply,
    json: boolean,
  ): Promise<Ctx | undefined> => {
    reply.headers(SECURITY_HEADERS);
    const who = whoIs(
      req.raw.rawHeaders,
      req.headers.authorization,
      opts.userHeaders,
      webConfig(),
      opts.basicAuthUsers,
    );
    if (!who.ok) {
      if (json) jsonError(reply, who.status, who.status === 401 ? 'unauthorized' : 'bad_data', who.reason);
      else
        reply
          .code(who.status)
          .type('text/html; charset=utf-8')
          .send(
            errorPage(
              who.status,
              who.status === 401
                ? 'No user identified: open this page through the proxy or Grafana that sets the user header, or log in with the web config’s basic auth.'
                : who.reason,
            ),
          );
      return undefined;
    }
    return { viewer: { user: who.user, admin: await isAdmin(ctx.reader, who.user) } };
  };
  const html = (reply: FastifyReply, body: string, status = 200) =>
    reply.code(status).type('text/html; charset=utf-8').send(body);
  const forbiddenPage = (reply: FastifyReply, v: Viewer, message: string) =>
    html(reply, errorPage(403, message, v), 403);
  const json = (reply: FastifyReply, data: unknown) =>
    reply
      .code(200)
      .type('application/json')
      .send(`${JSON.stringify(data)}\n`);

  /** The unit named by `cluster_id` and `uuid` if the viewer may see it. */
  const visibleUnit = async (q: Query, v: Viewer): Promise<UnitRow | undefined> => {
    const cluster = first(q, 'cluster_id');
    const uuid = first(q, 'uuid');
    if (!cluster || !uuid || cluster.length > MAX_TEXT || uuid.length > MAX_TEXT) return undefined;
    const unit = await getUnit(ctx.reader, cluster, uuid);
    return unit && (v.admin || unit.username === v.user) ? unit : undefined;
  };
  const NOT_VISIBLE = 'This unit does not exist or is not yours.';

  /**
   * The stored provenance of each row's energy, else the power source of its nodes from the LB (units
   * stored before issue 20); unknown when neither says.
   */
  const withSources = async <T extends UnitRow>(rows: T[]) => {
    const clusters = [...new Set(rows.filter((r) => r.energy_source === 'unknown').map((r) => r.cluster_id))];
    const sources = new Map<string, Map<string, string>>();
    await Promise.all(
      clusters.map(async (c) => {
        try {
          if (lb) sources.set(c, await lb.powerSources(c));
        } catch (e) {
          ctx.log.warn({ err: (e as Error).message, cluster: c }, 'web view: power sources not available');
        }
      }),
    );
    return rows.map((r) => ({
      ...r,
      energy_source:
        r.energy_source !== 'unknown'
          ? r.energy_source
          : energySource(r.hosts, sources.get(r.cluster_id) ?? new Map()),
    }));
  };

  app.get('/ui', ROUTE, async (_req, reply) => reply.headers(SECURITY_HEADERS).redirect('ui/', 302));

  app.get('/ui/', ROUTE, async (req, reply) => {
    const c = await identify(req, reply, false);
    if (c) return html(reply, unitsPage(c.viewer));
  });

  app.get('/ui/unit', ROUTE, async (req, reply) => {
    const c = await identify(req, reply, false);
    if (!c) return;
    const unit = await visibleUnit(req.query as Query, c.viewer);
    if (!unit) return forbiddenPage(reply, c.viewer, NOT_VISIBLE);
    return html(reply, unitPage(c.viewer, unit.cluster_id, unit.uuid));
  });

  app.get('/ui/cluster', ROUTE, async (req, reply) => {
    const c = await identify(req, reply, false);
    if (!c) return;
    if (!c.viewer.admin) return forbiddenPage(reply, c.viewer, 'The cluster overview is for admins only.');
    return html(reply, clusterPage(c.viewer));
  });

  app.get('/ui/api/units', ROUTE, async (req, reply) => {
    const c = await identify(req, reply, true);
    if (!c) return;
    const q = req.query as Query;
    const int = (name: string, def: number, min: number, max: number) => {
      const v = first(q, name);
      const n = v === '' ? def : Number(v);
      return Number.isInteger(n) && n >= min && n <= max ? n : undefined;
    };
    const page = int('page', 1, 1, 1_000_000);
    const size = int('size', 50, 1, 500);
    const sort = first(q, 'sort') || 'start';
    const dir = first(q, 'dir') || 'desc';
    const text = first(q, 'q');
    if (
      page === undefined ||
      size === undefined ||
      !SORT_KEYS.includes(sort) ||
      !['asc', 'desc'].includes(dir) ||
      text.length > MAX_TEXT
    )
      return jsonError(reply, 400, 'bad_data', 'invalid page, size, sort, dir or q');
    const result = await listUnits(ctx.reader, {
      owner: c.viewer.admin ? undefined : c.viewer.user,
      text: text || undefined,
      project: first(q, 'project') || undefined,
      cluster: first(q, 'cluster_id') || undefined,
      sort,
      desc: dir === 'desc',
      page,
      size,
    });
    return json(reply, { ...c.viewer, ...result, rows: await withSources(result.rows) });
  });

  app.get('/ui/api/projects', ROUTE, async (req, reply) => {
    const c = await identify(req, reply, true);
    if (c)
      return json(reply, {
        ...c.viewer,
        projects: await projectTotals(ctx.reader, c.viewer.admin ? undefined : c.viewer.user),
      });
  });

  app.get('/ui/api/unit', ROUTE, async (req, reply) => {
    const c = await identify(req, reply, true);
    if (!c) return;
    const unit = await visibleUnit(req.query as Query, c.viewer);
    if (!unit) return jsonError(reply, 403, 'forbidden', NOT_VISIBLE);
    const [withSource] = await withSources([unit]);
    return json(reply, { ...c.viewer, unit: withSource, lb: lb !== undefined });
  });

  app.get('/ui/api/series', ROUTE, async (req, reply) => {
    const c = await identify(req, reply, true);
    if (!c) return;
    const q = req.query as Query;
    const panel = first(q, 'panel') as Panel;
    if (!PANELS.includes(panel))
      return jsonError(reply, 400, 'bad_data', `panel must be one of ${PANELS.join(', ')}`);
    const unit = await visibleUnit(q, c.viewer);
    if (!unit) return jsonError(reply, 403, 'forbidden', NOT_VISIBLE);
    if (!lb) return jsonError(reply, 503, 'unavailable', 'no load balancer configured (--web.ui.lb-url)');
    if (!UUID_RE.test(unit.uuid))
      return jsonError(reply, 400, 'bad_data', 'unit id not accepted by the load balancer');
    const now = Math.floor(ctx.now() / 1000);
    const start = Math.floor(unit.started_at_ts / 1000) || now - 3600;
    const end = Math.max(start + 60, unit.ended_at_ts ? Math.ceil(unit.ended_at_ts / 1000) : now);
    try {
      return json(reply, await lb.unitChart(panel, unit.uuid, c.viewer.user, unit.cluster_id, start, end));
    } catch (e) {
      const status = e instanceof LbError ? e.status : 502;
      return jsonError(reply, status, status === 403 ? 'forbidden' : 'unavailable', (e as Error).message);
    }
  });

  app.get('/ui/api/cluster', ROUTE, async (req, reply) => {
    const c = await identify(req, reply, true);
    if (!c) return;
    if (!c.viewer.admin)
      return jsonError(reply, 403, 'forbidden', 'current user does not have admin privileges');
    return json(reply, { ...c.viewer, ...(await clusterOverview(ctx.reader)), lb: lb !== undefined });
  });

  app.get('/ui/api/cluster-power', ROUTE, async (req, reply) => {
    const c = await identify(req, reply, true);
    if (!c) return;
    if (!c.viewer.admin)
      return jsonError(reply, 403, 'forbidden', 'current user does not have admin privileges');
    const cluster = first(req.query as Query, 'cluster_id');
    if (!cluster || cluster.length > MAX_TEXT) return jsonError(reply, 400, 'bad_data', 'cluster_id missing');
    if (!lb) return jsonError(reply, 503, 'unavailable', 'no load balancer configured (--web.ui.lb-url)');
    const end = Math.floor(ctx.now() / 1000);
    try {
      return json(reply, await lb.chart('W', CLUSTER_POWER, c.viewer.user, cluster, end - 3600, end));
    } catch (e) {
      return jsonError(reply, e instanceof LbError ? e.status : 502, 'unavailable', (e as Error).message);
    }
  });

  for (const [name, asset] of Object.entries(STATIC_ASSETS)) {
    app.get(`/ui/assets/${name}`, ROUTE, async (_req, reply) => {
      reply.headers(SECURITY_HEADERS);
      try {
        return reply.code(200).type(asset.type).header('Cache-Control', 'no-cache').send(readAsset(name));
      } catch (e) {
        ctx.log.error({ err: (e as Error).message, asset: name }, 'web view asset missing');
        return reply.code(500).type('text/plain; charset=utf-8').send('asset missing\n');
      }
    });
  }
}
