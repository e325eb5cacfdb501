import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseFlags } from '../../../src/common/flags.js';
import { createLogger } from '../../../src/common/logger.js';
import type { CollectorContext } from '../../../src/exporter/collector.js';
import { allFlags, neededCapabilities } from '../../../src/exporter/main.js';

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

describe('capabilities that keep the exporter root (spec §15)', () => {
  const empty = mkdtempSync(join(tmpdir(), 'ceems-sysfs-'));
  it('lists what slurm and ipmi_dcmi need and nothing for cpu', () => {
    const caps = neededCapabilities(['cpu', 'slurm', 'ipmi_dcmi'], ctx([], empty));
    assert.deepEqual(caps, {
      cpu: [],
      slurm: ['cap_sys_ptrace', 'cap_dac_read_search'],
      ipmi_dcmi: ['cap_setuid', 'cap_setgid'],
    });
  });
  it('rapl needs nothing where there is no powercap', () => {
    assert.deepEqual(neededCapabilities(['rapl'], ctx([], empty)), { rapl: [] });
  });
  it('k8s needs DAC override only when the kubelet pod-resources socket exists (no ACLs from Node.js)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ceems-kubelet-'));
    const sock = join(dir, 'kubelet.sock');
    const flag = `--collector.k8s.kubelet-podresources-socket.file=${sock}`;
    assert.deepEqual(neededCapabilities(['k8s'], ctx([flag], empty)), { k8s: [] });
    writeFileSync(sock, '');
    assert.deepEqual(neededCapabilities(['k8s'], ctx([flag], empty)), { k8s: ['cap_dac_override'] });
  });
});
