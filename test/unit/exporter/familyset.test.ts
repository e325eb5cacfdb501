// FamilySet (duplicate series found in one sorted pass) and the streamed encoder, against the encoder and
// the per-sample duplicate check they replaced: byte-identical output for random families.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  encode,
  encodeChunks,
  escapeHelp,
  escapeLabelValue,
  formatFloat,
  type Labels,
  type MetricFamily,
  type MetricType,
  seriesKey,
} from '../../../src/common/exposition.js';
import { FamilySet } from '../../../src/exporter/collector.js';

/** The encoder before streaming (commit 8179a34), kept as the reference of the wire format. */
function referenceEncode(families: Iterable<MetricFamily>): string {
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const names = (l: Labels) => Object.keys(l).sort(cmp);
  const list = [...families].filter((f) => f.samples.length > 0).sort((a, b) => cmp(a.name, b.name));
  const out: string[] = [];
  for (const f of list) {
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`);
    const prepared = f.samples.map((sample) => ({ sample, names: names(sample.labels) }));
    if (f.type !== 'histogram' && f.type !== 'summary')
      prepared.sort((a, b) => {
        const n = Math.min(a.names.length, b.names.length);
        for (let i = 0; i < n; i++) {
          const an = a.names[i]!;
          const bn = b.names[i]!;
          if (an !== bn) return cmp(an, bn);
          const av = a.sample.labels[an]!;
          const bv = b.sample.labels[bn]!;
          if (av !== bv) return cmp(av, bv);
        }
        return a.names.length - b.names.length;
      });
    for (const p of prepared) {
      let line = p.sample.name ?? f.name;
      if (p.names.length > 0)
        line += `{${p.names.map((n) => `${n}="${escapeLabelValue(p.sample.labels[n]!)}"`).join(',')}}`;
      out.push(`${line} ${formatFloat(p.sample.value)}\n`);
    }
  }
  return out.join('');
}

/** The duplicate check before: a key per sample at emit time, the first kept. */
function referenceSet(emits: [string, MetricType, Labels, number][]): MetricFamily[] {
  const families = new Map<string, MetricFamily>();
  const keys = new Set<string>();
  for (const [name, type, labels, value] of emits) {
    let f = families.get(name);
    if (!f) {
      f = { name, type, help: `${name} help`, samples: [] };
      families.set(name, f);
    }
    const key = seriesKey(name, labels);
    if (keys.has(key)) continue;
    keys.add(key);
    f.samples.push({ labels, value });
  }
  return [...families.values()];
}

/** Deterministic pseudo-random numbers. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomEmits(seed: number, n: number): [string, MetricType, Labels, number][] {
  const r = rng(seed);
  const pick = <T>(a: readonly T[]) => a[Math.floor(r() * a.length)]!;
  const values = ['', 'a', 'ab', 'b', 'a\nb', 'q"x', 'back\\slash', 'Z', 'é', '10', '9'];
  const numbers = [
    0,
    -0,
    1,
    0.1,
    1e6,
    123456.5,
    2 ** 53 + 2,
    1.5e-7,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    -3,
  ];
  const shared: Labels[] = [];
  const out: [string, MetricType, Labels, number][] = [];
  for (let i = 0; i < n; i++) {
    let labels: Labels;
    if (shared.length > 0 && r() < 0.3) labels = pick(shared);
    else {
      const l: Record<string, string> = {};
      for (const k of ['uuid', 'hostname', 'a', 'device', 'mode']) if (r() < 0.6) l[k] = pick(values);
      labels = l;
      shared.push(labels);
    }
    out.push([pick(['m_total', 'm_b', 'x']), pick(['gauge', 'counter'] as const), labels, pick(numbers)]);
  }
  return out;
}

describe('FamilySet and the streamed encoder', () => {
  it('encode what the per-sample check and the old encoder gave, byte for byte (random families)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const emits = randomEmits(seed, 1 + (seed % 40));
      const set = new FamilySet();
      for (const [name, type, labels, value] of emits) set.emit(name, type, `${name} help`, labels, value);
      void set.duplicates;
      // types follow the first emit in both
      assert.equal(encode(set.families.values()), referenceEncode(referenceSet(emits)), `seed ${seed}`);
    }
  });

  it('keeps the first of repeated series, whatever the label order, and lists the others', () => {
    const set = new FamilySet();
    set.emit('m', 'gauge', 'h', { b: '2', a: '1' }, 1);
    set.emit('m', 'gauge', 'h', { a: '1', b: '2' }, 2);
    set.emit('m', 'gauge', 'h', { a: '1' }, 3);
    set.emit('m', 'gauge', 'h', { a: '1', b: '2' }, 4);
    assert.deepEqual(set.duplicates, ['m a=1 b=2', 'm a=1 b=2']);
    assert.equal(encode(set.families.values()), '# HELP m h\n# TYPE m gauge\nm{a="1"} 3\nm{a="1",b="2"} 1\n');
    // checked once: reading again reports the same and keeps the samples
    assert.deepEqual(set.duplicates, ['m a=1 b=2', 'm a=1 b=2']);
    set.emit('m', 'gauge', 'h', { a: '1' }, 5);
    assert.equal(set.duplicates.length, 3);
  });

  it('merge keeps the first set’s series over a later set’s', () => {
    const a = new FamilySet();
    const b = new FamilySet();
    a.emit('m', 'gauge', 'h', { x: '1' }, 1);
    b.emit('m', 'gauge', 'other help', { x: '1' }, 2);
    b.emit('m', 'gauge', 'other help', { x: '2' }, 3);
    b.emit('n', 'counter', 'n', {}, 4);
    a.merge(b);
    assert.deepEqual(a.duplicates, ['m x=1']);
    assert.equal(
      encode(a.families.values()),
      '# HELP m h\n# TYPE m gauge\nm{x="1"} 1\nm{x="2"} 3\n# HELP n n\n# TYPE n counter\nn 4\n',
    );
  });

  it('histogram parts keep their order; repeated parts are dropped', () => {
    const set = new FamilySet();
    for (const le of ['1', '+Inf', '1']) set.emit('h', 'histogram', 'h', { le }, 1);
    assert.deepEqual(set.duplicates, ['h le=1']);
    assert.deepEqual(
      set.families.get('h')!.samples.map((s) => s.labels.le),
      ['1', '+Inf'],
    );
  });

  it('sorts a family again when it got samples after its duplicate check (the check marks it as sorted)', () => {
    const set = new FamilySet();
    set.emit('m', 'gauge', 'h', { a: '3' }, 1);
    set.emit('m', 'gauge', 'h', { a: '2' }, 2);
    assert.deepEqual(set.duplicates, []);
    const sorted = '# HELP m h\n# TYPE m gauge\nm{a="2"} 2\nm{a="3"} 1\n';
    assert.equal(encode(set.families.values()), sorted);
    set.families.get('m')!.samples.push({ labels: { a: '1' }, value: 3 });
    assert.equal(encode(set.families.values()), sorted.replace('m{a="2"}', 'm{a="1"} 3\nm{a="2"}'));
  });

  it('streams large expositions in pieces that join to the whole', () => {
    const samples = Array.from({ length: 5000 }, (_, i) => ({ labels: { uuid: String(i) }, value: i }));
    const families: MetricFamily[] = [{ name: 'big', type: 'gauge', help: 'b', samples }];
    const chunks = [...encodeChunks(families)];
    assert.ok(chunks.length > 1, `${chunks.length} chunk(s)`);
    assert.ok(chunks.every((c) => c.length < 70 * 1024));
    assert.equal(Buffer.concat(chunks).toString(), referenceEncode(families));
  });
});
