// A fake BMC Redfish service on 127.0.0.1:0 serving real Redfish JSON (Dell iDRAC shapes) with session
// tokens, basic auth, token expiry and slow/failing modes. Shared by the collector and redfish_proxy tests.

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';

const FIX = resolve(import.meta.dirname, '../../../fixtures/redfish');
const fixture = (name: string) => JSON.parse(readFileSync(join(FIX, `${name}.json`), 'utf8')) as unknown;

export const BMC_USER = 'root';
export const BMC_PASSWORD = 'calvin';

export interface FakeBmc {
  url: string;
  app: FastifyInstance;
  /** `ok`; `fail`: authenticated resources answer 500; `slow`: they answer after `slowMs`. */
  mode: 'ok' | 'fail' | 'slow';
  slowMs: number;
  logins: number;
  logouts: string[];
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

export async function startFakeBmc(opts: { https?: { cert: string; key: string } } = {}): Promise<FakeBmc> {
  const app = Fastify({
    logger: false,
    ...(opts.https ? { https: opts.https } : {}),
  }) as unknown as FastifyInstance;
  const tokens = new Map<string, string>();
  let next = 0;
  const bmc: FakeBmc = {
    url: '',
    app,
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

  app.get('/redfish/v1/', async () => fixture('service-root'));
  app.post('/redfish/v1/SessionService/Sessions', async (req, reply) => {
    const body = req.body as { UserName?: string; Password?: string } | undefined;
    if (body?.UserName !== BMC_USER || body?.Password !== BMC_PASSWORD)
      return reply.code(401).send(unauthorized);
    bmc.logins++;
    const id = String(++next);
    const token = `token-${id}-${Math.random().toString(16).slice(2)}`;
    tokens.set(token, id);
    const path = `/redfish/v1/SessionService/Sessions/${id}`;
    return reply
      .code(201)
      .header('X-Auth-Token', token)
      .header('Location', bmc.absoluteLocation ? `${bmc.url}${path}` : path)
      .send({
        '@odata.id': path,
        '@odata.type': '#Session.v1_3_0.Session',
        Id: id,
        Name: 'User Session',
        UserName: BMC_USER,
      });
  });
  app.delete('/redfish/v1/SessionService/Sessions/:id', async (req, reply) => {
    const t = req.headers['x-auth-token'];
    if (typeof t !== 'string' || tokens.get(t) !== (req.params as { id: string }).id)
      return reply.code(401).send(unauthorized);
    tokens.delete(t);
    bmc.logouts.push((req.params as { id: string }).id);
    return reply.code(204).send();
  });
  const guarded = async (
    req: { headers: Record<string, string | string[] | undefined> },
    reply: { code(n: number): { send(b: unknown): unknown } },
    name: string,
  ) => {
    if (!authed(req)) return reply.code(401).send(unauthorized);
    if (bmc.mode === 'fail')
      return reply.code(500).send({
        error: {
          code: 'Base.1.8.InternalError',
          message: 'The request failed due to an internal service error.',
        },
      });
    if (bmc.mode === 'slow') await new Promise((r) => setTimeout(r, bmc.slowMs));
    return fixture(name);
  };
  app.get('/redfish/v1/Chassis', (req, reply) => guarded(req, reply, 'chassis-collection'));
  app.get('/redfish/v1/Chassis/:id', (req, reply) =>
    guarded(req, reply, `chassis-${(req.params as { id: string }).id}`),
  );
  app.get('/redfish/v1/Chassis/:id/Power', (req, reply) =>
    guarded(req, reply, `power-${(req.params as { id: string }).id}`),
  );

  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address() as { port: number };
  bmc.url = `${opts.https ? 'https' : 'http'}://127.0.0.1:${addr.port}`;
  return bmc;
}
