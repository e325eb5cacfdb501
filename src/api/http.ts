// Response envelope and error types of the API (spec §6.1, §6.2), shared by every route group.

import type { FastifyReply } from 'fastify';
import { encodeEnvelope, encodeError, encodeSuccess, type FieldSpec } from './jsonenc.js';
import type { EncodedRows } from './rowenc.js';

export type ErrorType =
  | 'bad_data'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'not_acceptable'
  | 'execution'
  | 'canceled'
  | 'internal'
  | 'timeout';

const STATUS: Record<ErrorType, number> = {
  bad_data: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  not_acceptable: 406,
  execution: 422,
  canceled: 499,
  internal: 500,
  timeout: 503,
};

/** An error answered with the spec's envelope and the status of its type. */
export class ApiError extends Error {
  constructor(
    readonly type: ErrorType,
    message: string,
  ) {
    super(message);
  }
  get status(): number {
    return STATUS[this.type] ?? 500;
  }
}

const JSON_TYPE = 'application/json';

/** An error of the HTTP layer (authentication, error handler): JSON body, no nosniff (D-API-14). */
export function jsonError(reply: FastifyReply, status: number, type: string, message: string): FastifyReply {
  return reply
    .code(status)
    .header('Content-Type', JSON_TYPE)
    .send(Buffer.from(encodeError(type, message)));
}

export function sendError(reply: FastifyReply, err: ApiError): FastifyReply {
  return reply
    .code(err.status)
    .header('Content-Type', JSON_TYPE)
    .header('X-Content-Type-Options', 'nosniff')
    .send(Buffer.from(encodeError(err.type, err.message)));
}

/** A 200 answer with a complete JSON body. */
function sendOk(reply: FastifyReply, body: Buffer): FastifyReply {
  return reply
    .code(200)
    .header('Content-Type', JSON_TYPE)
    .header('X-Content-Type-Options', 'nosniff')
    .send(body);
}

export function sendSuccess(
  reply: FastifyReply,
  struct: readonly FieldSpec[] | undefined,
  data: readonly Record<string, unknown>[] | null,
  warnings: readonly string[] = [],
): FastifyReply {
  return sendOk(reply, Buffer.from(encodeSuccess(struct, data, warnings)));
}

/** A success envelope around `data` encoded by JSON.stringify (records outside the Go wire models). */
export function sendJson(reply: FastifyReply, data: unknown): FastifyReply {
  return sendOk(reply, Buffer.from(encodeEnvelope(JSON.stringify(data))));
}

/** Rows encoded by rowenc.ts, their body complete (skipped rows reported as its warning, §6.1). */
export function sendRows(reply: FastifyReply, rows: EncodedRows): FastifyReply {
  return sendOk(reply, rows.body);
}
