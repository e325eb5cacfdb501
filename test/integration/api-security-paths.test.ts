// The path-encoding matrix (test/unit/api/path-matrix.ts) against the real ceems_api_server binary on a
// seeded DB, with and without --web.route-prefix: the routes are enumerated from an in-process app built
// with the same options, the requests go to the binary over 127.0.0.1. Plus the identity-header checks
// that only a real HTTP parser can show (a header repeated on the wire).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ADMIN, seedDb } from '../fixtures/api/seed.js';
import { testServer } from '../fixtures/api/server.js';
import { type Started, startProgram } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';
import { closeAgent, getRoutes, rawGet, runMatrix, type Target } from '../unit/api/path-matrix.js';

const cleanup: string[] = [];
const started: Started[] = [];
after(async () => {
  closeAgent();
  for (const p of started) await p.stop();
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

async function start(extra: string[]): Promise<Target> {
  const data = seedDb();
  const dir = mkdtempSync(join(tmpdir(), 'ceems-apisec-'));
  cleanup.push(data, dir);
  const cfg = join(dir, 'config.yml');
  writeFileSync(
    cfg,
    `ceems_api_server:\n  data:\n    path: ${data}\n    time_zone: Europe/Paris\n  admin:\n    users: [${ADMIN}]\n`,
  );
  const p = await startProgram('ceems_api_server', [
    '--config.file',
    cfg,
    '--web.listen-address=127.0.0.1:0',
    '--storage.data.skip.delete.old.units',
    ...extra,
  ]);
  started.push(p);
  const i = p.address.lastIndexOf(':');
  const target = { host: p.address.slice(0, i), port: Number(p.address.slice(i + 1)) };
  // admin rows are re-synced from the config at start-up
  const prefix = extra.find((a) => a.startsWith('--web.route-prefix='))?.split('=')[1] ?? '';
  await waitFor(
    'admin rows',
    10_000,
    async () =>
      (await rawGet(target, `${prefix}/api/v1/units/admin`, { 'X-Grafana-User': ADMIN })).status === 200,
  );
  return target;
}

describe('ceems_api_server binary: path-encoding matrix', () => {
  for (const prefix of ['', '/ceems']) {
    test(`every route, every spelling${prefix ? ` (--web.route-prefix=${prefix})` : ''}`, async () => {
      const target = await start(prefix ? [`--web.route-prefix=${prefix}`] : []);
      const local = await testServer({ routePrefix: prefix || '/' });
      try {
        await local.api.app.ready();
        const pathsOf = (access: string) =>
          new Set(local.api.routes.filter((r) => r.access === access).map((r) => r.url));
        const r = await runMatrix({
          target,
          routes: getRoutes(local.api.app, local.api.routes),
          users: { 'no user': undefined, bob: 'bob', admin: ADMIN, 'ceems-int-svc': 'ceems-int-svc' },
          adminRoutes: pathsOf('admin'),
          publicRoutes: pathsOf('public'),
          admins: new Set(['admin', 'ceems-int-svc']),
          query: '?uuid=1003&cluster_id=slurm-0&role=admin',
          prefix,
        });
        console.log(
          `binary matrix${prefix ? ` prefix=${prefix}` : ''}: ${r.routes} routes, ${r.variants} variants, ${r.requests} requests, ${r.refused} refused`,
        );
        assert.deepEqual(r.failures.slice(0, 20), []);
        assert.ok(r.routes >= 20 && r.variants > 1000, `${r.routes} routes, ${r.variants} variants`);
      } finally {
        await local.close();
      }
    });
  }
});

describe('ceems_api_server binary: identity headers on the wire', () => {
  /** One raw HTTP/1.1 request with the given header lines; returns status and body. */
  async function wire(t: Target, path: string, lines: string[]) {
    const sock = connect(t.port, t.host);
    sock.end(
      `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`,
    );
    let out = '';
    for await (const chunk of sock) out += chunk;
    return { status: Number(out.slice(9, 12)), body: out.slice(out.indexOf('\r\n\r\n') + 4) };
  }

  test('repeated, folded or malformed user headers are refused with 400; verify and the service user work', async () => {
    const t = await start([]);
    const verify = '/api/v1/units/verify?uuid=1003&cluster_id=slurm-0';
    assert.equal((await wire(t, verify, ['X-Grafana-User: bob'])).status, 200);
    for (const lines of [
      ['X-Grafana-User: bob', 'X-Grafana-User: bob'],
      ['X-Grafana-User: bob', 'x-grafana-user: root-admin'],
      ['X-Grafana-User: bob, root-admin'],
      ['X-Grafana-User: b\u00e9b'],
    ]) {
      for (const path of [verify, '/api/v1/units/admin', '/api/v1/users']) {
        const r = await wire(t, path, lines);
        assert.equal(r.status, 400, `${path} ${lines.join(' | ')}`);
        assert.match(
          r.body,
          /^\{"status":"error","data":null,"errorType":"bad_data","error":"invalid X-Grafana-User header: /,
        );
      }
    }
    const none = await wire(t, verify, ['X-Grafana-User:']);
    assert.equal(none.status, 401);
    const svc = await wire(t, '/api/v1/users/admin?role=admin', ['X-Grafana-User: ceems-int-svc']);
    assert.equal(svc.status, 200);
    assert.match(svc.body, /"name":"ceems-int-svc"/);
  });
});
