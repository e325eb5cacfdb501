import assert from 'node:assert/strict';
import { closeSync, readFileSync, readSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  CAPABILITIES,
  capabilityMask,
  capabilityNames,
  getAmbientSet,
  getBoundingSet,
  getCapabilities,
  lastCapability,
  lookupUser,
  PERF_FLAG_FD_CLOEXEC,
  perfEventOpen,
  SyscallError,
} from '../../../src/common/syscall.js';

const statusField = (name: string) =>
  BigInt(
    `0x${new RegExp(`^${name}:\\s+([0-9a-f]+)$`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))![1]}`,
  );

describe('syscall module (real calls on this machine)', () => {
  it('maps capability names and masks both ways', () => {
    const mask = capabilityMask(['cap_dac_read_search', 'CAP_SYS_PTRACE', 'cap_perfmon']);
    assert.equal(mask, (1n << 2n) | (1n << 19n) | (1n << 38n));
    assert.deepEqual(capabilityNames(mask), ['cap_dac_read_search', 'cap_sys_ptrace', 'cap_perfmon']);
    assert.throws(() => capabilityMask(['cap_nonsense']), /unknown capability 'cap_nonsense'/);
    assert.equal(Object.keys(CAPABILITIES).length, 41);
  });

  it('reads the same capability sets as /proc/self/status', () => {
    const sets = getCapabilities();
    assert.equal(sets.effective, statusField('CapEff'));
    assert.equal(sets.permitted, statusField('CapPrm'));
    assert.equal(sets.inheritable, statusField('CapInh'));
    assert.equal(getBoundingSet(), statusField('CapBnd'));
    assert.equal(getAmbientSet(), statusField('CapAmb'));
    assert.equal(lastCapability(), Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8')));
  });

  it('looks users up through NSS by name and by uid', () => {
    const passwd = readFileSync('/etc/passwd', 'utf8');
    const nobody = /^nobody:[^:]*:(\d+):(\d+):/m.exec(passwd)!;
    assert.deepEqual(lookupUser('nobody'), {
      name: 'nobody',
      uid: Number(nobody[1]),
      gid: Number(nobody[2]),
      home: /^nobody:(?:[^:]*:){4}([^:]*):/m.exec(passwd)![1],
    });
    assert.equal(lookupUser('0')?.name, 'root');
    assert.equal(lookupUser('no-such-user-ceems'), undefined);
  });

  it('opens a perf software counter that counts this thread’s CPU time', () => {
    // struct perf_event_attr: type PERF_TYPE_SOFTWARE (1), size, config PERF_COUNT_SW_TASK_CLOCK (1),
    // read_format TOTAL_TIME_ENABLED | TOTAL_TIME_RUNNING
    const attr = Buffer.alloc(136);
    attr.writeUInt32LE(1, 0);
    attr.writeUInt32LE(136, 4);
    attr.writeBigUInt64LE(1n, 8);
    attr.writeBigUInt64LE(3n, 32);
    const fd = perfEventOpen(attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
    try {
      const read = () => {
        const b = Buffer.alloc(24);
        assert.equal(readSync(fd, b, 0, 24, null), 24);
        return b.readBigUInt64LE(0);
      };
      const before = read();
      // busy until the process has used 20 ms of CPU (not of wall time: other tests share the cores)
      const cpu = () => process.cpuUsage().user + process.cpuUsage().system;
      const started = cpu();
      while (cpu() - started < 20_000);
      const counted = read() - before;
      // this thread did nearly all of it; other threads (GC, libuv) may have taken a little
      assert.ok(counted >= 10_000_000n && counted < 1_000_000_000n, `task clock counted ${counted} ns`);
    } finally {
      closeSync(fd);
    }
  });

  it('turns a failing call into a SyscallError with errno and code', () => {
    const attr = Buffer.alloc(136);
    attr.writeUInt32LE(1, 0);
    attr.writeUInt32LE(136, 4);
    assert.throws(
      () => perfEventOpen(attr, 2 ** 22 + 12345, -1, -1, 0),
      (e: unknown) =>
        e instanceof SyscallError && e.code === 'ESRCH' && /perf_event_open: ESRCH/.test(e.message),
    );
  });
});
