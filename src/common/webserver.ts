// Fastify server factory shared by the stack's servers: several listen addresses, exporter-toolkit web
// config (TLS incl. client certificates, extra headers, basic auth), Go http.Server-like timeouts.

import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createSecureServer as createHttp2Server } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Logger } from './logger.js';
import { BasicAuthVerifier, checkClientCert, type WebConfig, WebConfigSource } from './webconfig.js';

export interface ListenAddress {
  host: string | undefined;
  port: number;
}

/** Parses Go-style listen addresses: `:9010`, `127.0.0.1:9010`, `[::1]:9010`, `localhost:0`. */
export function parseListenAddress(addr: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw new Error(`invalid listen address '${addr}' (want [host]:port)`);
  const host = m[1] ?? m[2];
  return { host: host === '' ? undefined : host, port };
}

export interface WebServerOptions {
  listenAddresses: string[];
  webConfigFile?: string;
  logger: Logger;
  /** Go http.Server timeouts of the original: read 10 s, write 10 s, read-header 2 s. */
  requestTimeoutMs?: number;
  headersTimeoutMs?: number;
  fastify?: Partial<FastifyServerOptions>;
}

export interface WebServer {
  app: FastifyInstance;
  /** Starts listening on every address; resolves to the bound addresses (`host:port`). */
  listen(): Promise<string[]>;
  close(): Promise<void>;
  webConfig(): WebConfig | undefined;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export function createWebServer(opts: WebServerOptions): WebServer {
  const log = opts.logger;
  const addresses = opts.listenAddresses.map(parseListenAddress);
  const servers: Server[] = [];
  const source = opts.webConfigFile
    ? new WebConfigSource(
        opts.webConfigFile,
        (e) => log.error({ err: e.message }, 'Failed to reload web config; keeping the previous one'),
        (cfg) => {
          for (const s of servers) {
            if (cfg.tls && 'setSecureContext' in s)
              (s as unknown as { setSecureContext(o: object): void }).setSecureContext(cfg.tls.options);
          }
          log.info({ file: opts.webConfigFile }, 'Reloaded web config');
        },
      )
    : undefined;
  const initial = source?.get();
  for (const u of initial?.invalidHashUsers ?? []) {
    log.error(
      { user: u },
      'basic_auth_users: password hash is not a valid bcrypt hash; this user can never log in',
    );
  }
  const tls = initial?.tls;
  const makeServer = (handler: Handler): Server => {
    let srv: Server;
    if (tls && initial?.http2) {
      srv = createHttp2Server({ ...tls.options, allowHTTP1: true }, handler as never) as unknown as Server;
    } else if (tls) {
      srv = createHttpsServer(tls.options, handler);
    } else {
      srv = createHttpServer(handler);
    }
    srv.requestTimeout = opts.requestTimeoutMs ?? 10_000;
    srv.headersTimeout = opts.headersTimeoutMs ?? 2_000;
    return srv;
  };
  const app = Fastify({
    logger: false,
    ...opts.fastify,
    serverFactory: (handler) => {
      for (let i = 0; i < Math.max(1, addresses.length); i++) servers.push(makeServer(handler));
      return servers[0]!;
    },
  }) as unknown as FastifyInstance;

  if (source) {
    const verifier = new BasicAuthVerifier();
    app.addHook('onRequest', async (req, reply) => {
      const cfg = source.get();
      for (const [k, v] of Object.entries(cfg.headers)) reply.header(k, v);
      if (cfg.tls) {
        const err = checkClientCert(cfg.tls, req.raw.socket as TLSSocket);
        if (err) {
          log.debug({ err, remote: req.ip }, 'TLS client rejected');
          return reply.code(403).type('text/plain; charset=utf-8').send(`${err}\n`);
        }
      }
      if (
        cfg.basicAuthUsers.size > 0 &&
        !(await verifier.verify(cfg.basicAuthUsers, req.headers.authorization))
      ) {
        return reply
          .code(401)
          .header('WWW-Authenticate', 'Basic')
          .type('text/plain; charset=utf-8')
          .send('Unauthorized\n');
      }
    });
  }

  return {
    app,
    webConfig: () => source?.get(),
    async listen() {
      await app.ready();
      const bound: string[] = [];
      for (let i = 0; i < addresses.length; i++) {
        const { host, port } = addresses[i]!;
        const srv = servers[i]!;
        await new Promise<void>((res, rej) => {
          srv.once('error', rej);
          srv.listen(port, host, () => {
            srv.off('error', rej);
            res();
          });
        });
        const a = srv.address() as AddressInfo;
        const shown = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
        bound.push(shown);
        log.info(
          { address: shown, http2: tls ? Boolean(initial?.http2) : false, tls: Boolean(tls) },
          'Listening on',
        );
      }
      return bound;
    },
    async close() {
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((res) => {
              if (!s.listening) return res();
              s.close(() => res());
              s.closeIdleConnections?.();
            }),
        ),
      );
      await app.close();
    },
  };
}
