// The transport every server of the stack shares, without a framework: several listen addresses,
// exporter-toolkit web config (TLS incl. client certificate rules and reload, HTTP/2, extra headers, basic
// auth), Go http.Server-like timeouts. webserver.ts puts fastify on it; createPlainServer() serves a plain
// handler (the exporter). What it loads is what the configuration needs: node:http through
// process.getBuiltinModule (an ESM `import 'node:http'` also evaluates its lazy getters, which load
// undici and 12 MB more here), node:https/http2 only for TLS, the web config reader (yaml, zod, bcrypt)
// only when a web config file is given.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from './logger.js';
import type { BasicAuthVerifier, WebConfig, WebConfigSource } from './webconfig.js';

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

export interface ListenerOptions {
  listenAddresses: string[];
  webConfigFile?: string;
  logger: Logger;
  /** Go http.Server timeouts of the original: read 10 s, write 10 s, read-header 2 s. */
  requestTimeoutMs?: number;
  headersTimeoutMs?: number;
}

/** The web config module, passed in by whoever loaded it (statically or on demand). */
export type WebConfigModule = typeof import('./webconfig.js');

/** A request the web config turns away, with what to answer. */
export interface Refusal {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** The servers of every listen address and the web config checks they apply. */
export class Listeners {
  readonly servers: Server[] = [];
  private readonly addresses: ListenAddress[];
  private readonly source: WebConfigSource | undefined;
  private readonly verifier: BasicAuthVerifier | undefined;
  private readonly initial: WebConfig | undefined;
  private readonly checkClientCert: WebConfigModule['checkClientCert'] | undefined;

  /** `webconfig` must be given with a web config file. */
  constructor(
    private readonly opts: ListenerOptions,
    webconfig?: WebConfigModule,
  ) {
    const log = opts.logger;
    this.addresses = opts.listenAddresses.map(parseListenAddress);
    if (opts.webConfigFile) {
      if (!webconfig) throw new Error('web config module not loaded');
      this.source = new webconfig.WebConfigSource(
        opts.webConfigFile,
        (e) => log.error({ err: e.message }, 'Failed to reload web config; keeping the previous one'),
        (cfg) => {
          for (const s of this.servers) {
            if (cfg.tls && 'setSecureContext' in s)
              (s as unknown as { setSecureContext(o: object): void }).setSecureContext(cfg.tls.options);
          }
          log.info({ file: opts.webConfigFile }, 'Reloaded web config');
        },
      );
      this.verifier = new webconfig.BasicAuthVerifier();
      this.checkClientCert = webconfig.checkClientCert;
    }
    this.initial = this.source?.get();
    for (const u of this.initial?.invalidHashUsers ?? []) {
      log.error(
        { user: u },
        'basic_auth_users: password hash is not a valid bcrypt hash; this user can never log in',
      );
    }
  }

  /** True when requests must pass `admit` (a web config file is in use). */
  get guarded(): boolean {
    return this.source !== undefined;
  }

  webConfig(): WebConfig | undefined {
    return this.source?.get();
  }

  /** One server per listen address (at least one), all serving `handler`; returns the first. */
  create(handler: Handler): Server {
    const tls = this.initial?.tls;
    for (let i = 0; i < Math.max(1, this.addresses.length); i++) {
      let srv: Server;
      if (tls && this.initial?.http2) {
        srv = process
          .getBuiltinModule('node:http2')
          .createSecureServer({ ...tls.options, allowHTTP1: true }, handler as never) as unknown as Server;
      } else if (tls) {
        srv = process.getBuiltinModule('node:https').createServer(tls.options, handler);
      } else {
        srv = process.getBuiltinModule('node:http').createServer(handler);
      }
      srv.requestTimeout = this.opts.requestTimeoutMs ?? 10_000;
      srv.headersTimeout = this.opts.headersTimeoutMs ?? 2_000;
      this.servers.push(srv);
    }
    return this.servers[0]!;
  }

  /**
   * What the web config asks of a request before its handler sees it: its extra headers (given to
   * `setHeader`, so they are on refusals too), the client certificate rules Node's handshake cannot
   * express (403) and basic auth (401). Undefined when the request may proceed.
   */
  async admit(
    req: IncomingMessage,
    setHeader: (name: string, value: string) => void,
  ): Promise<Refusal | undefined> {
    if (!this.source) return undefined;
    const cfg = this.source.get();
    for (const [k, v] of Object.entries(cfg.headers)) setHeader(k, v);
    if (cfg.tls) {
      const err = this.checkClientCert!(cfg.tls, req.socket as TLSSocket);
      if (err) {
        this.opts.logger.debug({ err, remote: req.socket.remoteAddress }, 'TLS client rejected');
        return { status: 403, headers: {}, body: `${err}\n` };
      }
    }
    if (
      cfg.basicAuthUsers.size > 0 &&
      !(await this.verifier!.verify(cfg.basicAuthUsers, req.headers.authorization))
    )
      return { status: 401, headers: { 'WWW-Authenticate': 'Basic' }, body: 'Unauthorized\n' };
    return undefined;
  }

  /** Starts listening on every address; resolves to the bound addresses (`host:port`). */
  async listen(): Promise<string[]> {
    const tls = this.initial?.tls;
    const bound: string[] = [];
    for (let i = 0; i < this.addresses.length; i++) {
      const { host, port } = this.addresses[i]!;
      const srv = this.servers[i]!;
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
      this.opts.logger.info(
        { address: shown, http2: tls ? Boolean(this.initial?.http2) : false, tls: Boolean(tls) },
        'Listening on',
      );
    }
    return bound;
  }

  /** Stops accepting, closes idle connections and waits for the others. */
  async close(): Promise<void> {
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((res) => {
            if (!s.listening) return res();
            s.close(() => res());
            s.closeIdleConnections?.();
          }),
      ),
    );
  }
}

/**
 * The request body, or undefined when there is none; 'too large' beyond `limit` bytes (announced or sent).
 * Once too large the rest is not read: answer and close the connection (HTTP/1). With `drain` it is read to
 * its end and dropped instead (within the request timeout), so that a client still sending sees the answer.
 */
export function readBody(
  req: IncomingMessage,
  limit: number,
  opts: { drain?: boolean } = {},
): Promise<Buffer | undefined | 'too large'> {
  if (!opts.drain && Number(req.headers['content-length'] ?? 0) > limit) return Promise.resolve('too large');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
      else if (opts.drain) chunks.length = 0;
      else {
        req.off('data', onData);
        resolve('too large');
      }
    };
    req.on('data', onData);
    req.once('end', () =>
      resolve(size > limit ? 'too large' : size === 0 ? undefined : Buffer.concat(chunks)),
    );
    req.once('error', reject);
  });
}

export interface PlainServer {
  /** Starts listening on every address; resolves to the bound addresses (`host:port`). */
  listen(): Promise<string[]>;
  /** Stops accepting, answers 503 to requests on open connections, waits for those in flight. */
  close(): Promise<void>;
  webConfig(): WebConfig | undefined;
}

function plainReply(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}) {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

/**
 * A node:http(s/2) server running `handler` behind the web config; loads the web config reader only when a
 * web config file is given.
 */
export async function createPlainServer(opts: ListenerOptions, handler: Handler): Promise<PlainServer> {
  const webconfig = opts.webConfigFile ? await import('./webconfig.js') : undefined;
  const listeners = new Listeners(opts, webconfig);
  let closing = false;
  const serve = (req: IncomingMessage, res: ServerResponse) => {
    if (closing) {
      // HTTP/2 has no Connection header: its session ends with the server.
      plainReply(res, 503, 'Service Unavailable\n', req.httpVersionMajor < 2 ? { connection: 'close' } : {});
      return;
    }
    if (!listeners.guarded) return handler(req, res);
    listeners
      .admit(req, (k, v) => res.setHeader(k, v))
      .then(
        (refusal) =>
          refusal ? plainReply(res, refusal.status, refusal.body, refusal.headers) : handler(req, res),
        (e: Error) => {
          opts.logger.error({ err: e.message }, 'web config check failed');
          if (!res.headersSent) plainReply(res, 500, 'Internal Server Error\n');
        },
      );
  };
  listeners.create(serve);
  return {
    webConfig: () => listeners.webConfig(),
    listen: () => listeners.listen(),
    async close() {
      closing = true;
      await listeners.close();
    },
  };
}
