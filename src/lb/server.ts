// The request pipeline of one load-balancer listener (spec lb.md §5): health, cluster id, identity
// headers, allowed endpoints, query parsing and the selector rule, ownership, proxying; the admin check
// where its answer can change the outcome [D-LB-16].

import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody } from '../common/httpserver.js';
import { readIdentityHeader } from '../common/identity.js';
import type { Logger } from '../common/logger.js';
import { type AccessPolicy, adminClusterOverride, checkQueries } from './access.js';
import type { Authorizer } from './authz.js';
import type { BackendPool } from './backend.js';
import { type Endpoint, type LbType, matchEndpoint } from './endpoints.js';
import { type ErrorType, MESSAGES, sendError } from './errors.js';
import { BadRequestError, type Params, parseMultipart, parseUrlEncoded } from './form.js';
import type { QueryParser } from './promql.js';
import { forward } from './proxy.js';
import { readPyroscopeRequest } from './pyroscope.js';

/** Largest request body read (and buffered for retries). */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

export interface LbContext {
  readonly type: LbType;
  readonly pool: BackendPool;
  /** Undefined when neither DB nor API is configured: routing only, no access control. */
  readonly authz: Authorizer | undefined;
  readonly policy: AccessPolicy;
  /** Parser of the queries checked: a ParseCache's, since dashboards repeat the same texts. */
  readonly parse: QueryParser;
  readonly timeoutMs: number;
  readonly log: Logger;
}

function mediaType(req: IncomingMessage): string {
  return String(req.headers['content-type'] ?? '')
    .split(';')[0]!
    .trim()
    .toLowerCase();
}

/**
 * The checked parts of a request: its query strings exactly as the backend reads them, and how to write
 * the request back with other (canonical) query strings in their place.
 */
interface CheckedRequest {
  readonly queries: readonly string[];
  /** The URL and body to forward with `replacements[i]` in place of `queries[i]`. */
  rebuild(replacements: readonly string[]): { url: string; body: Buffer | undefined; contentType?: string };
}

/** Characters encodeURIComponent leaves as they are. */
const UNRESERVED = /^[A-Za-z0-9\-_.!~*'()]*$/;
/** encodeURIComponent, without its call for the common text it would return unchanged (numbers, names). */
const encodeComponent = (s: string) => (UNRESERVED.test(s) ? s : encodeURIComponent(s));

/** Encodes parameters so that Go's `url.ParseQuery` reads back exactly the same pairs. */
function encodeParams(params: Params): string {
  let out = '';
  for (let i = 0; i < params.length; i++) {
    const [k, v] = params[i]!;
    out += `${i === 0 ? '' : '&'}${encodeComponent(k)}=${encodeComponent(v)}`;
  }
  return out;
}

/** A TSDB request's parameters, from the URL and a form body, exactly as the backend reads them. */
function tsdbRequest(
  req: IncomingMessage,
  body: Buffer | undefined,
  param: string,
  strict: boolean,
): CheckedRequest {
  const url = req.url!;
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const urlParams: Params = q < 0 ? [] : parseUrlEncoded(url.slice(q + 1));
  let bodyParams: Params | undefined;
  if (body && body.length > 0 && BODY_METHODS.has(req.method!)) {
    const encoding = String(req.headers['content-encoding'] ?? '').toLowerCase();
    const type = mediaType(req);
    if (encoding !== '' && encoding !== 'identity') {
      if (strict) throw new BadRequestError(MESSAGES.unsupportedBody);
    } else if (type === 'application/x-www-form-urlencoded') {
      bodyParams = parseUrlEncoded(body.toString('latin1'));
    } else if (type === 'multipart/form-data') {
      bodyParams = parseMultipart(body, String(req.headers['content-type']));
    } else if (strict) {
      throw new BadRequestError(MESSAGES.unsupportedBody);
    }
  }
  const all = [...urlParams, ...(bodyParams ?? [])];
  return {
    queries: all.filter(([k]) => k === param).map(([, v]) => v),
    rebuild(replacements) {
      let i = 0;
      const replace = (params: Params): Params =>
        params.map(([k, v]) => [k, k === param ? (replacements[i++] ?? v) : v]);
      const newUrl = replace(urlParams);
      const newBody = bodyParams && replace(bodyParams);
      return {
        url: newUrl.length > 0 ? `${path}?${encodeParams(newUrl)}` : path,
        body: newBody && Buffer.from(encodeParams(newBody), 'latin1'),
        contentType: newBody && 'application/x-www-form-urlencoded',
      };
    },
  };
}

function checkedRequest(
  req: IncomingMessage,
  body: Buffer | undefined,
  ep: Endpoint,
  strict: boolean,
): CheckedRequest {
  if (ep.type === 'tsdb') return tsdbRequest(req, body, ep.param, strict);
  const pyroscope = readPyroscopeRequest(
    ep.rpc,
    body ?? Buffer.alloc(0),
    req.headers['content-type'],
    req.headers['content-encoding'] as string | undefined,
  );
  return {
    queries: pyroscope.selectors,
    rebuild: (replacements) => ({
      url: req.url!,
      body: pyroscope.rebuild(replacements),
      contentType: pyroscope.contentType,
    }),
  };
}

/** Where a checked request goes: its cluster, URL and body, and the body's type when it was rebuilt. */
interface Route {
  readonly clusterId: string;
  readonly url: string;
  readonly body: Buffer | undefined;
  /** Present when the body is the rebuilt one: its media type (undefined: no body left). */
  readonly rebuilt?: { readonly contentType: string | undefined };
}

interface Refusal {
  readonly error: ErrorType;
  readonly message: string;
}

/**
 * A request checked with the rules for users (§7): the selector rule, then ownership. Whether the user is
 * an admin can only matter when these rules refuse, or before asking the source about ownership not in
 * memory, so `isAdmin` is consulted there only; 'admin' means it said yes and the admin route applies.
 */
async function userRoute(
  ctx: LbContext,
  authz: Authorizer,
  req: IncomingMessage,
  body: Buffer | undefined,
  endpoint: Endpoint | undefined,
  user: string,
  clusterId: string,
  isAdmin: () => Promise<boolean>,
): Promise<Route | Refusal | 'admin'> {
  const refuse = async (error: ErrorType, message: string, logReason?: () => void) => {
    if (await isAdmin()) return 'admin' as const;
    logReason?.();
    return { error, message };
  };
  if (!endpoint) return refuse('forbidden', MESSAGES.forbiddenResource);
  let checked: CheckedRequest;
  try {
    checked = checkedRequest(req, body, endpoint, true);
  } catch (e) {
    if (!(e instanceof BadRequestError)) throw e;
    return refuse(
      'bad_data',
      e.message === MESSAGES.unsupportedBody ? e.message : `invalid query: ${e.message}`,
    );
  }
  const decision = checkQueries(checked.queries, endpoint.grammar, ctx.policy, ctx.parse);
  if (decision.kind === 'invalid') return refuse('bad_data', `invalid query: ${decision.message}`);
  const override = decision.clusterOverride;
  if (override !== undefined) {
    if (!ctx.pool.has(override)) return refuse('bad_request', MESSAGES.invalidCluster);
    clusterId = override;
  }
  if (checked.queries.length === 0 || decision.kind !== 'allow') {
    return refuse('forbidden', MESSAGES.forbiddenMetrics, () => {
      if (decision.kind === 'deny') ctx.log.debug({ user, reason: decision.reason }, 'query denied');
    });
  }
  if (decision.ids.size > 0 && !authz.ownsCached(user, clusterId, decision.ids)) {
    if (await isAdmin()) return 'admin'; // before a source query an admin's request does not need
    if (!(await authz.owns(user, clusterId, decision.ids))) {
      ctx.log.debug({ user, cluster: clusterId, uuids: [...decision.ids] }, 'ownership check failed');
      return { error: 'forbidden', message: MESSAGES.forbiddenMetrics };
    }
  }
  // What was checked is what runs: the backend gets the canonical queries printed from the parse trees
  // the rule walked, never the raw text (which its own lexer might read differently).
  const rebuilt = checked.rebuild(decision.queries);
  return { clusterId, url: rebuilt.url, body: rebuilt.body, rebuilt: { contentType: rebuilt.contentType } };
}

/** An admin's request: not checked, forwarded as sent; only its `ceems_id` override is read (§6.2). */
function adminRoute(
  ctx: LbContext,
  req: IncomingMessage,
  body: Buffer | undefined,
  endpoint: Endpoint | undefined,
  clusterId: string,
): Route | Refusal {
  let queries: readonly string[] = [];
  if (endpoint) {
    try {
      queries = checkedRequest(req, body, endpoint, false).queries;
    } catch (e) {
      if (!(e instanceof BadRequestError)) throw e;
    }
  }
  const override = endpoint && adminClusterOverride(queries, endpoint.grammar, ctx.parse);
  if (override !== undefined) {
    if (!ctx.pool.has(override)) return { error: 'bad_request', message: MESSAGES.invalidCluster };
    clusterId = override;
  }
  return { clusterId, url: req.url!, body };
}

async function handle(
  ctx: LbContext,
  req: IncomingMessage,
  res: ServerResponse,
  body: Buffer | undefined,
): Promise<void> {
  const url = req.url ?? '/';
  const path = url.split('?')[0]!;
  if (path === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('CEEMS LB Server is healthy');
    return;
  }
  // Identity and cluster headers go through the same reader as in the API server (common/identity.ts):
  // repeated, oversized or odd values are refused, never joined or trimmed into another name.
  const cluster = readIdentityHeader(req.rawHeaders, 'x-ceems-cluster-id');
  if (!cluster.ok && cluster.failure !== 'absent' && cluster.failure !== 'empty') {
    return sendError(res, 'bad_request', `invalid X-Ceems-Cluster-Id header: ${cluster.reason}`);
  }
  const clusterId = cluster.ok ? cluster.value : undefined;
  if (clusterId === undefined || !ctx.pool.has(clusterId)) {
    return sendError(res, 'bad_request', MESSAGES.invalidCluster);
  }
  // Identity headers are never trusted from the client.
  delete req.headers['x-ceems-admin-user'];
  delete req.headers['x-ceems-logged-user'];
  const endpoint = matchEndpoint(ctx.type, path);

  let route: Route | Refusal = { clusterId, url, body };
  if (ctx.authz) {
    const authz = ctx.authz;
    const id = readIdentityHeader(req.rawHeaders, 'x-grafana-user');
    if (!id.ok && (id.failure === 'absent' || id.failure === 'empty'))
      return sendError(res, 'unauthorized', MESSAGES.noUser);
    if (!id.ok) return sendError(res, 'bad_data', `invalid X-Grafana-User header: ${id.reason}`);
    const user = id.value;
    req.headers['x-ceems-logged-user'] = user;
    // Read from the source each time it is asked (admin changes take effect on the next request).
    const checked = await userRoute(ctx, authz, req, body, endpoint, user, clusterId, () =>
      authz.isAdmin(user),
    );
    route = checked === 'admin' ? adminRoute(ctx, req, body, endpoint, clusterId) : checked;
  }
  if ('error' in route) return sendError(res, route.error, route.message);
  if (route.rebuilt) {
    delete req.headers['content-encoding'];
    if (route.rebuilt.contentType === undefined) delete req.headers['content-type'];
    else req.headers['content-type'] = route.rebuilt.contentType;
  }

  await forward(
    ctx.pool,
    route.clusterId,
    {
      method: req.method!,
      url: route.url,
      headers: req.headers,
      body: req.method === 'GET' || req.method === 'HEAD' ? undefined : route.body,
      clientIp: req.socket.remoteAddress ?? '',
      // Every endpoint a non-admin can reach is read-only; other requests retry only when safe by method.
      retryable: SAFE_METHODS.has(req.method!) || endpoint !== undefined,
    },
    res,
    { timeoutMs: ctx.timeoutMs, log: ctx.log },
  );
}

/**
 * The pipeline as a plain node:http handler: methods outside the list get 405, request targets that are
 * not paths (`*`, absolute URLs) 400, bodies of other methods than GET and HEAD are read (up to
 * MAX_BODY_BYTES, else 413 and the connection is closed) and the request goes through `handle`.
 */
export function loadBalancerHandler(ctx: LbContext): (req: IncomingMessage, res: ServerResponse) => void {
  const fail = (req: IncomingMessage, res: ServerResponse, e: unknown) => {
    ctx.log.error({ err: (e as Error).message, url: req.url }, 'request failed');
    if (!res.headersSent) {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('Internal Server Error\n');
    } else {
      res.destroy();
    }
  };
  const plain = (res: ServerResponse, status: number, text: string, headers: Record<string, string>) => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
    res.end(text);
  };
  return (req, res) => {
    const method = req.method ?? '';
    if (!METHODS.includes(method))
      return plain(res, 405, 'Method Not Allowed\n', { allow: METHODS.join(', ') });
    if (!req.url?.startsWith('/')) return plain(res, 400, 'Bad Request\n', {});
    if (method === 'GET' || method === 'HEAD') {
      handle(ctx, req, res, undefined).catch((e) => fail(req, res, e));
      return;
    }
    // buffered: parsed for the check, and sent twice when retried on another backend
    readBody(req, MAX_BODY_BYTES).then(
      (body) => {
        if (body === 'too large') {
          // The rest of the body is not read: the connection cannot carry another request (HTTP/1 only).
          const close: Record<string, string> = req.httpVersionMajor < 2 ? { connection: 'close' } : {};
          return plain(res, 413, `request body larger than ${MAX_BODY_BYTES} bytes\n`, close);
        }
        handle(ctx, req, res, body).catch((e) => fail(req, res, e));
      },
      () => res.destroy(), // the client went away while sending its body: nobody to answer
    );
  };
}
