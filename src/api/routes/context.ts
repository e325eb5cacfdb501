// What every route group gets from the server: the DB reader, the API prefix, the DB time zone, the
// query-window limit and the request's identity (set by the authentication hook, spec §5.2).

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../common/logger.js';
import type { SqlReader } from '../../common/sqlreader.js';
import type { Access } from '../auth.js';
import type { ClusterEmbodied } from '../embodied.js';
import { ApiError, sendError } from '../http.js';
import { type FieldSpec, structSchema } from '../jsonenc.js';

export interface RouteContext {
  /** `/api/v1` or `<route-prefix>/api/v1`. */
  api: string;
  /** The read path over the server's backend (SQLite or PostgreSQL). */
  reader: SqlReader;
  /** Resolved IANA zone of the DB (`data.time_zone`). */
  timeZone: string;
  /** `--query.max-period` in ms; 0 = unlimited. */
  maxPeriodMs: number;
  /** Embodied-emissions classes of a cluster's nodes (the defaults for clusters not configured). */
  embodied(clusterId: string): ClusterEmbodied;
  now(): number;
  log: Logger;
}

export type RouteGroup = (app: FastifyInstance, ctx: RouteContext) => void;

declare module 'fastify' {
  interface FastifyRequest {
    /** Logged user taken from the configured user headers ('' on unauthenticated paths). */
    ceemsUser: string;
    ceemsAdmin: boolean;
  }
}

/** Querystring schema of a route for the API description (validation is done by the handlers). */
export function querySchema(params: Record<string, { description: string; repeatable?: boolean }>) {
  const properties: Record<string, unknown> = {};
  for (const [name, p] of Object.entries(params)) {
    properties[name] = p.repeatable
      ? { type: 'array', items: { type: 'string' }, description: p.description }
      : { type: 'string', description: p.description };
  }
  return { type: 'object', properties };
}

const API_ROUTE_METHODS: ('GET' | 'OPTIONS')[] = ['GET', 'OPTIONS'];

type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/**
 * Registers an API route for GET and OPTIONS with its access level (auth.ts): OPTIONS answers 200 with an
 * empty body without running the handler (§5.3); ApiErrors become the spec's error envelope; anything else
 * goes to the server's error handler (500 `internal` with the raw error text).
 */
export function apiRoute(
  app: FastifyInstance,
  url: string,
  schema: {
    /** Who may call it; the only thing the authentication hook looks at. */
    access: Access;
    summary: string;
    description?: string;
    tags: string[];
    querystring?: object;
    /** Model of the `data` list; absent = `data` is null. */
    model?: readonly FieldSpec[];
    /** JSON Schema of one `data` item, for lists that are no Go wire model (the footprint record). */
    dataSchema?: object;
  },
  handler: Handler,
): void {
  const { model, dataSchema, access, ...doc } = schema;
  const item = model ? structSchema(model) : dataSchema;
  const envelope = (data: object, description: string) => ({
    description,
    type: 'object',
    properties: {
      status: { type: 'string' },
      data,
      warnings: { type: 'array', items: { type: 'string' } },
    },
  });
  const error = (description: string) => ({
    description,
    type: 'object',
    properties: {
      status: { type: 'string', enum: ['error'] },
      data: { type: 'null' },
      errorType: { type: 'string' },
      error: { type: 'string' },
    },
  });
  app.route({
    method: API_ROUTE_METHODS,
    url,
    config: { access },
    schema: {
      ...doc,
      response: {
        200: envelope(item ? { type: 'array', items: item } : { type: 'null' }, 'Success'),
        400: error('Bad request (`bad_data`)'),
        401: error('No user identified (`unauthorized`)'),
        403: error('Not allowed (`forbidden`)'),
        500: error('Internal error (`internal`)'),
      },
    },
    handler: async (req, reply) => {
      if (req.method === 'OPTIONS') return reply.code(200).header('Content-Length', '0').send();
      try {
        return await handler(req, reply);
      } catch (e) {
        if (e instanceof ApiError) return sendError(reply, e);
        throw e;
      }
    },
  });
}
