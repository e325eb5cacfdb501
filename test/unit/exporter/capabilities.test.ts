import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseFlags } from '../../../src/common/flags.js';
import { createLogger } from '../../../src/common/logger.js';
import { lookupUser } from '../../../src/common/syscall.js';
import type { CollectorContext } from '../../../src/exporter/collector.js';
import { PodResourcesClient } from '../../../src/exporter/k8s/podresources.js';
import {
  allFlags,
  childCapabilities,
  grantKubeletSocketAccess,
  kubeletSocketInUse,
  neededCapabilities,
} from '../../../src/exporter/main.js';

function ctx(args: string[], sysfs: string): CollectorContext {
  return {
    hostname: 'n',
    procfs: '/proc',
    sysfs,
    cgroupfs: '/sys/fs/cgroup',
    flags: parseFlags(allFlags(), args, { env: {} }).flags,
    logger: createLogger({ level: 'silent' }),
  };
}

describe('capabilities the exporter keeps after the switch (spec §15)', () => {
  const empty = mkdtempSync(join(tmpdir(), 'ceems-sysfs-'));
  it('lists what slurm and ipmi_dcmi need and nothing for cpu', () => {
    const caps = neededCapabilities(['cpu', 'slurm', 'ipmi_dcmi'], ctx([], empty));
    assert.deepEqual(caps, {
      cpu: [],
      slurm: ['cap_sys_ptrace', 'cap_dac_read_search'],
      ipmi_dcmi: ['cap_setuid', 'cap_setgid'],
      rdma: [],
    });
  });
  it('rdma needs setuid/setgid with --collector.rdma.stats on a node with Mellanox HCAs', () => {
    const sysfs = mkdtempSync(join(tmpdir(), 'ceems-sysfs-ib-'));
    mkdirSync(join(sysfs, 'class/infiniband/mlx5_0'), { recursive: true });
    assert.deepEqual(neededCapabilities(['k8s'], ctx(['--collector.rdma.stats'], sysfs)).rdma, [
      'cap_setuid',
      'cap_setgid',
    ]);
    assert.deepEqual(neededCapabilities(['k8s'], ctx([], sysfs)).rdma, [], 'flag off');
    assert.deepEqual(neededCapabilities(['k8s'], ctx(['--collector.rdma.stats'], empty)).rdma, [], 'no HCA');
    assert.equal(neededCapabilities(['cpu'], ctx(['--collector.rdma.stats'], sysfs)).rdma, undefined);
  });
  it("tools run as uid 0 need cap_net_admin beyond the exporter's set only for rdma (bounding set)", () => {
    assert.deepEqual(childCapabilities({ rdma: ['cap_setuid', 'cap_setgid'], ipmi_dcmi: ['cap_setuid'] }), {
      rdma: ['cap_net_admin'],
    });
    assert.deepEqual(childCapabilities({ rdma: [], ipmi_dcmi: ['cap_setuid', 'cap_setgid'] }), {});
  });
  it('rapl needs nothing where there is no powercap', () => {
    assert.deepEqual(neededCapabilities(['rapl'], ctx([], empty)), { rapl: [] });
  });
  it('k8s needs DAC override only while a client uses an existing kubelet socket and no ACLs were granted', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ceems-kubelet-'));
    const sock = join(dir, 'kubelet.sock');
    const c = ctx([`--collector.k8s.kubelet-podresources-socket.file=${sock}`], empty);
    writeFileSync(sock, '');
    // no GPUs: the collector creates no pod-resources client, the socket is not needed
    assert.equal(kubeletSocketInUse(c), undefined);
    assert.deepEqual(neededCapabilities(['k8s'], c), { k8s: [], rdma: [] });
    const client = new PodResourcesClient(sock);
    try {
      assert.equal(kubeletSocketInUse(c), sock);
      assert.deepEqual(neededCapabilities(['k8s'], c), { k8s: ['cap_dac_override'], rdma: [] });
      assert.deepEqual(neededCapabilities(['k8s'], c, true), { k8s: [], rdma: [] }, 'ACLs instead (§15)');
      rmSync(sock);
      assert.deepEqual(neededCapabilities(['k8s'], c), { k8s: [], rdma: [] }, 'no socket to reach');
    } finally {
      client.close();
    }
    writeFileSync(sock, '');
    assert.equal(kubeletSocketInUse(c), undefined, 'closed clients do not count');
  });
});

describe('ACLs on the kubelet socket instead of cap_dac_override (spec §6, §15)', () => {
  const nobody = lookupUser('nobody')!;
  const hasNobodyEntry = (p: string) =>
    /^user:nobody:/m.test(execFileSync('getfacl', ['-p', p], { encoding: 'utf8' }));

  it('are granted only when root will be dropped and a client uses the socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ceems-kubelet-')); // 0700
    const sock = join(dir, 'kubelet.sock');
    writeFileSync(sock, '', { mode: 0o600 });
    const flag = `--collector.k8s.kubelet-podresources-socket.file=${sock}`;
    const c = ctx([flag], '/nonexistent');
    const client = new PodResourcesClient(sock);
    try {
      assert.equal(await grantKubeletSocketAccess(undefined, c), undefined, 'not started as root');
      const noDrop = ctx([flag, '--no-security.drop-privileges'], '/nonexistent');
      assert.equal(await grantKubeletSocketAccess(nobody, noDrop), undefined);
      assert.equal(hasNobodyEntry(sock), false);

      const lease = await grantKubeletSocketAccess(nobody, c);
      assert.ok(lease);
      assert.deepEqual(
        lease.changes.map((x) => x.path),
        [sock, dir],
      );
      assert.equal(hasNobodyEntry(sock), true);
      await lease.release();
      assert.equal(hasNobodyEntry(sock), false);
      assert.equal(hasNobodyEntry(dir), false);
    } finally {
      client.close();
      rmSync(dir, { recursive: true });
    }
  });
});

describe('privileged reads stay on the main thread (src/common/privileges.ts)', () => {
  // After the switch only the main thread holds the capabilities (the libuv pool and worker threads hold
  // none, test/unit/common/privileges.test.ts): a collector that read a root-only file asynchronously would
  // get EACCES. So the exporter's code imports only the synchronous node:fs calls.
  const ROOT_DIR = join(import.meta.dirname, '../../..');
  const sources = [
    ...readdirSync(join(ROOT_DIR, 'src/exporter'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => join('src/exporter', f)),
    'src/common/fsread.ts',
  ];
  const ASYNC_MODULES = /from '(node:)?(fs\/promises|worker_threads)'|\bcreateReadStream\b|\bfs\.promises\b/;
  // `watch`: libuv's uv_fs_event_start calls inotify_add_watch on the loop (main) thread, not the pool
  const NOT_CALLS = new Set(['constants', 'Dirent', 'Stats', 'PathLike', 'FSWatcher', 'watch']);

  it('imports no asynchronous fs call, fs/promises or worker_threads', () => {
    assert.ok(sources.length > 50, `${sources.length} files`);
    const offenders: string[] = [];
    for (const file of sources) {
      const text = readFileSync(join(ROOT_DIR, file), 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/\/\/.*$/gm, ''); // comments may name what is avoided
      if (ASYNC_MODULES.test(text)) offenders.push(`${file}: ${ASYNC_MODULES.exec(text)![0]}`);
      if (/import\s+(\*\s+as\s+\w+|\w+)\s+from\s+'(node:)?fs'/.test(text))
        offenders.push(`${file}: whole node:fs imported`);
      for (const m of text.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+'(?:node:)?fs'/g))
        for (const name of m[1]!.split(',').map((n) => n.replace(/^\s*type\s+/, '').trim()))
          if (name && !name.endsWith('Sync') && !NOT_CALLS.has(name)) offenders.push(`${file}: ${name}`);
    }
    assert.deepEqual(offenders, []);
  });
});
