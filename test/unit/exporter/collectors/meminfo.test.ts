import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { NoDataError } from '../../../../src/exporter/collector.js';
import { meminfo, parseMeminfo } from '../../../../src/exporter/collectors/meminfo.js';
import { collect, context, family, writeTree } from './node-context.js';

describe('meminfo collector', () => {
  const trees: { cleanup(): void }[] = [];
  after(() => {
    for (const t of trees) t.cleanup();
  });
  const tree = (meminfoText: string) => {
    const t = writeTree({ 'proc/meminfo': meminfoText });
    trees.push(t);
    return t.root;
  };

  it('exports exactly MemTotal, MemFree and MemAvailable in bytes by default', async () => {
    assert.equal(
      await collect(await meminfo.create(context(meminfo))),
      [
        '# HELP ceems_meminfo_MemAvailable_bytes Memory information field MemAvailable_bytes.',
        '# TYPE ceems_meminfo_MemAvailable_bytes gauge',
        'ceems_meminfo_MemAvailable_bytes{hostname="node1"} 2.51814875136e+11',
        '# HELP ceems_meminfo_MemFree_bytes Memory information field MemFree_bytes.',
        '# TYPE ceems_meminfo_MemFree_bytes gauge',
        'ceems_meminfo_MemFree_bytes{hostname="node1"} 2.02796253184e+11',
        '# HELP ceems_meminfo_MemTotal_bytes Memory information field MemTotal_bytes.',
        '# TYPE ceems_meminfo_MemTotal_bytes gauge',
        'ceems_meminfo_MemTotal_bytes{hostname="node1"} 2.70035750912e+11',
        '',
      ].join('\n'),
    );
  });

  it('exports the three default keys as 0 when the kernel does not have them', async () => {
    const root = tree('MemTotal:        1000 kB\nMemFree:          500 kB\nBuffers:          10 kB\n');
    const text = await collect(await meminfo.create(context(meminfo, [], root)));
    assert.deepEqual(family(text, 'ceems_meminfo_MemAvailable_bytes').slice(2), [
      'ceems_meminfo_MemAvailable_bytes{hostname="node1"} 0',
    ]);
    assert.deepEqual(family(text, 'ceems_meminfo_MemTotal_bytes').slice(2), [
      'ceems_meminfo_MemTotal_bytes{hostname="node1"} 1.024e+06',
    ]);
    assert.deepEqual(family(text, 'ceems_meminfo_Buffers_bytes'), []);
  });

  for (const flag of ['--collector.meminfo.all-stats', '--collector.meminfo.all.stats']) {
    it(`exports every field with ${flag}`, async () => {
      const text = await collect(await meminfo.create(context(meminfo, [flag])));
      const samples = text.split('\n').filter((l) => l.startsWith('ceems_'));
      assert.equal(samples.length, 55); // every line of the fixture file
      assert.deepEqual(family(text, 'ceems_meminfo_Active_anon_bytes'), [
        '# HELP ceems_meminfo_Active_anon_bytes Memory information field Active_anon_bytes.',
        '# TYPE ceems_meminfo_Active_anon_bytes gauge',
        'ceems_meminfo_Active_anon_bytes{hostname="node1"} 9.76293888e+09',
      ]);
      // no unit column: raw count, no _bytes suffix; case kept
      assert.deepEqual(family(text, 'ceems_meminfo_HugePages_Total'), [
        '# HELP ceems_meminfo_HugePages_Total Memory information field HugePages_Total.',
        '# TYPE ceems_meminfo_HugePages_Total gauge',
        'ceems_meminfo_HugePages_Total{hostname="node1"} 512',
      ]);
      assert.deepEqual(family(text, 'ceems_meminfo_Hugepagesize_bytes').slice(2), [
        'ceems_meminfo_Hugepagesize_bytes{hostname="node1"} 2.097152e+06',
      ]);
    });
  }

  it('types keys ending in _total (case-sensitive) as counters', async () => {
    const root = tree('MemTotal:  4 kB\nPages_total:  7\nHugePages_Total:  3\n');
    const text = await collect(
      await meminfo.create(context(meminfo, ['--collector.meminfo.all-stats'], root)),
    );
    assert.deepEqual(family(text, 'ceems_meminfo_Pages_total'), [
      '# HELP ceems_meminfo_Pages_total Memory information field Pages_total.',
      '# TYPE ceems_meminfo_Pages_total counter',
      'ceems_meminfo_Pages_total{hostname="node1"} 7',
    ]);
    assert.equal(
      family(text, 'ceems_meminfo_HugePages_Total')[1],
      '# TYPE ceems_meminfo_HugePages_Total gauge',
    );
  });

  it('parses keys and units like the original', () => {
    assert.deepEqual(
      [...parseMeminfo('Active(anon):       1608 kB\nHugePages_Free:        0\n\nInactive(file):   1 kB\n')],
      [
        ['Active_anon_bytes', 1646592],
        ['HugePages_Free', 0],
        ['Inactive_file_bytes', 1024],
      ],
    );
  });

  it('rejects malformed lines with a message naming the line', async () => {
    assert.throws(
      () => parseMeminfo('MemTotal:  lots kB\n'),
      /invalid value in meminfo line: 'MemTotal: {2}lots kB'/,
    );
    assert.throws(
      () => parseMeminfo('MemTotal: 1 kB extra\n'),
      /invalid line in meminfo: 'MemTotal: 1 kB extra'/,
    );
    assert.throws(() => parseMeminfo('MemTotal 1 kB\n'), /invalid line in meminfo: 'MemTotal 1 kB'/);
    const c = await meminfo.create(context(meminfo, [], tree('MemTotal: x kB\n')));
    await assert.rejects(collect(c), /invalid value in meminfo line/);
  });

  it('reports no data when /proc/meminfo is missing', async () => {
    const empty = writeTree({});
    trees.push(empty);
    const c = await meminfo.create(context(meminfo, [], empty.root));
    await assert.rejects(
      collect(c),
      (e) => e instanceof NoDataError && /meminfo does not exist/.test(e.message),
    );
  });
});
