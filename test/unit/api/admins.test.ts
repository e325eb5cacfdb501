// Admin users from the config and from Grafana teams, re-synced so that a removed admin loses access
// (spec §13, D-API-2), against a fake Grafana HTTP API on 127.0.0.1.

import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { AdminUsers, checkReachable } from '../../../src/api/admins.js';
import { CeemsDb } from '../../../src/api/db/index.js';
import { createLogger } from '../../../src/common/logger.js';
import { seedDb } from '../../fixtures/api/seed.js';
import { type TestServer, testServer } from '../../fixtures/api/server.js';
import { plain } from '../../helpers/rows.js';

const log = createLogger({ level: 'error' });
const members: Record<string, string[] | 'error'> = { '1': ['g1', 'g2'], '2': ['g3'] };
const seenAuth: string[] = [];
let grafana: FastifyInstance;
let grafanaUrl: string;
let dataDir: string;
let db: CeemsDb;
let api: TestServer;

before(async () => {
  grafana = Fastify();
  grafana.get<{ Params: { id: string } }>('/api/teams/:id/members', async (req, reply) => {
    seenAuth.push(String(req.headers.authorization));
    const m = members[req.params.id];
    if (m === undefined) return reply.code(404).send({ message: 'Team not found' });
    if (m === 'error') return reply.code(500).send({ message: 'boom' });
    // Grafana's real member objects
    return m.map((login, i) => ({
      orgId: 1,
      teamId: Number(req.params.id),
      userId: i + 10,
      auth_module: '',
      email: `${login}@example.org`,
      name: login,
      login,
      avatarUrl: '/avatar/x',
      labels: [],
      permission: 0,
    }));
  });
  grafanaUrl = await grafana.listen({ host: '127.0.0.1', port: 0 });
  dataDir = seedDb();
  db = CeemsDb.open(dataDir);
  api = await testServer({}, dataDir);
});
after(async () => {
  db.close();
  await api.close();
  await grafana.close();
});

const adminRows = () => plain(db.db.prepare('SELECT name, tags FROM admin_users ORDER BY name').all());

function admins(users: string[], teams: string[]) {
  return new AdminUsers(
    db,
    {
      users,
      grafana: { url: grafanaUrl, teams_ids: teams, authorization: { type: 'Bearer', credentials: 'tok' } },
    },
    dataDir,
    'UTC',
    log,
  );
}

describe('admin users', () => {
  test('static and Grafana admins are stored with their source; the client config is used', async () => {
    const a = admins(['root-admin'], ['1', '2']);
    await a.checkGrafana();
    await a.refresh();
    await a.stop();
    assert.deepEqual(adminRows(), [
      { name: 'ceems-int-svc', tags: '["ceems"]' },
      { name: 'g1', tags: '["grafana"]' },
      { name: 'g2', tags: '["grafana"]' },
      { name: 'g3', tags: '["grafana"]' },
      { name: 'root-admin', tags: '["ceems"]' },
    ]);
    assert.ok(seenAuth.every((h) => h === 'Bearer tok'));
    assert.equal((await api.get('/api/v1/units/admin', 'g1')).status, 200);
  });

  test('a member removed from the team loses admin access at the next refresh (D-API-2)', async () => {
    members['1'] = ['g2'];
    const a = admins(['root-admin'], ['1', '2']);
    await a.refresh();
    await a.stop();
    assert.ok(!adminRows().some((r) => r.name === 'g1'));
    const r = await api.get('/api/v1/units/admin', 'g1');
    assert.equal(r.status, 403);
    assert.equal(r.json.error, 'current user does not have admin privileges');
    assert.equal((await api.get('/api/v1/units/admin', 'g2')).status, 200);
  });

  test('a failed team leaves the Grafana admins untouched; static admins are still re-synced', async () => {
    members['2'] = 'error';
    const a = admins([], ['1', '2']);
    await a.refresh();
    await a.stop();
    assert.deepEqual(
      adminRows().map((r) => r.name),
      ['ceems-int-svc', 'g2', 'g3'],
    );
    assert.equal((await api.get('/api/v1/units/admin', 'root-admin')).status, 403);
  });

  test('periodic refresh picks up changes without a restart', async () => {
    members['2'] = ['g3', 'g4'];
    const a = admins([], ['1', '2']);
    a.start(20);
    const deadline = Date.now() + 5000;
    while (!adminRows().some((r) => r.name === 'g4') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    members['2'] = ['g3'];
    while (adminRows().some((r) => r.name === 'g4') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    await a.stop();
    assert.deepEqual(
      adminRows().map((r) => r.name),
      ['ceems-int-svc', 'g2', 'g3'],
    );
  });

  test('an unreachable Grafana fails the start-up check', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    await new Promise((r) => srv.close(r));
    await assert.rejects(checkReachable(`http://127.0.0.1:${port}`), {
      message: `Grafana at http://127.0.0.1:${port} is unreachable`,
    });
  });
});
