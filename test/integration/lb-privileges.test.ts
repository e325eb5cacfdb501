// ceems_lb started as root switches to nobody once its ports are bound, keeping no capability: access control keeps reading the
// API server's live (WAL) database, and the root-only web config stays reloadable through POSIX ACLs that
// are removed at shutdown (spec lb.md §2, exporter.md §15).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { CeemsDb, type UnitRecord } from '../../src/api/db/index.js';
import { listen, rawApp, tempDir, writeYaml } from '../fixtures/lb/setup.js';
import { type Started, startProgram } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';

const T0 = Date.UTC(2024, 4, 6);
const NOBODY = 65534;

const unit = (uuid: string, project: string, user: string): UnitRecord => ({
  cluster_id: 'hpc-0',
  resource_manager: 'slurm',
  uuid,
  project,
  username: user,
  started_at: '2024-05-06T00:00:00+0000',
  started_at_ts: T0 - 3600_000,
  ended_at: 'Unknown',
});

const uidOf = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
const getfacl = (path: string) => execFileSync('getfacl', ['-n', '-p', path], { encoding: 'utf8' });

describe('ceems_lb started as root', { timeout: 60_000 }, () => {
  const tmp = tempDir('ceems-lb-priv-');
  const webConfig = join(tmp.dir, 'web.yml');
  const backend = rawApp();
  backend.all('*', async () => ({ status: 'success', data: { resultType: 'vector', result: [] } }));
  let apiDb: CeemsDb;
  let lb: Started;

  const store = (units: UnitRecord[], end: number) =>
    apiDb.storeCollection({
      start: end - 3600_000,
      end,
      timeZone: 'UTC',
      units,
      projects: [
        { cluster_id: 'hpc-0', resource_manager: 'slurm', name: 'acc1', users: ['alice'] },
        { cluster_id: 'hpc-0', resource_manager: 'slurm', name: 'acc2', users: ['bob'] },
      ],
    });
  const auth = (password: string) => `Basic ${Buffer.from(`grafana:${password}`).toString('base64')}`;
  const query = (user: string, uuid: string, password = 'secret') =>
    fetch(`${lb.url}/api/v1/query?query=${encodeURIComponent(`up{uuid="${uuid}"}`)}`, {
      headers: { 'X-Grafana-User': user, 'X-Ceems-Cluster-Id': 'hpc-0', Authorization: auth(password) },
    });

  before(async () => {
    chmodSync(tmp.dir, 0o700); // root only, like /etc/ceems_lb and /var/lib/ceems
    // a running API server: its writer connection keeps the WAL files in place
    apiDb = CeemsDb.open(tmp.dir);
    store([unit('1001', 'acc1', 'alice'), unit('2001', 'acc2', 'bob')], T0);
    writeFileSync(webConfig, `basic_auth_users:\n  grafana: ${bcrypt.hashSync('secret', 4)}\n`, {
      mode: 0o600,
    });
    const config = writeYaml(join(tmp.dir, 'config.yml'), {
      ceems_api_server: { data: { path: tmp.dir } },
      ceems_lb: { backends: [{ id: 'hpc-0', tsdb: [{ web: { url: await listen(backend) } }] }] },
    });
    lb = await startProgram('ceems_lb', [
      `--config.file=${config}`,
      `--web.config.file=${webConfig}`,
      '--web.listen-address=127.0.0.1:0',
    ]);
  });

  after(async () => {
    await lb?.stop();
    apiDb?.close();
    await backend.close();
    tmp.cleanup();
  });

  it('runs as nobody once listening, with no capability in any thread and an empty bounding set', async () => {
    await waitFor('the switch to nobody', 10_000, () => (uidOf(lb.pid) === NOBODY ? true : undefined));
    assert.match(
      lb.stderr(),
      /msg="Dropped root privileges" user=nobody uid=65534 capabilities=none bounding=none/,
    );
    assert.match(
      readFileSync(`/proc/${lb.pid}/status`, 'utf8'),
      /^CapPrm:\s+0+\nCapEff:\s+0+\nCapBnd:\s+0+$/m,
    );
    for (const tid of readdirSync(`/proc/${lb.pid}/task`)) {
      const status = readFileSync(`/proc/${lb.pid}/task/${tid}/status`, 'utf8');
      assert.match(status, new RegExp(`^Uid:\\s+${NOBODY}\\s`, 'm'), `thread ${tid}`);
      assert.match(status, /^CapPrm:\s+0+\nCapEff:\s+0+$/m, `thread ${tid}`);
    }
  });

  it('keeps deciding access from the live API server database, new units included', async () => {
    assert.equal((await query('alice', '1001')).status, 200);
    assert.equal((await query('alice', '2001')).status, 403);
    store([unit('1002', 'acc1', 'alice')], T0 + 3600_000);
    assert.equal((await query('alice', '1002')).status, 200, 'unit written after the switch');
  });

  it('reloads the root-only web config through a read ACL', async () => {
    assert.match(getfacl(webConfig), new RegExp(`^user:${NOBODY}:r--`, 'm'));
    assert.match(getfacl(tmp.dir), new RegExp(`^user:${NOBODY}:--x`, 'm'));
    writeFileSync(webConfig, `basic_auth_users:\n  grafana: ${bcrypt.hashSync('rotated', 4)}\n`);
    // the file is looked at once a second at most
    const deadline = Date.now() + 10_000;
    while ((await query('alice', '1001', 'rotated')).status !== 200) {
      assert.ok(Date.now() < deadline, `rotated password refused; log:\n${lb.stderr()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal((await query('alice', '1001', 'secret')).status, 401);
    assert.doesNotMatch(lb.stderr(), /Failed to reload web config/);
  });

  it('removes the ACL entries at shutdown', async () => {
    await lb.stop();
    await waitFor('ACL removal', 10_000, () =>
      getfacl(webConfig).includes(`user:${NOBODY}`) || getfacl(tmp.dir).includes(`user:${NOBODY}`)
        ? undefined
        : true,
    );
  });
});
