// The exporter's HTTP endpoints on a plain node:http server (common/httpserver.ts; fastify cost 18 MB of
// RSS at start for five routes): the telemetry path with its concurrency limit and the scraper's timeout,
// streamed and gzipped when asked; /health; the Alloy targets path; the landing page; 404 otherwise. GET
// and HEAD, as fastify's routes answered them.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import { CONTENT_TYPE, encodeChunks, type MetricFamily } from '../common/exposition.js';
import { createPlainServer, type ListenerOptions, type PlainServer } from '../common/httpserver.js';
import type { SelfMetrics } from './selfmetrics.js';

export interface ExporterHttpOptions extends ListenerOptions {
  telemetryPath: string;
  /** Alloy targets path; undefined without a discoverer. */
  targetsPath: string | undefined;
  /** Concurrent requests beyond which the telemetry and targets paths answer 503; 0: no limit. */
  maxRequests: number;
  /** Longest time of a collector in a scrape (capped by the scraper's own timeout). */
  timeoutMs: number;
  /** Landing page HTML at `/`; undefined when the telemetry path is `/`. */
  landing: string | undefined;
  /** Handler metrics (promhttp_*) and, with `selfRuntime`, process_* and nodejs_*. */
  self: SelfMetrics;
  /** Families of one scrape (collectors and build info) within `budgetMs`. */
  collect(budgetMs: number): Promise<MetricFamily[]>;
  targets?(): { status: number; type: string; body: string };
}

const TEXT = 'text/plain; charset=utf-8';

function reply(res: ServerResponse, status: number, type: string, body: string, headers = {}): void {
  res.writeHead(status, { 'content-type': type, ...headers });
  res.end(body);
}

/** Writes `chunks` to `out` waiting whenever its buffer is full, then ends it. */
async function writeAll(out: Writable, chunks: Iterable<Buffer>): Promise<void> {
  for (const chunk of chunks) {
    if (out.destroyed) return;
    if (!out.write(chunk))
      await new Promise<void>((res) => {
        const done = () => {
          out.off('drain', done);
          out.off('close', done);
          res();
        };
        out.on('drain', done);
        out.on('close', done);
      });
  }
  await new Promise<void>((res) => out.end(res));
}

/** The path of a request target without its query; undefined when its escapes are malformed. */
function pathOf(url: string | undefined): string | undefined {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  if (!path.includes('%')) return path;
  try {
    return decodeURIComponent(path);
  } catch {
    return undefined;
  }
}

export async function serveExporter(o: ExporterHttpOptions): Promise<PlainServer> {
  let inFlight = 0;
  const limitReached = (res: ServerResponse): boolean => {
    if (o.maxRequests <= 0 || inFlight < o.maxRequests) return false;
    reply(res, 503, TEXT, `Limit of concurrent requests reached (${o.maxRequests}), try again later.\n`);
    return true;
  };

  const metrics = async (req: IncomingMessage, res: ServerResponse) => {
    if (limitReached(res)) {
      o.self.requests.inc({ code: '503' });
      return;
    }
    inFlight++;
    o.self.begin();
    try {
      // Stay inside the scraper's own timeout so it gets a partial answer instead of none.
      const header = Number(req.headers['x-prometheus-scrape-timeout-seconds']);
      const budget =
        Number.isFinite(header) && header > 0
          ? Math.min(o.timeoutMs, Math.max(100, header * 1000 - 500))
          : o.timeoutMs;
      const families = await o.collect(budget);
      families.push(...o.self.families());
      o.self.requests.inc({ code: '200' });
      const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
      res.writeHead(200, { 'content-type': CONTENT_TYPE, ...(gzip ? { 'content-encoding': 'gzip' } : {}) });
      if (!gzip) return await writeAll(res, encodeChunks(families));
      const zip = process.getBuiltinModule('node:zlib').createGzip();
      zip.pipe(res);
      await writeAll(zip, encodeChunks(families));
    } catch (e) {
      o.self.requests.inc({ code: '500' });
      o.logger.error({ err: (e as Error).message }, 'cannot serve metrics');
      if (!res.headersSent)
        reply(res, 500, TEXT, `An error has occurred while serving metrics:\n\n${(e as Error).message}\n`);
      else res.destroy();
    } finally {
      inFlight--;
      o.self.end();
    }
  };

  const targets = (res: ServerResponse) => {
    if (limitReached(res)) return;
    inFlight++;
    try {
      const r = o.targets!();
      reply(res, r.status, r.type, r.body);
    } finally {
      inFlight--;
    }
  };

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const path = pathOf(req.url);
    if (path === undefined) return reply(res, 400, TEXT, 'Bad Request\n');
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (path === o.telemetryPath) {
        metrics(req, res).catch((e: Error) => o.logger.error({ err: e.message }, 'metrics handler failed'));
        return;
      }
      if (path === '/health')
        return reply(res, 200, TEXT, 'CEEMS Exporter is healthy', { 'X-Content-Type-Options': 'nosniff' });
      if (o.targets && path === o.targetsPath) return targets(res);
      if (o.landing !== undefined && path === '/')
        return reply(res, 200, 'text/html; charset=utf-8', o.landing);
    }
    reply(res, 404, TEXT, '404 page not found\n');
  };

  return createPlainServer(o, handler);
}
