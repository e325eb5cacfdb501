// A fake CEEMS API server / TSDB for cacct tests: fastify on 127.0.0.1:0 serving fixture JSON with the
// API's exact envelope, recording every request (path, query, headers).

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before } from 'node:test';
import { gzipSync } from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';

export const FIXTURES = resolve(import.meta.dirname, '../../fixtures/cli');

export interface Recorded {
  path: string;
  query: [string, string][];
  headers: Record<string, string | string[] | undefined>;
}

export interface FakeServer {
  url: string;
  requests: Recorded[];
  close(): Promise<void>;
}

export type Handler = (req: Recorded) => { status: number; body: string; gzip?: boolean };

export async function startFake(handler: Handler): Promise<FakeServer> {
  const app: FastifyInstance = Fastify();
  const requests: Recorded[] = [];
  app.all('/*', async (req, reply) => {
    const u = new URL(req.url, 'http://x');
    const rec: Recorded = { path: u.pathname, query: [...u.searchParams], headers: req.headers };
    requests.push(rec);
    const res = handler(rec);
    reply.code(res.status).header('content-type', 'application/json');
    if (res.gzip) return reply.header('content-encoding', 'gzip').send(gzipSync(res.body));
    return reply.send(res.body);
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address() as { port: number };
  return { url: `http://127.0.0.1:${addr.port}`, requests, close: () => app.close() };
}

export function fixture(name: string): string {
  return readFileSync(join(FIXTURES, name), 'utf8');
}

/** The API server of the fixtures: units and usage from `cacct/units.json` / `cacct/usage.json`. */
export const apiFixtures: Handler = (req) => {
  if (req.path.includes('/api/v1/units')) return { status: 200, body: fixture('cacct/units.json') };
  if (req.path.includes('/api/v1/usage/current')) return { status: 200, body: fixture('cacct/usage.json') };
  return { status: 404, body: '404 page not found' };
};

/** Writes a cacct config file into a fresh directory and returns that directory. */
export function configDir(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'cacct-test-'));
  writeFileSync(join(dir, 'config.yml'), yaml);
  return dir;
}

/** An API server whose units endpoint answers `units` and whose usage endpoint has no rows. */
export function unitsOnly(units: unknown[]): Handler {
  return (req) =>
    req.path.endsWith('/units')
      ? { status: 200, body: JSON.stringify({ status: 'success', data: units }) }
      : { status: 200, body: '{"status":"success","data":null}' };
}

/** The smallest cacct config: the API server at `url` (and a cluster id). */
export function apiConfigDir(url: string, clusterId?: string): string {
  const cluster = clusterId === undefined ? '' : `  cluster_id: ${clusterId}\n`;
  return configDir(`ceems_api_server:\n${cluster}  web:\n    url: ${url}\n`);
}

/** Runs `test` with a fake API server answering with `handler` and a config dir pointing at it. */
export async function withFakeApi<T>(
  handler: Handler,
  test: (dir: string, api: FakeServer) => Promise<T>,
): Promise<T> {
  const api = await startFake(handler);
  try {
    return await test(apiConfigDir(api.url), api);
  } finally {
    await api.close();
  }
}

/** A fake API server and its config dir for the tests of the calling suite (started before, closed after). */
export function suiteFakeApi(
  handler: Handler,
  clusterId?: string,
): { api: () => FakeServer; dir: () => string } {
  let api: FakeServer | undefined;
  let dir = '';
  before(async () => {
    api = await startFake(handler);
    dir = apiConfigDir(api.url, clusterId);
  });
  after(() => api?.close());
  return { api: () => api!, dir: () => dir };
}

/** Runs cacct's main in-process with captured output. */
export async function runCacct(
  main: (argv: string[], io: object) => Promise<number>,
  argv: string[],
  io: { configDirs: string[]; user?: string; now?: Date },
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: (s: string) => {
      stdout += s;
    },
    stderr: (s: string) => {
      stderr += s;
    },
    user: io.user ?? 'usr1',
    now: () => io.now ?? new Date('2024-05-07T12:00:00Z'),
    configDirs: io.configDirs,
  });
  return { code, stdout, stderr };
}
