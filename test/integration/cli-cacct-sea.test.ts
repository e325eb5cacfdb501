// cacct's installation model (cli.md §1.1): built as one native executable and installed setgid to the
// group that may read the config file, a normal user (testbed user usr1) can run it without being able to
// read the file; the request carries usr1's login name; NODE_OPTIONS cannot inject code into it.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildExecutable, program } from '../../scripts/package.js';
import { runCommand } from '../helpers/process.js';
import { apiFixtures, type FakeServer, startFake } from '../unit/cli/fake-api.js';

const USER = 'usr1';
const GROUP = 'nogroup';

function gid(group: string): number {
  return Number(execFileSync('getent', ['group', group], { encoding: 'utf8' }).split(':')[2]);
}

describe('cacct as a setgid single executable', () => {
  let dir: string;
  let api: FakeServer;
  const bin = () => join(dir, 'bin', 'cacct');
  // code a user would like to run with the executable's group: writes a marker file when loaded
  const marker = () => join(dir, 'out', 'injected');
  const evil = () => join(dir, 'out', 'evil.js');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cacct-sea-test-'));
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'bin'), { mode: 0o755 });
    mkdirSync(join(dir, 'xdg', 'ceems'), { recursive: true, mode: 0o755 });
    mkdirSync(join(dir, 'out'), { mode: 0o1777 });
    chmodSync(join(dir, 'out'), 0o1777);
    api = await startFake(apiFixtures);
    const cfg = join(dir, 'xdg', 'ceems', 'config.yml');
    writeFileSync(
      cfg,
      `ceems_api_server:\n  web:\n    url: ${api.url}\n    basic_auth:\n      username: cacct\n      password: secret\n`,
    );
    chownSync(cfg, 0, gid(GROUP));
    chmodSync(cfg, 0o640);
    writeFileSync(evil(), `require('fs').writeFileSync(${JSON.stringify(marker())}, 'x');\n`);
    chmodSync(evil(), 0o644);
    await buildExecutable(program('cacct'), bin());
  });

  after(async () => {
    await api?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // async: the fake API server runs in this process and must keep answering
  const runAsUser = (env: Record<string, string> = {}) =>
    runCommand(
      'runuser',
      [
        '-u',
        USER,
        '--',
        'env',
        `XDG_CONFIG_HOME=${join(dir, 'xdg')}`,
        ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
        bin(),
        '--starttime=2024-05-06',
        '--endtime=2024-05-07',
        '--csv',
        '--format=jobid,user',
      ],
      { timeoutMs: 30_000 },
    );

  it('without setgid the user cannot read the config (and NODE_OPTIONS is honoured)', async () => {
    chownSync(bin(), 0, 0);
    chmodSync(bin(), 0o755);
    const r = await runAsUser({ NODE_OPTIONS: `--require=${evil()}` });
    assert.equal(existsSync(marker()), true, 'control: NODE_OPTIONS injection works on a normal executable');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^cacct: error: cannot read config file '.*config\.yml': EACCES/);
  });

  it('setgid to the config group: runs for the user, as the user, and ignores NODE_OPTIONS', async () => {
    chownSync(bin(), 0, gid(GROUP));
    chmodSync(bin(), 0o2755);
    rmSync(marker(), { force: true });
    api.requests.length = 0;
    const r = await runAsUser({ NODE_OPTIONS: `--require=${evil()}` });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Job ID,User\n4242,usr1\n/);
    assert.equal(api.requests[0]!.headers['x-grafana-user'], USER);
    assert.equal(existsSync(marker()), false, 'NODE_OPTIONS code ran inside the setgid executable');
  });
});
