// What the perf sub-collector reads of a process: parent and start time, the boot clock, and the
// --collector.perf.env-var selection with SLURM's helper processes left out.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  envVarSelected,
  parseStat,
  readBootTicks,
  readProcessInfo,
} from '../../../../src/exporter/perf/process.js';

function procfs(procs: Record<number, { cmdline?: string; environ?: string }>): string {
  const root = mkdtempSync(join(tmpdir(), 'ceems-perf-procfs-'));
  for (const [pid, p] of Object.entries(procs)) {
    mkdirSync(join(root, pid));
    if (p.cmdline !== undefined) writeFileSync(join(root, pid, 'cmdline'), p.cmdline);
    if (p.environ !== undefined) writeFileSync(join(root, pid, 'environ'), p.environ);
  }
  writeFileSync(join(root, 'uptime'), '12345.67 24000.01\n');
  return root;
}

describe('process information', () => {
  it('takes ppid and start time after the command name, whatever it holds', () => {
    // fields: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    // cutime cstime priority nice threads itrealvalue starttime …
    const stat = '4242 (a (b) c) S 17 4242 4242 0 -1 4194304 100 0 0 0 5 1 0 0 20 0 1 0 987654 1000 ...';
    assert.deepEqual(parseStat(stat), { ppid: 17, start: 987654 });
    assert.equal(parseStat('garbage'), undefined);
  });

  it('reads this process like the kernel shows it, and nothing for a process that is gone', () => {
    const info = readProcessInfo('/proc', process.pid);
    assert.equal(info?.ppid, process.ppid);
    const starttime = Number(readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[19]);
    assert.equal(info?.start, starttime);
    assert.equal(readProcessInfo('/proc', 2 ** 22 + 1), undefined);
  });

  it('boot clock in ticks (centiseconds) from /proc/uptime, the clock of start times', () => {
    assert.equal(readBootTicks(procfs({})), 1234567);
    const now = readBootTicks('/proc');
    assert.ok(
      now >= (readProcessInfo('/proc', process.pid)?.start ?? Infinity),
      'this process started before now',
    );
  });
});

describe('--collector.perf.env-var selection', () => {
  const root = procfs({
    10: { cmdline: 'python3\0train.py\0', environ: 'HOME=/home/u\0SLURM_JOB_ID=42\0' },
    11: { cmdline: 'sleep\x00100000000\x00', environ: 'SLURM_JOB_ID=42\0' },
    12: { cmdline: '/bin/bash\0/var/spool/slurmd/job00042/slurm_script\0', environ: 'SLURM_JOB_ID=42\0' },
    13: { cmdline: 'slurmstepd: [42.batch]\0', environ: 'SLURM_JOB_ID=42\0' },
    14: { cmdline: 'python3\0', environ: 'HOME=/home/u\0X=SLURM_JOB_ID\0' },
    15: { cmdline: '', environ: 'SLURM_JOB_ID=42\0' }, // a zombie or kernel thread
    16: { cmdline: 'python3\0' }, // environ unreadable (no cap_sys_ptrace)
  });
  const selected = (pid: number, skip = true) => envVarSelected(root, pid, ['SLURM_JOB', 'CEEMS_'], skip);

  it('keeps processes with a variable whose name starts with a prefix', () => {
    assert.equal(selected(10), true);
    assert.equal(selected(14), false, 'the prefix must start the name, not the value');
    assert.equal(selected(16), false, 'unreadable: not profiled');
    assert.equal(selected(99), false, 'gone');
  });

  it('leaves out SLURM helpers (step daemon, extern sleep, batch shell) and empty command lines', () => {
    for (const pid of [11, 12, 13, 15]) assert.equal(selected(pid), false, `pid ${pid}`);
    assert.equal(selected(11, false), true, 'other managers have no such helpers');
  });
});
