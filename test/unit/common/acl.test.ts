import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  AclError,
  AclLease,
  grantAccess,
  hasAccess,
  parseGetfacl,
  pathAccessTargets,
  revertAccess,
} from '../../../src/common/acl.js';
import { runCommand } from '../../helpers/process.js';
import { waitFor } from '../../helpers/wait.js';

// Real setfacl/getfacl on temp files; the tests act as root granting access to nobody (65534).
const NOBODY = 65534;
const NOGROUP = 65534;
const getfacl = (p: string) => execFileSync('getfacl', ['-n', '-p', '--', p], { encoding: 'utf8' });
const setfacl = (spec: string, p: string) => execFileSync('setfacl', ['-m', spec, '--', p]);
const entry = (p: string) => /^user:65534:(\S+)/m.exec(getfacl(p))?.[1];

const root = realpathSync(mkdtempSync(join(tmpdir(), 'ceems-acl-')));
after(() => rmSync(root, { recursive: true, force: true }));

/** root(0700)/open(0755)/closed(0700)/kubelet.sock(0600): what nobody lacks is rw on the file, x on two dirs. */
function tree(name: string): { file: string; open: string; closed: string; top: string } {
  const top = join(root, name);
  const open = join(top, 'open');
  const closed = join(open, 'closed');
  mkdirSync(top, { mode: 0o700 });
  mkdirSync(open, { mode: 0o755 });
  mkdirSync(closed, { mode: 0o700 });
  const file = join(closed, 'kubelet.sock');
  writeFileSync(file, '', { mode: 0o600 });
  return { file, open, closed, top };
}

describe('ACL access check (acl(5) algorithm)', () => {
  const acl = (text: string) =>
    parseGetfacl(`# file: x\n# owner: 0\n# group: 100\n${text.split(' ').join('\n')}\n`);
  it('owner, named user with mask, groups and other', () => {
    const a = acl('user::rw- user:7:rw- group::r-- group:200:rwx mask::r-x other::--x');
    assert.equal(hasAccess(a, 0, [0], 'rw'), true);
    assert.equal(hasAccess(a, 7, [7], 'r'), true);
    assert.equal(hasAccess(a, 7, [7], 'w'), false, 'mask hides w from the named user');
    assert.equal(hasAccess(a, 8, [100], 'x'), false, 'a matching group entry decides, not other');
    assert.equal(hasAccess(a, 8, [200], 'rx'), true);
    assert.equal(hasAccess(a, 8, [8], 'x'), true);
    assert.equal(hasAccess(a, 8, [8], 'r'), false);
  });
  it('parses effective-rights comments and rejects other output', () => {
    const a = parseGetfacl(
      '# file: /a\n# owner: 5\n# group: 6\n# flags: --t\nuser::rwx\ngroup:9:rwx\t#effective:r--\nmask::r--\nother::---\n',
    );
    assert.deepEqual(
      [a.owner, a.group, a.entries.get('group:9'), a.entries.get('mask:')],
      [5, 6, 'rwx', 'r--'],
    );
    assert.throws(() => parseGetfacl('getfacl: Removing leading'), {
      name: 'AclError',
      message: /^unexpected getfacl output: "getfacl: Removing leading"$/,
    });
  });
});

describe('granting and removing ACLs with setfacl', () => {
  it('adds exactly the missing entries: rw on the file, x on closed parent directories only', async () => {
    const t = tree('exact');
    const targets = pathAccessTargets(t.file, 'rw');
    assert.deepEqual(targets.slice(0, 4), [
      { path: t.file, perms: 'rw' },
      { path: t.closed, perms: 'x' },
      { path: t.open, perms: 'x' },
      { path: t.top, perms: 'x' },
    ]);
    assert.equal(targets.at(-1)!.path, '/');
    const before = targets.map((x) => getfacl(x.path));
    const changes = await grantAccess(NOBODY, [NOGROUP], targets);
    // `root` is a 0700 mkdtemp dir too; /tmp and / are already traversable by everyone
    assert.deepEqual(
      changes.map((c) => c.path),
      [t.file, t.closed, t.top, root],
    );
    assert.equal(entry(t.file), 'rw-');
    assert.equal(entry(t.closed), '--x');
    assert.equal(entry(t.open), undefined);
    // a second grant finds nothing missing
    assert.deepEqual(await grantAccess(NOBODY, [NOGROUP], targets), []);
    assert.equal((await AclLease.grant(NOBODY, [NOGROUP], targets)).watchdogPid, undefined);
    await revertAccess(changes);
    assert.deepEqual(
      targets.map((x) => getfacl(x.path)),
      before,
      'minimal ACLs are minimal again',
    );
  });

  it('keeps the operator’s own entries and mask: widened for the grant, restored exactly at release', async () => {
    const t = tree('operator');
    setfacl('u:65534:r--,g:100:r--,m::r--', t.file); // operator: read only, restrictive mask
    setfacl('u:65534:--x', t.closed); // operator already lets nobody through
    const before = [t.file, t.closed, t.top].map(getfacl);
    const lease = await AclLease.grant(NOBODY, [NOGROUP], pathAccessTargets(t.file, 'rw'));
    assert.deepEqual(
      lease.changes.map((c) => c.path),
      [t.file, t.top, root],
    );
    assert.match(getfacl(t.file), /^user:65534:rw-$/m);
    assert.match(getfacl(t.file), /^mask::rw-$/m);
    assert.match(getfacl(t.file), /^group:100:r--$/m);
    await lease.release();
    assert.deepEqual([t.file, t.closed, t.top].map(getfacl), before);
  });

  it('the restore process ignores SIGTERM/SIGINT/SIGHUP and only runs when the pipe closes', async () => {
    const t = tree('signals');
    const lease = await AclLease.grant(NOBODY, [NOGROUP], pathAccessTargets(t.file, 'rw'));
    const pid = lease.watchdogPid!;
    // give sh a moment to install its trap, then signal its whole group
    await new Promise((r) => setTimeout(r, 100));
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.kill(-pid, sig);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(entry(t.file), 'rw-');
    process.kill(pid, 0); // still alive
    await lease.release();
    assert.equal(entry(t.file), undefined);
    assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
  });

  it('removes the entries when the holding process exits without releasing (and does not keep it alive)', async () => {
    const t = tree('exit');
    const acl = resolve(import.meta.dirname, '../../../src/common/acl.ts');
    const r = await runCommand(process.execPath, [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `const { AclLease, pathAccessTargets } = await import(${JSON.stringify(acl)});
         const lease = await AclLease.grant(${NOBODY}, [${NOGROUP}], pathAccessTargets(${JSON.stringify(t.file)}, 'rw'));
         process.stdout.write(String(lease.watchdogPid));`,
    ]);
    assert.equal(r.code, 0, `the lease does not keep the process alive\n${r.stderr}`);
    assert.match(r.stdout, /^\d+$/);
    await waitFor('the restore process to remove the entries', 5000, () => entry(t.file) === undefined);
    assert.equal(entry(t.closed), undefined);
  });

  it('follows symlinks: grants on the real file and every directory on both paths', () => {
    const t = tree('symlink');
    const link = join(t.top, 'link.sock');
    symlinkSync(t.file, link);
    const paths = pathAccessTargets(link, 'rw').map((x) => x.path);
    assert.equal(paths[0], t.file);
    for (const d of [t.closed, t.open, t.top, dirname(t.top), '/']) assert.ok(paths.includes(d), d);
  });
});

describe('ACL errors', () => {
  it('a missing path is named', async () => {
    assert.throws(() => pathAccessTargets(join(root, 'missing/kubelet.sock'), 'rw'), {
      name: 'AclError',
      message: `cannot grant access to '${join(root, 'missing/kubelet.sock')}': ENOENT`,
    });
    await assert.rejects(grantAccess(NOBODY, [NOGROUP], [{ path: '/nonexistent', perms: 'x' }]), {
      name: 'AclError',
      message:
        "cannot change ACL of '/nonexistent': command 'getfacl -n -p -- /nonexistent' exited with status 1: getfacl: /nonexistent: No such file or directory",
    });
  });

  it('a missing tool says to install the acl package', async () => {
    const t = tree('notool');
    await assert.rejects(
      AclLease.grant(NOBODY, [NOGROUP], pathAccessTargets(t.file, 'rw'), { setfacl: 'no-such-setfacl' }),
      new AclError('no-such-setfacl not found; install the acl package'),
    );
    assert.equal(entry(t.file), undefined);
  });

  it('a setfacl failure names path and message and undoes what was already granted', async () => {
    const t = tree('fail');
    await assert.rejects(
      grantAccess(
        NOBODY,
        [NOGROUP],
        [
          { path: t.file, perms: 'rw' },
          { path: '/proc/1/environ', perms: 'r' },
        ],
      ),
      {
        name: 'AclError',
        message:
          "cannot change ACL of '/proc/1/environ': command 'setfacl -m u:65534:r-- -- /proc/1/environ' exited with status 1: setfacl: /proc/1/environ: Operation not supported",
      },
    );
    assert.equal(entry(t.file), undefined);
    assert.doesNotMatch(getfacl(t.file), /mask/);
  });
});
