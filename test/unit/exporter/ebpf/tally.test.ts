// Per-unit sums of a BPF map's counters across the unit's cgroups, and the map's keys kept bounded: counters
// of a unit never go down when one of its cgroups goes, keys of ended units and of cgroups no unit owns go.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Entry, UnitTally } from '../../../../src/exporter/ebpf/tally.js';

const entry = (cgroup: number, series: string | undefined, ...values: number[]): Entry => {
  const key = Buffer.alloc(8);
  key.writeBigUInt64LE(BigInt(cgroup));
  return { cgroup: BigInt(cgroup), series, values, key: Buffer.concat([key, Buffer.from(series ?? '-')]) };
};
const owners = (pairs: [number, string][]) => new Map(pairs.map(([c, u]) => [BigInt(c), u]));

/** Runs one scrape; returns the totals as plain objects and the cgroups of the deleted keys. */
function scrape(tally: UnitTally, entries: Entry[], own: Map<bigint, string>) {
  const removed: number[] = [];
  const totals = tally.update(entries, own, (key) => removed.push(Number(key.readBigUInt64LE(0))));
  const plain = Object.fromEntries([...totals].map(([u, s]) => [u, Object.fromEntries(s)]));
  return { totals: plain, removed };
}

describe('UnitTally', () => {
  it('sums the cgroups of a unit per series; unexported series are left out', () => {
    const t = new UnitTally();
    const r = scrape(
      t,
      [entry(10, '/', 1, 2), entry(11, '/', 10, 20), entry(11, '/scratch', 5, 5), entry(12, undefined, 7, 7)],
      owners([
        [10, 'job1'],
        [11, 'job1'],
        [12, 'job1'],
      ]),
    );
    assert.deepEqual(r.totals, { job1: { '/': [11, 22], '/scratch': [5, 5] } });
    assert.deepEqual(r.removed, []);
  });

  it('keeps the counts of a cgroup that ended while its unit runs, and deletes its key', () => {
    const t = new UnitTally();
    const both = owners([
      [10, 'job1'],
      [11, 'job1'],
    ]);
    scrape(t, [entry(10, '/', 1), entry(11, '/', 100)], both);
    // step 11 ended: its directory is gone, its key still holds its last counts
    const r = scrape(t, [entry(10, '/', 2), entry(11, '/', 100)], owners([[10, 'job1']]));
    assert.deepEqual(r.totals, { job1: { '/': [102] } });
    assert.deepEqual(r.removed, [11]);
    const later = scrape(t, [entry(10, '/', 3)], owners([[10, 'job1']]));
    assert.deepEqual(later.totals, { job1: { '/': [103] } }, 'never goes down');
  });

  it('deletes the keys of ended units and forgets what it kept for them', () => {
    const t = new UnitTally();
    scrape(
      t,
      [entry(10, '/', 1), entry(11, '/', 5)],
      owners([
        [10, 'job1'],
        [11, 'job1'],
      ]),
    );
    scrape(t, [entry(10, '/', 1), entry(11, '/', 5)], owners([[10, 'job1']]));
    const r = scrape(t, [entry(10, '/', 1)], new Map());
    assert.deepEqual(r.totals, {});
    assert.deepEqual(r.removed, [10]);
    // the same uuid again (a requeued job) starts from what its new cgroups count
    const again = scrape(t, [entry(20, '/', 4)], owners([[20, 'job1']]));
    assert.deepEqual(again.totals, { job1: { '/': [4] } });
  });

  it('deletes a key no unit owns only when it was unowned at the previous scrape too', () => {
    const t = new UnitTally();
    // cgroup 30 appeared after this scrape's walk: kept, and counted in full once the next walk finds it
    const first = scrape(t, [entry(30, '/', 9), entry(40, '/', 1)], new Map());
    assert.deepEqual(first.removed, []);
    const second = scrape(t, [entry(30, '/', 12), entry(40, '/', 2)], owners([[30, 'job2']]));
    assert.deepEqual(second.totals, { job2: { '/': [12] } });
    assert.deepEqual(second.removed, [40], 'a system cgroup is deleted at its second unowned scrape');
  });
});
