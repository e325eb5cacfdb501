// Fake RTE opendatasoft, Electricity Maps and WattTime APIs on 127.0.0.1:0 answering with the real
// response shapes (fixtures in test/fixtures/emissions), with switchable failures, delays and 429s.

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';

const FIX = resolve(import.meta.dirname, '../../../fixtures/emissions');
export const fixture = (name: string) =>
  JSON.parse(readFileSync(join(FIX, name), 'utf8')) as Record<string, unknown>;

export type Behaviour = 'ok' | 'fail' | 'slow' | 'ratelimit';

export interface FakeApi {
  url: string;
  app: FastifyInstance;
  behaviour: Behaviour;
  slowMs: number;
  retryAfter: string | undefined;
  /** Requests as `<path>?<query>` plus selected headers. */
  seen: { url: string; authToken?: string; authorization?: string }[];
  close(): Promise<void>;
}

export async function startFakeApi(routes: (app: FastifyInstance, api: FakeApi) => void): Promise<FakeApi> {
  const app = Fastify({ logger: false }) as unknown as FastifyInstance;
  const api: FakeApi = {
    url: '',
    app,
    behaviour: 'ok',
    slowMs: 0,
    retryAfter: undefined,
    seen: [],
    // Keep-alive connections of clients that were never closed must not hold the test up.
    close: async () => {
      const closing = app.close();
      app.server.closeAllConnections();
      await closing;
    },
  };
  app.addHook('onRequest', async (req, reply: FastifyReply) => {
    api.seen.push({
      url: req.url,
      authToken: req.headers['auth-token'] as string | undefined,
      authorization: req.headers.authorization,
    });
    if (api.behaviour === 'fail')
      return reply.code(503).type('text/html').send('<html><body>Service Unavailable</body></html>');
    if (api.behaviour === 'ratelimit') {
      if (api.retryAfter !== undefined) reply.header('Retry-After', api.retryAfter);
      return reply.code(429).send({ error: 'Too Many Requests' });
    }
    if (api.behaviour === 'slow') await new Promise((r) => setTimeout(r, api.slowMs));
  });
  routes(app, api);
  await app.listen({ host: '127.0.0.1', port: 0 });
  api.url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  return api;
}

export const RTE_PATH = '/api/explore/v2.1/catalog/datasets/eco2mix-national-tr/records';

export function rteRoutes(app: FastifyInstance): void {
  app.get(RTE_PATH, async () => fixture('rte-records.json'));
}

export const EMAPS_TOKEN = 'emaps-test-token';

/** Zones DE and FR readable; US-CAL-CISO listed but refused (403) as for a token without access. */
export function emapsRoutes(app: FastifyInstance): void {
  app.get('/v3/zones', async (req, reply) => {
    if (req.headers['auth-token'] !== EMAPS_TOKEN) return reply.code(401).send({ message: 'Unauthorized' });
    return fixture('emaps-zones.json');
  });
  app.get('/v3/carbon-intensity/latest', async (req, reply) => {
    if (req.headers['auth-token'] !== EMAPS_TOKEN) return reply.code(401).send({ message: 'Unauthorized' });
    const zone = (req.query as { zone?: string }).zone;
    if (zone === 'US-CAL-CISO')
      return reply.code(403).send({ message: 'Access to zone US-CAL-CISO is not included in your plan' });
    const doc = fixture('emaps-latest-DE.json');
    return zone === 'FR' ? { ...doc, zone: 'FR', carbonIntensity: 27 } : doc;
  });
}

export const WT_USER = 'wtuser';
export const WT_PASS = 'wtpass';

export function wattTimeRoutes(app: FastifyInstance, state: { tokens: Set<string>; logins: number }): void {
  app.get('/login', async (req, reply) => {
    if (req.headers.authorization !== `Basic ${Buffer.from(`${WT_USER}:${WT_PASS}`).toString('base64')}`)
      return reply.code(403).send({ error: 'Invalid credentials' });
    const token = `wt-token-${++state.logins}`;
    state.tokens.add(token);
    return { token };
  });
  app.get('/v3/historical', async (req, reply) => {
    const auth = req.headers.authorization ?? '';
    if (!auth.startsWith('Bearer ') || !state.tokens.has(auth.slice(7)))
      return reply.code(401).send({ error: 'Unauthorized' });
    return fixture('wt-historical.json');
  });
}
