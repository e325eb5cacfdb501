import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  allocateShares,
  expandHostlist,
  parseGresConf,
  parseMigMinors,
  shareTotals,
  targetKey,
} from '../../../../src/exporter/gpu/gres.js';
import { applyMigUuids, parseNvidiaSmiList, parseNvidiaSmiXml } from '../../../../src/exporter/gpu/nvidia.js';
import { loadXmlParser } from '../../../../src/exporter/gpu/xml.js';
import { readFixture } from './fixtures.js';

// the XML parsers need fast-xml-parser loaded (the collectors load it at create time)
await loadXmlParser();

const h100 = () => parseNvidiaSmiXml(readFixture('nvidia/h100x4.xml'));
const a100mig = () => {
  const d = parseNvidiaSmiXml(readFixture('nvidia/a100x2-mig.xml'));
  applyMigUuids(d, parseNvidiaSmiList(readFixture('nvidia/a100x2-mig-L.txt')));
  return d;
};
const migMinors = () => parseMigMinors(readFixture('procfs/driver/nvidia-caps/mig-minors'));

describe('SLURM hostlists and device lists', () => {
  it('expands ranges with zero padding, lists and several brackets', () => {
    assert.deepEqual(expandHostlist('node[001-004,010]'), [
      'node001',
      'node002',
      'node003',
      'node004',
      'node010',
    ]);
    assert.deepEqual(expandHostlist('gpu01,gpu[3-4]'), ['gpu01', 'gpu3', 'gpu4']);
    assert.deepEqual(expandHostlist('r[1-2]-n[8-9]'), ['r1-n8', 'r1-n9', 'r2-n8', 'r2-n9']);
    assert.deepEqual(expandHostlist('/dev/nvidia[0-3]'), [
      '/dev/nvidia0',
      '/dev/nvidia1',
      '/dev/nvidia2',
      '/dev/nvidia3',
    ]);
  });

  it('rejects malformed ranges', () => {
    assert.throws(() => expandHostlist('node[001-00x]'), /invalid range '001-00x' in 'node\[001-00x\]'/);
    assert.throws(() => expandHostlist('node[3-1]'), /invalid range '3-1'/);
    assert.throws(() => expandHostlist('node[1-2'), /unbalanced '\['/);
  });

  it('reads nvidia-caps MIG minors (GI and CI access files)', () => {
    const m = migMinors();
    assert.deepEqual(m.get(147), { gpu: 1, gi: 1 });
    assert.deepEqual(m.get(148), { gpu: 1, gi: 1 });
    assert.deepEqual(m.get(256), { gpu: 1, gi: 13 });
    assert.equal(m.has(1), false); // "config 1"
  });
});

describe('gres.conf shares', () => {
  it('uses only shard/MPS lines of this node and spreads Count over the files', () => {
    const text = readFixture('gres/shard.conf');
    const lines = parseGresConf(text, 'gpu002');
    assert.deepEqual(lines, [{ groups: [[{ minor: 0 }], [{ minor: 1 }]], count: 200 }]);
    assert.deepEqual(
      [...shareTotals(lines, h100())],
      [
        ['0', 100],
        ['1', 100],
      ],
    );
    assert.deepEqual(
      [...shareTotals(parseGresConf(text, 'gpu007'), h100())],
      [
        ['0', 16],
        ['1', 16],
        ['2', 16],
        ['3', 16],
      ],
    );
    assert.deepEqual(parseGresConf(text, 'login01'), []);
  });

  it('a Count-only line applies to every GPU', () => {
    const totals = shareTotals(parseGresConf(readFixture('gres/mps-count-only.conf'), 'anyhost'), h100());
    assert.deepEqual([...totals.values()], [100, 100, 100, 100]);
  });

  it('resolves MIG instances through nvidia-caps and uses every file of MultipleFiles (D-EXP-9)', () => {
    const lines = parseGresConf(readFixture('gres/mig-shard.conf'), 'gpu-mig01', migMinors());
    assert.deepEqual([...shareTotals(lines, a100mig())].sort(), [
      ['0', 100],
      ['1/1', 40],
      ['1/13', 40],
      ['1/5', 30],
    ]);
  });

  it('names the line of a malformed entry', () => {
    assert.throws(() => parseGresConf(readFixture('gres/bad-range.conf'), 'gpu001'), {
      name: 'GresConfError',
      message: "gres.conf line 1: NodeName: invalid range '001-00x' in 'gpu[001-00x]'",
    });
    assert.throws(() => parseGresConf(readFixture('gres/bad-count.conf'), 'gpu001'), {
      name: 'GresConfError',
      message: "gres.conf line 1: invalid or missing Count 'lots'",
    });
  });

  it('allocates the example of the spec: 100 shares, A asks 20, B asks 60 → 0.25 and 0.75', () => {
    const gpu = { device: h100()[0]! };
    const k = targetKey(gpu);
    const flags = allocateShares(
      [
        { uuid: 'A', targets: [gpu], shares: 20 },
        { uuid: 'B', targets: [gpu], shares: 60 },
      ],
      new Map([[k, 100]]),
    );
    assert.equal(flags.get('A')!.get(k), 0.25);
    assert.equal(flags.get('B')!.get(k), 0.75);
  });

  it('serves jobs with fewer GPUs first and caps requests at the remaining shares', () => {
    const [g0, g1, g2] = h100().map((device) => ({ device }));
    const totals = new Map([
      [targetKey(g0!), 100],
      [targetKey(g1!), 100],
    ]);
    const flags = allocateShares(
      [
        { uuid: 'wide', targets: [g0!, g1!], shares: 90 },
        { uuid: 'narrow', targets: [g0!], shares: 90 },
        { uuid: 'whole', targets: [g2!] },
      ],
      totals,
    );
    assert.equal(flags.get('narrow')!.get('0'), 0.9);
    assert.equal(flags.get('wide')!.get('0'), 0.1);
    assert.equal(flags.get('wide')!.get('1'), 1);
    assert.equal(flags.get('whole')!.get('2'), 1);
  });
});
