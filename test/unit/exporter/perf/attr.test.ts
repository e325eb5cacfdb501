// struct perf_event_attr and read_format records against bytes computed by hand from
// include/uapi/linux/perf_event.h, with the attribute bits the original's library (hodgesds/perf-utils)
// sets: disabled | inherit | exclude_hv, sample_type PERF_SAMPLE_IDENTIFIER, read_format both times.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  cacheConfig,
  countingAttr,
  decodeGroup,
  decodeSingle,
  encodeAttr,
  PERF_ATTR_SIZE,
  READ_FORMAT,
} from '../../../../src/exporter/perf/attr.js';
import { CounterPlan } from '../../../../src/exporter/perf/counters.js';
import { PERF_EVENTS } from '../../../../src/exporter/perf/events.js';

const event = (name: string) => PERF_EVENTS.find((e) => e.name === name)!;

/** The first 48 bytes (type … bit-fields) as hex; everything after them must be zero. */
function head(b: Buffer): string {
  assert.equal(b.length, 136);
  assert.ok(
    b.subarray(48).every((x) => x === 0),
    'bytes 48..135 are zero',
  );
  return b
    .subarray(0, 48)
    .toString('hex')
    .replace(/(.{16})/g, '$1 ')
    .trim();
}

// type(u32) size(u32) | config | sample_period | sample_type | read_format | bits
const SIZE_136 = '88000000';
const IDENTIFIER = '0000010000000000'; // 1 << 16
const BITS = '4300000000000000'; // disabled (bit 0) | inherit (bit 1) | exclude_hv (bit 6) = 0x43

describe('perf_event_attr encoding', () => {
  it('is 136 bytes (PERF_ATTR_SIZE_VER8, the size of golang.org/x/sys PerfEventAttr)', () => {
    assert.equal(PERF_ATTR_SIZE, 136);
  });

  it('hardware CpuCycles: type 0, config 0, read_format enabled|running', () => {
    const e = event('CpuCycles');
    assert.equal(
      head(encodeAttr(countingAttr(e.type, e.config, 3))),
      `00000000${SIZE_136} 0000000000000000 0000000000000000 ${IDENTIFIER} 0300000000000000 ${BITS}`,
    );
  });

  it('hardware RefCpuCycles: config 9', () => {
    const e = event('RefCpuCycles');
    assert.equal(
      head(encodeAttr(countingAttr(e.type, e.config, 3))),
      `00000000${SIZE_136} 0900000000000000 0000000000000000 ${IDENTIFIER} 0300000000000000 ${BITS}`,
    );
  });

  it('software MinorFault as a group member: type 1, config 5, read_format enabled|running|group', () => {
    const e = event('MinorFault');
    const rf = READ_FORMAT.TOTAL_TIME_ENABLED | READ_FORMAT.TOTAL_TIME_RUNNING | READ_FORMAT.GROUP;
    assert.equal(rf, 0x0b);
    assert.equal(
      head(encodeAttr(countingAttr(e.type, e.config, rf))),
      `01000000${SIZE_136} 0500000000000000 0000000000000000 ${IDENTIFIER} 0b00000000000000 ${BITS}`,
    );
  });

  it('cache config = id | (op << 8) | (result << 16)', () => {
    // LL (2), read (0), miss (1) = 0x10002; L1D (0), write (1), access (0) = 0x100; BPU (5) read miss
    assert.equal(cacheConfig(2, 0, 1), 0x10002);
    assert.equal(cacheConfig(0, 1, 0), 0x100);
    assert.equal(cacheConfig(5, 0, 1), 0x10005);
    const configs = Object.fromEntries(
      PERF_EVENTS.filter((e) => e.kind === 'cache').map((e) => [e.name, e.config]),
    );
    assert.deepEqual(configs, {
      L1DataReadHit: 0x00000,
      L1DataReadMiss: 0x10000,
      L1DataWriteHit: 0x00100,
      L1InstrReadMiss: 0x10001,
      InstrTLBReadHit: 0x00004,
      InstrTLBReadMiss: 0x10004,
      LLReadHit: 0x00002,
      LLReadMiss: 0x10002,
      LLWriteHit: 0x00102,
      LLWriteMiss: 0x10102,
      BPUReadHit: 0x00005,
      BPUReadMiss: 0x10005,
    });
  });

  it('cache LLWriteMiss: type 3, config 0x10102', () => {
    const e = event('LLWriteMiss');
    assert.equal(
      head(encodeAttr(countingAttr(e.type, e.config, 3))),
      `03000000${SIZE_136} 0201010000000000 0000000000000000 ${IDENTIFIER} 0300000000000000 ${BITS}`,
    );
  });

  it('a plan groups the software events first (read together) and reads the others alone', () => {
    const plan = new CounterPlan([
      event('CpuCycles'),
      event('PageFault'),
      event('L1DataReadHit'),
      event('ContextSwitch'),
    ]);
    assert.deepEqual(
      plan.events.map((e) => e.name),
      ['PageFault', 'ContextSwitch', 'CpuCycles', 'L1DataReadHit'],
    );
    assert.equal(plan.groupSize, 2);
    assert.deepEqual(
      plan.attrs.map((a) => a.readUInt32LE(32)),
      [0x0b, 0x0b, 0x03, 0x03],
    );
  });
});

describe('read_format records', () => {
  it('decodes { value, time_enabled, time_running }, 64-bit values across the 32-bit halves', () => {
    const b = Buffer.from(
      '0500000000010000' + // value 2^40 + 5
        'e803000000000000' + // enabled 1000
        'f401000000000000', // running 500
      'hex',
    );
    assert.deepEqual(decodeSingle(b), { value: 2 ** 40 + 5, enabled: 1000, running: 500 });
  });

  it('decodes a group { nr, time_enabled, time_running, values[nr] } into readings sharing the times', () => {
    const b = Buffer.from(
      '0200000000000000' + // nr 2
        '1027000000000000' + // enabled 10000
        '1027000000000000' + // running 10000
        '2a00000000000000' + // 42
        '0000000001000000', // 2^32
      'hex',
    );
    assert.deepEqual(decodeGroup(b, 2), [
      { value: 42, enabled: 10000, running: 10000 },
      { value: 2 ** 32, enabled: 10000, running: 10000 },
    ]);
    assert.throws(() => decodeGroup(b, 3), /2 values, expected 3/);
  });
});
