// The two kernel structures of perf counting (perf_event_open(2), include/uapi/linux/perf_event.h):
// struct perf_event_attr, encoded for the system call, and the read_format records read(2) returns.
// Little-endian only: the exporter runs on x86-64 and arm64 Linux.

export const PERF_TYPE = { HARDWARE: 0, SOFTWARE: 1, HW_CACHE: 3 } as const;

/** read_format bits. */
export const READ_FORMAT = { TOTAL_TIME_ENABLED: 1, TOTAL_TIME_RUNNING: 2, ID: 4, GROUP: 8 } as const;

/** Bits of the attr bit-field word (offset 40): bit positions of the C bit-fields, in declaration order. */
export const ATTR_BIT = {
  DISABLED: 1 << 0,
  INHERIT: 1 << 1,
  PINNED: 1 << 2,
  EXCLUSIVE: 1 << 3,
  EXCLUDE_USER: 1 << 4,
  EXCLUDE_KERNEL: 1 << 5,
  EXCLUDE_HV: 1 << 6,
} as const;

/** sample_type bit the original's library (hodgesds/perf-utils) sets; counting events never sample. */
export const PERF_SAMPLE_IDENTIFIER = 1 << 16;

/**
 * PERF_ATTR_SIZE_VER8 (Linux 6.3, config3): what golang.org/x/sys/unix's PerfEventAttr measures, so the
 * original passes this size. Older kernels accept a larger struct whose extra bytes are zero.
 */
export const PERF_ATTR_SIZE = 136;

/** perf_event_open flags and ioctl requests. */
export const PERF_FLAG_PID_CGROUP = 1 << 2;
export const PERF_EVENT_IOC_ENABLE = 0x2400; // _IO('$', 0)
export const PERF_EVENT_IOC_DISABLE = 0x2401; // _IO('$', 1)
export const PERF_IOC_FLAG_GROUP = 1;

export interface EventAttr {
  readonly type: number;
  readonly config: number;
  readonly readFormat: number;
  /** ATTR_BIT values or-ed together. */
  readonly bits: number;
  readonly sampleType?: number;
}

/** config of a PERF_TYPE_HW_CACHE event: cache id | (operation << 8) | (result << 16). */
export function cacheConfig(id: number, op: number, result: number): number {
  return id | (op << 8) | (result << 16);
}

/**
 * The attributes of one counting event as the original opens them: counting starts disabled (enabled by
 * ioctl once the set is complete), children forked later are counted too (inherit), hypervisor excluded.
 */
export function countingAttr(type: number, config: number, readFormat: number): EventAttr {
  return {
    type,
    config,
    readFormat,
    bits: ATTR_BIT.DISABLED | ATTR_BIT.INHERIT | ATTR_BIT.EXCLUDE_HV,
    sampleType: PERF_SAMPLE_IDENTIFIER,
  };
}

/**
 * struct perf_event_attr: type u32 @0, size u32 @4, config u64 @8, sample_period u64 @16, sample_type u64
 * @24, read_format u64 @32, bit-fields u64 @40, the rest zero.
 */
export function encodeAttr(a: EventAttr): Buffer {
  const b = Buffer.alloc(PERF_ATTR_SIZE);
  b.writeUInt32LE(a.type, 0);
  b.writeUInt32LE(PERF_ATTR_SIZE, 4);
  b.writeBigUInt64LE(BigInt(a.config), 8);
  b.writeBigUInt64LE(BigInt(a.sampleType ?? 0), 24);
  b.writeBigUInt64LE(BigInt(a.readFormat), 32);
  b.writeBigUInt64LE(BigInt(a.bits), 40);
  return b;
}

/** A counter value with the times it was enabled and actually counting (ns), as one read returns them. */
export interface Reading {
  value: number;
  enabled: number;
  running: number;
}

export const ZERO_READING: Readonly<Reading> = Object.freeze({ value: 0, enabled: 0, running: 0 });

/** u64 as a Number without a BigInt: exact up to 2^53, far beyond what a counter of a job reaches. */
export function u64(b: Buffer, offset: number): number {
  return b.readUInt32LE(offset + 4) * 0x1_0000_0000 + b.readUInt32LE(offset);
}

/** Bytes of a single-event read with TOTAL_TIME_ENABLED | TOTAL_TIME_RUNNING: value, enabled, running. */
export const SINGLE_READ_BYTES = 24;

/** Bytes of a PERF_FORMAT_GROUP read of `n` events with both times: nr, enabled, running, n values. */
export const groupReadBytes = (n: number) => 24 + 8 * n;

/** Decodes `{ value, time_enabled, time_running }`. */
export function decodeSingle(b: Buffer): Reading {
  return { value: u64(b, 0), enabled: u64(b, 8), running: u64(b, 16) };
}

/**
 * Decodes `{ nr, time_enabled, time_running, values[nr] }` into one Reading per member (they share the
 * group's times). Throws when nr is not the expected member count.
 */
export function decodeGroup(b: Buffer, n: number): Reading[] {
  const nr = u64(b, 0);
  if (nr !== n) throw new Error(`perf group read: ${nr} values, expected ${n}`);
  const enabled = u64(b, 8);
  const running = u64(b, 16);
  const out: Reading[] = [];
  for (let i = 0; i < n; i++) out.push({ value: u64(b, 24 + 8 * i), enabled, running });
  return out;
}
