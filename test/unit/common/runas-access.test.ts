// Files the run-as user must still read after the switch: which ones (web config and the TLS files it
// names) and when read ACLs are granted for them.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Logger } from '../../../src/common/logger.js';
import { createLogger } from '../../../src/common/logger.js';
import { grantRunAsReadAccess } from '../../../src/common/privileges.js';
import { lookupUser } from '../../../src/common/syscall.js';
import { webConfigFiles } from '../../../src/common/webconfig.js';

const nobody = lookupUser('nobody')!;
const getfacl = (p: string) => execFileSync('getfacl', ['-n', '-p', p], { encoding: 'utf8' });

function logCapture(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: 'info',
    format: 'json',
    write: (l: string) => lines.push(JSON.parse(l)),
  });
  return { logger, lines };
}

describe('webConfigFiles', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ceems-webfiles-'));
  it('lists the config and its TLS files, relative ones resolved against the config directory', () => {
    const file = join(dir, 'web.yml');
    writeFileSync(
      file,
      'tls_server_config:\n  cert_file: tls/server.crt\n  key_file: /etc/ssl/server.key\n  client_ca_file: ca.pem\n',
    );
    assert.deepEqual(webConfigFiles(file), [
      file,
      join(dir, 'tls/server.crt'),
      '/etc/ssl/server.key',
      join(dir, 'ca.pem'),
    ]);
  });
  it('is just the config without TLS files, or when it cannot be parsed', () => {
    const plain = join(dir, 'auth.yml');
    writeFileSync(plain, 'basic_auth_users:\n  grafana: x\n');
    assert.deepEqual(webConfigFiles(plain), [plain]);
    const broken = join(dir, 'broken.yml');
    writeFileSync(broken, 'tls_server_config: [\n');
    assert.deepEqual(webConfigFiles(broken), [broken]);
    const empty = join(dir, 'empty.yml');
    writeFileSync(empty, '');
    assert.deepEqual(webConfigFiles(empty), [empty]);
  });
});

describe('grantRunAsReadAccess', () => {
  const tree = () => {
    const dir = mkdtempSync(join(tmpdir(), 'ceems-runas-'));
    chmodSync(dir, 0o700);
    mkdirSync(join(dir, 'tls'), { mode: 0o700 });
    const files = [join(dir, 'web.yml'), join(dir, 'tls/server.key')];
    for (const f of files) writeFileSync(f, 'x', { mode: 0o600 });
    return { dir, files };
  };

  it('gives read on each file and search on the directories above, until released', async () => {
    const { dir, files } = tree();
    const { logger, lines } = logCapture();
    const lease = await grantRunAsReadAccess(nobody, files, { dropPrivileges: true, logger });
    assert.ok(lease);
    for (const f of files) assert.match(getfacl(f), new RegExp(`^user:${nobody.uid}:r--`, 'm'));
    for (const d of [dir, join(dir, 'tls')])
      assert.match(getfacl(d), new RegExp(`^user:${nobody.uid}:--x`, 'm'));
    assert.equal(lines.at(-1)?.msg, 'Run-as user can read these files through ACLs');
    await lease.release();
    for (const p of [...files, dir]) assert.doesNotMatch(getfacl(p), new RegExp(`user:${nobody.uid}`));
  });

  it('grants nothing when the process does not switch', async () => {
    const { files } = tree();
    const { logger } = logCapture();
    assert.equal(await grantRunAsReadAccess(nobody, files, { dropPrivileges: false, logger }), undefined);
    assert.equal(await grantRunAsReadAccess(undefined, files, { dropPrivileges: true, logger }), undefined);
    const root = { name: 'root', uid: 0, gid: 0 };
    assert.equal(await grantRunAsReadAccess(root, files, { dropPrivileges: true, logger }), undefined);
    for (const f of files) assert.doesNotMatch(getfacl(f), new RegExp(`user:${nobody.uid}`));
  });

  it('logs why when the ACLs cannot be set, and lets the switch go on', async () => {
    const { files } = tree();
    const { logger, lines } = logCapture();
    const missing = join(files[0]!, '..', 'absent.yml');
    const lease = await grantRunAsReadAccess(nobody, [missing], { dropPrivileges: true, logger });
    assert.equal(lease, undefined);
    assert.equal(lines.at(-1)?.level, 'WARN');
    assert.match(String(lines.at(-1)?.err), /absent\.yml.*ENOENT/);
    assert.match(String(lines.at(-1)?.msg), /using them after the switch will fail/);
  });
});
