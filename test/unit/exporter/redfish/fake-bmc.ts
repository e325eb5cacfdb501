// A fake BMC Redfish service on 127.0.0.1:0 serving vendor-shaped Redfish JSON (a mockup file per BMC model
// under test/fixtures/redfish: resource path → resource) with session tokens, basic auth, token expiry, a
// missing or token-less session service, and slow/failing modes. Shared by the collector and redfish_proxy
// tests.

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { parseFlags } from '../../../../src/common/flags.js';
import type { Logger } from '../../../../src/common/logger.js';
import { FamilySet } from '../../../../src/exporter/collector.js';
import { type RedfishCollector, redfish } from '../../../../src/exporter/collectors/redfish.js';

const FIX = resolve(import.meta.dirname, '../../../fixtures/redfish');

/** The modelled BMCs: Dell iDRAC 9, HPE iLO 5, Lenovo XCC, a newer AMI MegaRAC without `Power`. */
export type BmcModel = 'dell-idrac9' | 'hpe-ilo5' | 'lenovo-xcc' | 'ami-self';

/**
 * How the session service answers a login: `token` (201 with `X-Auth-Token`), `no-token` (200 without
 * the header, as some BMCs with sessions turned off), `absent` (404) or `not-allowed` (405).
 */
export type SessionMode = 'token' | 'no-token' | 'absent' | 'not-allowed';

export const BMC_USER = 'root';
export const BMC_PASSWORD = 'calvin';

export interface FakeBmc {
  url: string;
  app: FastifyInstance;
  /**
   * `ok`; `fail`: authenticated resources answer 500; `slow`: they answer after `slowMs`; `deny`: they answer
   * 401 whatever the credentials (a locked account).
   */
  mode: 'ok' | 'fail' | 'slow' | 'deny';
  slowMs: number;
  logins: number;
  logouts: string[];
  /** Resource path → JSON; tests may change it (drop optional fields, links). */
  resources: Map<string, Record<string, unknown>>;
  sessions: SessionMode;
  /** Every request as `<METHOD> <path>` with the headers the test wants to check. */
  requests: {
    line: string;
    redfishUrl: string | undefined;
    authorization: string | undefined;
    token: string | undefined;
  }[];
  /** Forgets every session token (the BMC expired them). */
  expireTokens(): void;
  /** Absolute `Location` header for new sessions (some BMCs do this) instead of a path. */
  absoluteLocation: boolean;
  close(): Promise<void>;
}

export function loadMockup(model: BmcModel): Map<string, Record<string, unknown>> {
  const doc = JSON.parse(readFileSync(join(FIX, `${model}.json`), 'utf8')) as Record<
    string,
    Record<string, unknown>
  >;
  return new Map(Object.entries(doc));
}

export async function startFakeBmc(
  opts: { https?: { cert: string; key: string }; model?: BmcModel; sessions?: SessionMode } = {},
): Promise<FakeBmc> {
  const app = Fastify({
    logger: false,
    ...(opts.https ? { https: opts.https } : {}),
  }) as unknown as FastifyInstance;
  const tokens = new Map<string, string>();
  let next = 0;
  const bmc: FakeBmc = {
    url: '',
    app,
    resources: loadMockup(opts.model ?? 'dell-idrac9'),
    sessions: opts.sessions ?? 'token',
    mode: 'ok',
    slowMs: 0,
    logins: 0,
    logouts: [],
    requests: [],
    absoluteLocation: false,
    expireTokens: () => tokens.clear(),
    // Keep-alive connections of clients that were never closed must not hold the test up.
    close: async () => {
      const closing = app.close();
      app.server.closeAllConnections();
      await closing;
    },
  };
  const basic = `Basic ${Buffer.from(`${BMC_USER}:${BMC_PASSWORD}`).toString('base64')}`;
  app.addHook('onRequest', async (req) => {
    bmc.requests.push({
      line: `${req.method} ${req.url}`,
      redfishUrl: req.headers['x-redfish-url'] as string | undefined,
      authorization: req.headers.authorization,
      token: req.headers['x-auth-token'] as string | undefined,
    });
  });
  const authed = (req: { headers: Record<string, string | string[] | undefined> }) => {
    const t = req.headers['x-auth-token'];
    return (typeof t === 'string' && tokens.has(t)) || req.headers.authorization === basic;
  };
  const unauthorized = {
    error: {
      code: 'Base.1.8.AccessDenied',
      message: 'The authentication credentials included with this request are missing or invalid.',
    },
  };

  // Real BMCs answer with and without the trailing slash their @odata.id may carry.
  const resource = (path: string) =>
    bmc.resources.get(path) ?? bmc.resources.get(path.endsWith('/') ? path.slice(0, -1) : `${path}/`);
  const isSessions = (path: string) => /^\/redfish\/v1\/SessionService\/Sessions\/?$/.test(path);
  const sessionId = (path: string) => /^\/redfish\/v1\/SessionService\/Sessions\/([^/]+)\/?$/.exec(path)?.[1];

  const login = async (req: FastifyRequest, reply: FastifyReply) => {
    if (bmc.sessions === 'absent')
      return reply.code(404).send({
        error: {
          code: 'Base.1.8.ResourceMissingAtURI',
          message: `The resource at the URI ${req.url} was not found.`,
        },
      });
    if (bmc.sessions === 'not-allowed') return reply.code(405).header('Allow', 'GET').send();
    const body = req.body as { UserName?: string; Password?: string } | undefined;
    if (body?.UserName !== BMC_USER || body?.Password !== BMC_PASSWORD)
      return reply.code(401).send(unauthorized);
    bmc.logins++;
    const id = String(++next);
    const path = `/redfish/v1/SessionService/Sessions/${id}`;
    const session = {
      '@odata.id': path,
      '@odata.type': '#Session.v1_3_0.Session',
      Id: id,
      Name: 'User Session',
      UserName: BMC_USER,
    };
    if (bmc.sessions === 'no-token') return reply.code(200).send(session);
    const token = `token-${id}-${Math.random().toString(16).slice(2)}`;
    tokens.set(token, id);
    return reply
      .code(201)
      .header('X-Auth-Token', token)
      .header('Location', bmc.absoluteLocation ? `${bmc.url}${path}/` : path)
      .send(session);
  };

  app.post('/*', (req, reply) =>
    isSessions(req.url) ? login(req, reply) : reply.code(405).header('Allow', 'GET').send(),
  );
  app.delete('/*', async (req, reply) => {
    const id = sessionId(req.url);
    const t = req.headers['x-auth-token'];
    if (id === undefined || typeof t !== 'string' || tokens.get(t) !== id)
      return reply.code(401).send(unauthorized);
    tokens.delete(t);
    bmc.logouts.push(id);
    return reply.code(204).send();
  });
  app.get('/*', async (req, reply) => {
    const path = req.url.split('?')[0]!;
    // the service root is readable without credentials
    if (path === '/redfish/v1/' || path === '/redfish/v1') return resource('/redfish/v1/');
    if (!authed(req) || bmc.mode === 'deny') return reply.code(401).send(unauthorized);
    if (bmc.mode === 'fail')
      return reply.code(500).send({
        error: {
          code: 'Base.1.8.InternalError',
          message: 'The request failed due to an internal service error.',
        },
      });
    if (bmc.mode === 'slow') await new Promise((r) => setTimeout(r, bmc.slowMs));
    const doc = resource(path);
    if (!doc)
      return reply.code(404).send({
        error: {
          code: 'Base.1.8.ResourceMissingAtURI',
          message: `The resource at the URI ${path} was not found.`,
        },
      });
    return doc;
  });

  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address() as { port: number };
  bmc.url = `${opts.https ? 'https' : 'http'}://127.0.0.1:${addr.port}`;
  return bmc;
}

/** A `redfish_collector` config for `bmc` with its credentials; `extra` holds more indented key lines. */
export function collectorYaml(bmc: FakeBmc, extra = ''): string {
  const u = new URL(bmc.url);
  return `redfish_collector:\n  protocol: ${u.protocol.slice(0, -1)}\n  hostname: ${u.hostname}\n  port: ${u.port}\n  username: ${BMC_USER}\n  password: ${BMC_PASSWORD}\n${extra}`;
}

/** The real redfish collector of node `node1` built from the config file `path`. */
export async function createRedfishCollector(path: string, logger: Logger): Promise<RedfishCollector> {
  return (await redfish.create({
    hostname: 'node1',
    procfs: '/proc',
    sysfs: '/sys',
    cgroupfs: '/sys/fs/cgroup',
    flags: parseFlags(redfish.flags, [`--collector.redfish.config.file=${path}`], { env: {} }).flags,
    logger,
  })) as RedfishCollector;
}

/** One scrape: `<metric>{chassis="…"} <value>` lines, sorted. */
export async function scrapeRedfish(c: RedfishCollector): Promise<string[]> {
  const set = new FamilySet();
  await c.update(set, new AbortController().signal);
  const out: string[] = [];
  for (const f of set.families.values())
    for (const s of f.samples) out.push(`${f.name}{chassis="${s.labels.chassis}"} ${s.value}`);
  return out.sort();
}
