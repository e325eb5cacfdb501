// Mount ids to mount points: our own mount table, a unit's own namespace through its first process, and
// internal mounts (pipes, sockets) that have no mount point.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { MountPoints, parseMountinfo } from '../../../../src/exporter/ebpf/mounts.js';

const line = (id: number, path: string) => `${id} 1 0:${id} / ${path} rw,relatime - ext4 /dev/x rw`;

describe('mount points of BPF mount ids', () => {
  const procfs = mkdtempSync(join(tmpdir(), 'ebpf-mounts-'));
  after(() => rmSync(procfs, { recursive: true, force: true }));
  const write = (pid: string, lines: string[]) => {
    mkdirSync(join(procfs, pid), { recursive: true });
    writeFileSync(join(procfs, pid, 'mountinfo'), `${lines.join('\n')}\n`);
  };

  it('parses mountinfo ids and unescapes the kernel octal escapes', () => {
    const m = parseMountinfo(`${line(27, '/')}\n${line(30, '/scratch\\040space\\134x')}\ngarbage\n`);
    assert.deepEqual(
      [...m],
      [
        [27, '/'],
        [30, '/scratch space\\x'],
      ],
    );
  });

  it('finds ids in our table, then in the unit namespace, and remembers ids found nowhere', () => {
    write('self', [line(27, '/'), line(28, '/home')]);
    write('4242', [line(500, '/'), line(501, '/data')]);
    const mounts = new MountPoints(procfs);
    mounts.refresh();
    assert.equal(mounts.path(28, []), '/home');
    assert.equal(mounts.path(501, []), undefined, 'no process to look in');
    assert.equal(mounts.path(501, [4242]), '/data');
    assert.equal(mounts.path(9, [4242]), undefined, 'an internal mount');
    // learnt: no more reads of the unit's table for these ids
    rmSync(join(procfs, '4242'), { recursive: true });
    assert.equal(mounts.path(500, [4242]), '/');
    assert.equal(mounts.path(9, [4242]), undefined);
  });

  it('a change of our table resets what it learnt', () => {
    write('self', [line(27, '/')]);
    const mounts = new MountPoints(procfs);
    mounts.refresh();
    assert.equal(mounts.path(31, [1]), undefined);
    write('self', [line(27, '/'), line(31, '/mnt/new')]);
    mounts.refresh();
    assert.equal(mounts.path(31, [1]), '/mnt/new');
  });
});
