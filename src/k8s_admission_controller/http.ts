// The admission controller's routes (spec cli.md §4): `GET /health` and the two webhooks under
// `/ceems-admission-controller/`, with the original's answers to what is not a review (Go http.Error:
// plain text, a newline, nosniff) and a bound on the body the original did not have.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Handler, readBody } from '../common/httpserver.js';
import type { Logger } from '../common/logger.js';
import { answerReview, type HookName } from './webhook.js';

const HEALTH_PATH = '/health';
const WEBHOOK_PATHS: Readonly<Record<string, HookName>> = {
  '/ceems-admission-controller/mutate': 'mutate',
  '/ceems-admission-controller/validate': 'validate',
};
const HEALTHY = 'CEEMS k8s Admission Controller is healthy';
/**
 * Largest review read, in bytes. The API server accepts request bodies up to 3 MiB and a review of an
 * UPDATE carries the object twice (object, oldObject), so 8 MiB admits every review it can send.
 */
const MAX_BODY_BYTES = 8 * 1024 * 1024;

/** Go's http.Error: the text and a newline as plain text, never sniffed as anything else. */
function sendError(res: ServerResponse, status: number, text: string): void {
  const body = `${text}\n`;
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'x-content-type-options': 'nosniff',
    'content-length': String(Buffer.byteLength(body)),
  });
  res.end(body);
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}

/** `application/json`, parameters (`; charset=utf-8`) allowed; the original wanted the bare type. */
function isJson(contentType: string | undefined): boolean {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase() === 'application/json';
}

async function serveWebhook(hook: HookName, req: IncomingMessage, res: ServerResponse, log: Logger) {
  if (!isJson(req.headers['content-type'])) {
    sendError(res, 400, "only content type 'application/json' is supported");
    return;
  }
  let body: Awaited<ReturnType<typeof readBody>>;
  try {
    body = await readBody(req, MAX_BODY_BYTES, { drain: true });
  } catch (e) {
    log.error({ hook, err: (e as Error).message }, 'Failed to read request body');
    if (!res.headersSent && !res.destroyed)
      sendError(res, 400, `could not read request body: ${(e as Error).message}`);
    return;
  }
  if (body === 'too large') {
    log.error({ hook, limit: MAX_BODY_BYTES }, 'Request body too large');
    sendError(res, 413, `could not read request body: larger than ${MAX_BODY_BYTES} bytes`);
    return;
  }
  const answer = answerReview(hook, body?.toString('utf8') ?? '', log);
  if (answer.status === 200) send(res, 200, 'application/json', answer.review);
  else if (answer.status === 400) sendError(res, 400, answer.reason);
  else send(res, 500, 'application/json', '');
}

/** The request handler of every listener. */
export function admissionHandler(log: Logger): Handler {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const hook = WEBHOOK_PATHS[path];
    const method = hook ? 'POST' : path === HEALTH_PATH ? 'GET' : undefined;
    if (!method) return sendError(res, 404, '404 page not found');
    if (req.method !== method) {
      res.writeHead(405, { allow: method, 'content-length': '0' });
      res.end();
      return;
    }
    if (!hook) {
      res.setHeader('x-content-type-options', 'nosniff');
      return send(res, 200, 'text/plain; charset=utf-8', HEALTHY);
    }
    serveWebhook(hook, req, res, log).catch((e: Error) => {
      log.error({ hook, err: e.message }, 'Admission webhook failed');
      if (!res.headersSent) send(res, 500, 'application/json', '');
    });
  };
}
