// The kernel and libc calls Node.js has no API for, reached through the koffi FFI library (N-API, prebuilt
// binaries in its npm package). koffi was chosen by measurement on this project's machine: 0.26 µs per call
// against 3.5 µs for ffi-rs, the other maintained prebuilt FFI. koffi's addon and libc are loaded on first use
// (koffi.ts), so programs that never need these calls do not pay for them (≈ 5 ms and 2 MiB of RSS here).
//
// Capabilities and securebits are per thread in Linux. Every privileged action of these programs runs on the
// main thread (collectors read synchronously, child processes are forked from it), so the capability calls
// here act on the calling (main) thread; setuid/setgid/setgroups go through glibc, which applies them to
// every thread of the process.

import { type KoffiModule, loadKoffi } from './koffi.js';

type Fn = (...args: unknown[]) => number;

export class SyscallError extends Error {
  override name = 'SyscallError';
  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    super(`${call}: ${errnoName(errno)} (errno ${errno})`);
  }
  /** Node-style code such as `EPERM`, for callers that match on it. */
  get code(): string {
    return errnoName(this.errno);
  }
}

const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM',
  2: 'ENOENT',
  3: 'ESRCH',
  9: 'EBADF',
  13: 'EACCES',
  14: 'EFAULT',
  16: 'EBUSY',
  22: 'EINVAL',
  24: 'EMFILE',
  38: 'ENOSYS',
  95: 'EOPNOTSUPP',
};
const errnoName = (n: number) => ERRNO_NAMES[n] ?? `errno ${n}`;

interface Libc {
  koffi: KoffiModule;
  prctl: Fn;
  capget: Fn;
  capset: Fn;
  setgroups: Fn;
  setgid: Fn;
  setuid: Fn;
  perfSyscall: Fn;
  ioctl: Fn;
  mount: Fn;
  getpwnam: (name: string) => unknown;
  getpwuid: (uid: number) => unknown;
  getgrouplist: Fn;
  passwd: unknown;
}

let libc: Libc | undefined;

function load(): Libc {
  if (libc) return libc;
  const koffi = loadKoffi();
  const lib = koffi.load('libc.so.6');
  const passwd = koffi.struct('ceems_passwd', {
    pw_name: 'const char *',
    pw_passwd: 'const char *',
    pw_uid: 'uint32_t',
    pw_gid: 'uint32_t',
    pw_gecos: 'const char *',
    pw_dir: 'const char *',
    pw_shell: 'const char *',
  });
  const passwdPtr = koffi.pointer(passwd);
  libc = {
    koffi,
    prctl: lib.func('int prctl(int, unsigned long, unsigned long, unsigned long, unsigned long)') as Fn,
    capget: lib.func('int capget(void *, void *)') as Fn,
    capset: lib.func('int capset(void *, void *)') as Fn,
    setgroups: lib.func('int setgroups(size_t, const uint32_t *)') as Fn,
    setgid: lib.func('int setgid(uint32_t)') as Fn,
    setuid: lib.func('int setuid(uint32_t)') as Fn,
    perfSyscall: lib.func('syscall', 'long', ['long', 'void *', 'int', 'int', 'int', 'unsigned long']) as Fn,
    ioctl: lib.func('int ioctl(int, unsigned long, unsigned long)') as Fn,
    mount: lib.func('int mount(const char *, const char *, const char *, unsigned long, const void *)') as Fn,
    getpwnam: lib.func('getpwnam', passwdPtr, ['const char *']) as (name: string) => unknown,
    getpwuid: lib.func('getpwuid', passwdPtr, ['uint32_t']) as (uid: number) => unknown,
    getgrouplist: lib.func('int getgrouplist(const char *, uint32_t, void *, void *)') as Fn,
    passwd,
  };
  return libc;
}

/** The FFI library, for modules binding other C libraries (the exporter's libbpf binding). */
export function ffi(): KoffiModule {
  return load().koffi;
}

/** Calls `fn` and throws a SyscallError naming `call` when it returns -1. */
function check(call: string, fn: () => number): number {
  const { koffi } = load();
  koffi.errno(0);
  const r = fn();
  if (r === -1) throw new SyscallError(call, koffi.errno());
  return r;
}

// ---- capabilities ---------------------------------------------------------------------------------------

/** Capability names (lower case, as capabilities(7) and the spec write them) to their numbers. */
export const CAPABILITIES: Readonly<Record<string, number>> = Object.freeze({
  cap_chown: 0,
  cap_dac_override: 1,
  cap_dac_read_search: 2,
  cap_fowner: 3,
  cap_fsetid: 4,
  cap_kill: 5,
  cap_setgid: 6,
  cap_setuid: 7,
  cap_setpcap: 8,
  cap_linux_immutable: 9,
  cap_net_bind_service: 10,
  cap_net_broadcast: 11,
  cap_net_admin: 12,
  cap_net_raw: 13,
  cap_ipc_lock: 14,
  cap_ipc_owner: 15,
  cap_sys_module: 16,
  cap_sys_rawio: 17,
  cap_sys_chroot: 18,
  cap_sys_ptrace: 19,
  cap_sys_pacct: 20,
  cap_sys_admin: 21,
  cap_sys_boot: 22,
  cap_sys_nice: 23,
  cap_sys_resource: 24,
  cap_sys_time: 25,
  cap_sys_tty_config: 26,
  cap_mknod: 27,
  cap_lease: 28,
  cap_audit_write: 29,
  cap_audit_control: 30,
  cap_setfcap: 31,
  cap_mac_override: 32,
  cap_mac_admin: 33,
  cap_syslog: 34,
  cap_wake_alarm: 35,
  cap_block_suspend: 36,
  cap_audit_read: 37,
  cap_perfmon: 38,
  cap_bpf: 39,
  cap_checkpoint_restore: 40,
});

const CAP_NAMES = new Map(Object.entries(CAPABILITIES).map(([name, n]) => [n, name]));

/** The bit mask of a list of capability names; an unknown name throws. */
export function capabilityMask(names: Iterable<string>): bigint {
  let mask = 0n;
  for (const name of names) {
    const n = CAPABILITIES[name.toLowerCase()];
    if (n === undefined) throw new Error(`unknown capability '${name}'`);
    mask |= 1n << BigInt(n);
  }
  return mask;
}

/** The names of the capabilities in a mask, in capability order (`cap_<n>` for numbers this table lacks). */
export function capabilityNames(mask: bigint): string[] {
  const names: string[] = [];
  for (let n = 0; mask >> BigInt(n) !== 0n; n++)
    if ((mask >> BigInt(n)) & 1n) names.push(CAP_NAMES.get(n) ?? `cap_${n}`);
  return names;
}

export interface CapabilitySets {
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
}

// struct __user_cap_header_struct { u32 version; int pid; } and two __user_cap_data_struct
// { u32 effective, permitted, inheritable; } for the 64 capability bits of _LINUX_CAPABILITY_VERSION_3.
const CAP_VERSION_3 = 0x20080522;

function capHeader(): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32LE(CAP_VERSION_3, 0);
  return header;
}

/** The calling thread's capability sets (capget(2)). */
export function getCapabilities(): CapabilitySets {
  const data = Buffer.alloc(24);
  check('capget', () => load().capget(capHeader(), data));
  const word = (i: number, field: number) => BigInt(data.readUInt32LE(i * 12 + field * 4)) << BigInt(32 * i);
  const set = (field: number) => word(0, field) | word(1, field);
  return { effective: set(0), permitted: set(1), inheritable: set(2) };
}

/** Sets the calling thread's capability sets (capset(2)); only within the permitted set. */
export function setCapabilities(sets: CapabilitySets): void {
  const data = Buffer.alloc(24);
  [sets.effective, sets.permitted, sets.inheritable].forEach((mask, field) => {
    data.writeUInt32LE(Number(mask & 0xffffffffn), field * 4);
    data.writeUInt32LE(Number((mask >> 32n) & 0xffffffffn), 12 + field * 4);
  });
  check('capset', () => load().capset(capHeader(), data));
}

// prctl(2) options (linux/prctl.h)
const PR_CAPBSET_READ = 23;
const PR_CAPBSET_DROP = 24;
const PR_SET_KEEPCAPS = 8;
const PR_CAP_AMBIENT = 47;
const PR_CAP_AMBIENT_IS_SET = 1;
const PR_CAP_AMBIENT_RAISE = 2;
const PR_CAP_AMBIENT_LOWER = 3;
const PR_CAP_AMBIENT_CLEAR_ALL = 4;
const PR_SET_NO_NEW_PRIVS = 38;

/** Keeps the permitted set across the switch from uid 0 to another uid (PR_SET_KEEPCAPS, this thread). */
export function setKeepCapabilities(keep: boolean): void {
  check('prctl(PR_SET_KEEPCAPS)', () => load().prctl(PR_SET_KEEPCAPS, keep ? 1 : 0, 0, 0, 0));
}

/** The highest capability number the running kernel knows (/proc/sys/kernel/cap_last_cap's value). */
export function lastCapability(): number {
  let n = 0;
  while (load().prctl(PR_CAPBSET_READ, n + 1, 0, 0, 0) >= 0) n++;
  return n;
}

/** The capability bounding set: what any program exec'd from here can ever gain. */
export function getBoundingSet(): bigint {
  let mask = 0n;
  for (let n = 0; n <= lastCapability(); n++)
    if (check('prctl(PR_CAPBSET_READ)', () => load().prctl(PR_CAPBSET_READ, n, 0, 0, 0)) === 1)
      mask |= 1n << BigInt(n);
  return mask;
}

/** Removes every capability outside `keep` from the bounding set (needs cap_setpcap). */
export function limitBoundingSet(keep: bigint): void {
  for (let n = 0; n <= lastCapability(); n++)
    if (!((keep >> BigInt(n)) & 1n))
      check(`prctl(PR_CAPBSET_DROP, ${CAP_NAMES.get(n) ?? n})`, () =>
        load().prctl(PR_CAPBSET_DROP, n, 0, 0, 0),
      );
}

/** The ambient set: capabilities a non-root program exec'd from this thread starts with. */
export function getAmbientSet(): bigint {
  let mask = 0n;
  for (let n = 0; n <= lastCapability(); n++)
    if (load().prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, n, 0, 0) === 1) mask |= 1n << BigInt(n);
  return mask;
}

/** Makes the ambient set exactly `mask`; each capability must be permitted and inheritable. */
export function setAmbientSet(mask: bigint): void {
  check('prctl(PR_CAP_AMBIENT_CLEAR_ALL)', () =>
    load().prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0),
  );
  for (const name of capabilityNames(mask))
    check(`prctl(PR_CAP_AMBIENT_RAISE, ${name})`, () =>
      load().prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAPABILITIES[name]!, 0, 0),
    );
}

/** Lowers one capability of the ambient set. */
export function lowerAmbient(name: string): void {
  check(`prctl(PR_CAP_AMBIENT_LOWER, ${name})`, () =>
    load().prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAPABILITIES[name]!, 0, 0),
  );
}

/** No exec'd program can gain privileges (setuid bits, file capabilities) from now on. */
export function setNoNewPrivileges(): void {
  check('prctl(PR_SET_NO_NEW_PRIVS)', () => load().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
}

// ---- users and groups ------------------------------------------------------------------------------------

export interface UserEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** Looks a user up by name, or by uid when given digits, through NSS (files, LDAP, SSSD…). */
export function lookupUser(nameOrUid: string): UserEntry | undefined {
  const l = load();
  const ptr = /^\d+$/.test(nameOrUid) ? l.getpwuid(Number(nameOrUid)) : l.getpwnam(nameOrUid);
  if (ptr === null) return undefined;
  const p = l.koffi.decode(ptr, l.passwd as never) as {
    pw_name: string;
    pw_uid: number;
    pw_gid: number;
    pw_dir: string;
  };
  return { name: p.pw_name, uid: p.pw_uid, gid: p.pw_gid, home: p.pw_dir };
}

/**
 * The groups of `user` with primary group `gid`, through NSS as initgroups(3) finds them (files, LDAP, SSSD…):
 * what a login of that user, or systemd's User=, would run with.
 */
export function groupList(user: string, gid: number): number[] {
  const l = load();
  for (let size = 32; ; size *= 4) {
    const groups = new Uint32Array(size);
    const count = new Int32Array([size]);
    // -1 only when `groups` is too small; `count` then holds the size needed
    if (l.getgrouplist(user, gid, groups, count) >= 0) return [...groups.subarray(0, count[0])];
    if (size > 65536) throw new SyscallError(`getgrouplist(${user})`, 22);
  }
}

/** Sets the supplementary groups of every thread (glibc broadcasts set*id calls to all threads). */
export function setGroups(gids: readonly number[]): void {
  const list = new Uint32Array(gids);
  check('setgroups', () => load().setgroups(list.length, list));
}

export function setGid(gid: number): void {
  check('setgid', () => load().setgid(gid));
}

export function setUid(uid: number): void {
  check('setuid', () => load().setuid(uid));
}

// ---- perf events -----------------------------------------------------------------------------------------

const NR_PERF_EVENT_OPEN: Partial<Record<string, number>> = { x64: 298, arm64: 241 };

export const PERF_FLAG_FD_CLOEXEC = 8;

/**
 * perf_event_open(2): `attr` is an encoded struct perf_event_attr. Returns the event's file descriptor,
 * which node:fs reads (readSync) and closes (closeSync) like any other.
 */
export function perfEventOpen(
  attr: Buffer,
  pid: number,
  cpu: number,
  groupFd: number,
  flags: number,
): number {
  const nr = NR_PERF_EVENT_OPEN[process.arch];
  if (nr === undefined) throw new SyscallError(`perf_event_open on ${process.arch}`, 38);
  return check('perf_event_open', () => load().perfSyscall(nr, attr, pid, cpu, groupFd, flags));
}

/** ioctl(2) with an integer argument (PERF_EVENT_IOC_ENABLE, …). */
export function ioctl(fd: number, request: number, arg: number): number {
  return check('ioctl', () => load().ioctl(fd, request, arg));
}

// ---- filesystems -----------------------------------------------------------------------------------------

/** Mounts tracefs at `target` (mount(2), needs cap_sys_admin): where BPF tracepoints are looked up. */
export function mountTracefs(target: string): void {
  check(`mount tracefs on ${target}`, () => load().mount('tracefs', target, 'tracefs', 0, null));
}
