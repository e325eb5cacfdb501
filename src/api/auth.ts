// Who may call a route (spec §5.2). Each route declares its access level in its options
// (`config: { access }`); the hook decides from the matched route's declaration only, never from the
// request URL, which fastify routes on after percent-decoding (`/units/%61dmin` is `/units/admin`).
// A route without a declaration stops the server from starting.

import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { readIdentityHeader } from '../common/identity.js';
import { jsonError } from './http.js';

export type Access = 'public' | 'user' | 'admin';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `public`: no user header; `user`: a user header; `admin`: a user listed in `admin_users`. */
    access?: Access;
  }
}

const LEVELS: readonly unknown[] = ['public', 'user', 'admin'] satisfies Access[];

/** The declared access of a route config; anything else is admin-only (fail closed). */
export function accessOf(config: { access?: unknown } | undefined): Access {
  const a = config?.access;
  return a === 'public' || a === 'user' ? a : 'admin';
}

export interface RouteAccess {
  methods: string[];
  url: string;
  access: Access;
}

/** Checks, at registration, that every route declares its access level; lists them. */
export class RouteAccessRegistry {
  readonly routes: RouteAccess[] = [];
  private granted: Access | undefined;

  /** Must be created before any route or route-registering plugin. */
  constructor(app: FastifyInstance) {
    app.addHook('onRoute', (route) => this.check(route));
  }

  /**
   * Registers a third-party plugin whose routes cannot declare an access level themselves (Swagger UI,
   * the CORS preflight route): every route it adds gets `access`.
   */
  async thirdParty(access: Access, register: () => PromiseLike<unknown>): Promise<void> {
    this.granted = access;
    try {
      await register();
    } finally {
      this.granted = undefined;
    }
  }

  private check(route: RouteOptions): void {
    route.config ??= {};
    if (route.config.access === undefined && this.granted) route.config.access = this.granted;
    const methods = ([] as string[]).concat(route.method);
    if (!LEVELS.includes(route.config.access)) {
      throw new Error(
        `route ${methods.join(',')} ${route.url} declares no access level (config.access: public, user or admin)`,
      );
    }
    this.routes.push({ methods, url: route.url, access: route.config.access! });
  }
}

export interface AuthOptions {
  /** Headers carrying the user name, as configured; the first one present and non-empty wins. */
  userHeaders: readonly string[];
  isAdminUser(user: string): Promise<boolean>;
}

export type Identified =
  | { ok: true; user: string }
  | { ok: false; status: 400 | 401; type: string; error: string };

/**
 * The user of a request: the first configured header present and non-empty; a malformed one (repeated,
 * oversized, bad characters) is an error rather than a reason to look at the next header.
 */
export function identify(rawHeaders: readonly string[], userHeaders: readonly string[]): Identified {
  for (const name of userHeaders) {
    const r = readIdentityHeader(rawHeaders, name);
    if (r.ok) return { ok: true, user: r.value };
    if (r.failure === 'absent' || r.failure === 'empty') continue;
    return { ok: false, status: 400, type: 'bad_data', error: `invalid ${name} header: ${r.reason}` };
  }
  return { ok: false, status: 401, type: 'unauthorized', error: 'no user identified' };
}

/** The authentication hook (onRequest). */
export function authHook(opts: AuthOptions) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    // Unmatched: the not-found handler answers, with no data.
    if (req.is404) return;
    const access = accessOf(req.routeOptions.config);
    if (access === 'public') return;
    if (req.method === 'OPTIONS') {
      // A preflight never reaches a protected handler: with an Origin the CORS hook answers it, without
      // one it is answered here (spec §5.3: 200, empty body).
      if (req.headers.origin !== undefined) return;
      return reply.code(200).header('Content-Length', '0').send();
    }
    const id = identify(req.raw.rawHeaders, opts.userHeaders);
    if (!id.ok) return jsonError(reply, id.status, id.type, id.error);
    req.headers['x-ceems-logged-user'] = id.user;
    req.ceemsUser = id.user;
    let isAdmin: boolean;
    try {
      isAdmin = await opts.isAdminUser(id.user);
    } catch (e) {
      return jsonError(reply, 500, 'internal', (e as Error).message);
    }
    if (isAdmin) {
      req.headers['x-ceems-admin-user'] = id.user;
      req.ceemsAdmin = true;
    } else if (access === 'admin') {
      return jsonError(reply, 403, 'forbidden', 'current user does not have admin privileges');
    }
  };
}
