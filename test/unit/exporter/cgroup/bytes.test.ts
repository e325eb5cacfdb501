// The byte-level fast paths of the cgroup parsers give what the string parsers give, or step aside
// (undefined/NaN) so that the string parser decides: checked on the usual file forms and on random
// near-misses (signs, blanks, long numbers, repeated keys, non-ASCII bytes).

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  countCpuList,
  cpuListCount,
  flatKey,
  flatValue,
  parseFlatKeyed,
  parsePids,
  parsePsiFullTotal,
  pidsInto,
  plainInt,
  psiFullTotal,
} from '../../../../src/exporter/cgroup/parse.js';
import { readUnitStats } from '../../../../src/exporter/cgroup/stats.js';

/** `text` in a buffer with stale bytes after it, as the reader's reused buffer has. */
function bytes(text: string): [Buffer, number] {
  const b = Buffer.from(text);
  const buf = Buffer.alloc(b.length + 32, '\nfull total=99 anon 7\n');
  b.copy(buf);
  return [buf, b.length];
}

function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
}

const PIECES = [
  '0',
  '7',
  '12',
  '007',
  '123456789012345',
  '1234567890123456',
  '18446744073709551615',
  '-3',
  '+4',
  '1.5',
  '1e3',
  ' ',
  '\t',
  '\r',
  'max',
  'x',
  'é',
  '\u00a0',
  '',
];

function randomText(r: () => number, parts: string[], n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += parts[Math.floor(r() * parts.length)];
  return s;
}

describe('cgroup byte parsers', () => {
  it('plainInt is Number(text.trim()) on plain integers, NaN otherwise', () => {
    const r = rng(7);
    for (let i = 0; i < 20000; i++) {
      const text = randomText(r, PIECES, 1 + Math.floor(r() * 4));
      const [buf, len] = bytes(text);
      const v = plainInt(buf, 0, len);
      if (!Number.isNaN(v)) assert.equal(v, Number(text.trim()), JSON.stringify(text));
    }
    const [b, l] = bytes(' 4111222333\n');
    assert.equal(plainInt(b, 0, l), 4111222333);
  });

  it('flatValue is parseFlatKeyed(text).get(key) or steps aside', () => {
    const r = rng(11);
    const keys = ['anon', 'file', 'anon_thp', 'oom', 'oom_kill', ' anon', 'anon\t'];
    const values = ['1', '22', ' 3', '4 ', 'x', '5\r', '-6', '123456789012345678', '7 8'];
    const key = flatKey('anon');
    for (let i = 0; i < 20000; i++) {
      const lines: string[] = [];
      for (let k = Math.floor(r() * 6); k > 0; k--)
        lines.push(`${keys[Math.floor(r() * keys.length)]} ${values[Math.floor(r() * values.length)]}`);
      const text = lines.join('\n') + (r() < 0.5 ? '\n' : '');
      const want = parseFlatKeyed(text).get('anon');
      const got = flatValue(...bytes(text), key);
      if (got === undefined) assert.equal(want, undefined, JSON.stringify(text));
      else if (!Number.isNaN(got)) assert.equal(got, want, JSON.stringify(text));
    }
    // the usual forms take the fast path
    assert.equal(flatValue(...bytes('anon 3000000000\nanon_thp 0\nfile 1\n'), key), 3000000000);
    assert.equal(flatValue(...bytes('file 1\nanon 5'), key), 5);
  });

  it('cpuListCount is countCpuList on plain lists and steps aside otherwise', () => {
    const r = rng(13);
    const parts = ['0', '3', '12', '-', ',', ' ', '\n', '7-4', '999999999999'];
    for (let i = 0; i < 20000; i++) {
      const text = randomText(r, parts, Math.floor(r() * 6));
      const got = cpuListCount(...bytes(text));
      if (got === undefined) continue;
      assert.equal(got, countCpuList(text), JSON.stringify(text));
    }
    assert.equal(cpuListCount(...bytes('0-3,8\n')), 5);
  });

  it('psiFullTotal is parsePsiFullTotal or steps aside', () => {
    const r = rng(17);
    const parts = [
      'some avg10=0.00 total=25\n',
      'full avg10=0.00 avg60=0.00 avg300=0.00 total=1500000\n',
      'full total=',
      'full xtotal=5 total=6\n',
      'full  total=77',
      '\n',
      'total=3\n',
      'full avg10=1\n',
      '9999999999999999',
    ];
    for (let i = 0; i < 20000; i++) {
      const text = randomText(r, parts, Math.floor(r() * 4));
      const got = psiFullTotal(...bytes(text));
      if (got === undefined) continue;
      assert.equal(got, parsePsiFullTotal(text), JSON.stringify(text));
    }
    assert.equal(psiFullTotal(...bytes(parts[0]! + parts[1]!)), 1.5);
    assert.equal(psiFullTotal(...bytes(parts[0]!)), 0);
  });

  it('pidsInto is parsePids on plain lists and adds nothing otherwise', () => {
    const r = rng(19);
    const parts = ['1', '42', '\n', ' ', '0', '-1', 'x', '1.5', '\r\n'];
    for (let i = 0; i < 20000; i++) {
      const text = randomText(r, parts, Math.floor(r() * 8));
      const out = [9];
      if (pidsInto(...bytes(text), out))
        assert.deepEqual(out.slice(1), parsePids(text), JSON.stringify(text));
      else assert.deepEqual(out, [9]);
    }
  });
});

describe('optional unit files between scrapes', () => {
  it('reads a file that was missing once it appears, and misses it again without an error', () => {
    const root = mkdtempSync(join(tmpdir(), 'ceems-stats-'));
    try {
      const dir = join(root, 'job_1');
      mkdirSync(dir);
      writeFileSync(join(dir, 'cpu.stat'), 'user_usec 2000000\nsystem_usec 1000000\n');
      const layout = { version: 'v2', cgroupfs: root } as Parameters<typeof readUnitStats>[0];
      const unit = { rel: '/job_1', children: [], hints: { absent: 0 } };
      const o = {
        cpuCount: 'cpuset',
        swap: true,
        psi: true,
        blkio: false,
        memTotal: 8,
        swapTotal: 4,
      } as const;
      assert.equal(readUnitStats(layout, unit, o).rdma.size, 0);
      assert.notEqual(unit.hints.absent, 0, 'missing files remembered');
      writeFileSync(join(dir, 'rdma.current'), 'mlx5_0 hca_handle=2 hca_object=2000\n');
      writeFileSync(join(dir, 'memory.swap.max'), 'max\n');
      const s = readUnitStats(layout, unit, o);
      assert.deepEqual(s.rdma.get('mlx5_0'), { handles: 2, objects: 2000 });
      assert.equal(s.swapTotal, 4);
      assert.equal(s.cpuUser, 2);
      rmSync(join(dir, 'rdma.current'));
      assert.equal(readUnitStats(layout, unit, o).rdma.size, 0);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
