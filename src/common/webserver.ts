// Fastify server factory of the API server and the redfish proxy, on the shared transport of
// httpserver.ts: several listen addresses, exporter-toolkit web config (TLS incl. client certificates,
// extra headers, basic auth), Go http.Server-like timeouts.

import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { type ListenerOptions, Listeners } from './httpserver.js';
import type { WebConfig } from './webconfig.js';
import * as webconfig from './webconfig.js';

export { type ListenAddress, parseListenAddress } from './httpserver.js';

export interface WebServerOptions extends ListenerOptions {
  fastify?: Partial<FastifyServerOptions>;
}

export interface WebServer {
  app: FastifyInstance;
  /** Starts listening on every address; resolves to the bound addresses (`host:port`). */
  listen(): Promise<string[]>;
  close(): Promise<void>;
  webConfig(): WebConfig | undefined;
}

export function createWebServer(opts: WebServerOptions): WebServer {
  const listeners = new Listeners(opts, opts.webConfigFile ? webconfig : undefined);
  const app = Fastify({
    logger: false,
    ...opts.fastify,
    serverFactory: (handler) => listeners.create(handler),
  }) as unknown as FastifyInstance;

  if (listeners.guarded) {
    app.addHook('onRequest', async (req, reply) => {
      const refusal = await listeners.admit(req.raw, (k, v) => reply.header(k, v));
      if (refusal)
        return reply
          .code(refusal.status)
          .headers(refusal.headers)
          .type('text/plain; charset=utf-8')
          .send(refusal.body);
    });
  }

  return {
    app,
    webConfig: () => listeners.webConfig(),
    async listen() {
      await app.ready();
      return listeners.listen();
    },
    async close() {
      await listeners.close();
      await app.close();
    },
  };
}
