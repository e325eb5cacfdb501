import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  countCpuList,
  parseBlkioV1,
  parseDiskstats,
  parseFlatKeyed,
  parseIoStat,
  parseMeminfoTotals,
  parsePids,
  parsePsiFullTotal,
  parseRdmaCurrent,
  sharesToCpus,
  unescapePath,
  weightToShares,
} from '../../../../src/exporter/cgroup/parse.js';

describe('cgroup file parsers', () => {
  it('reads flat keyed files and skips non-numeric values', () => {
    const m = parseFlatKeyed('user_usec 45000000\nsystem_usec 15\nbad x\n\n');
    assert.deepEqual(
      [...m],
      [
        ['user_usec', 45000000],
        ['system_usec', 15],
      ],
    );
  });

  it('counts CPU range lists and rejects malformed ones', () => {
    assert.equal(countCpuList('0-3,8\n'), 5);
    assert.equal(countCpuList('5'), 1);
    assert.equal(countCpuList('\n'), 0);
    assert.throws(() => countCpuList('0-a'), /malformed CPU list '0-a'/);
    assert.throws(() => countCpuList('4-2'), /malformed CPU range '4-2'/);
  });

  it('takes total= of the full PSI line in seconds', () => {
    const text =
      'some avg10=1.20 avg60=0.80 avg300=0.30 total=2500000\nfull avg10=0.50 avg60=0.20 avg300=0.10 total=1500000\n';
    assert.equal(parsePsiFullTotal(text), 1.5);
    assert.equal(parsePsiFullTotal('some avg10=0.00 avg60=0.00 avg300=0.00 total=9\n'), 0);
  });

  it('parses io.stat per device', () => {
    const m = parseIoStat(
      '8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n259:0 wbytes=4096 wios=1\n',
    );
    assert.deepEqual(m.get('8:0'), { readBytes: 10, writeBytes: 20, readRequests: 1, writeRequests: 2 });
    assert.deepEqual(m.get('259:0'), { readBytes: 0, writeBytes: 4096, readRequests: 0, writeRequests: 1 });
  });

  it('parses v1 blkio rows; a later file wins per device and keeps the others', () => {
    const m = parseBlkioV1(
      '8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\n259:0 Write 65536\nTotal 77824\n',
      'bytes',
      new Map(),
    );
    parseBlkioV1('8:0 Read 40960\n8:0 Write 8\n', 'bytes', m);
    parseBlkioV1('8:0 Read 10\n8:0 Write 2\n', 'requests', m);
    assert.deepEqual(m.get('8:0'), { readBytes: 40960, writeBytes: 8, readRequests: 10, writeRequests: 2 });
    assert.deepEqual(m.get('259:0'), { readBytes: 0, writeBytes: 65536, readRequests: 0, writeRequests: 0 });
  });

  it('parses rdma.current handles and objects', () => {
    const m = parseRdmaCurrent('mlx5_0 hca_handle=2 hca_object=2000\nmlx5_1 hca_handle=max hca_object=0\n');
    assert.deepEqual(m.get('mlx5_0'), { handles: 2, objects: 2000 });
    assert.deepEqual(m.get('mlx5_1'), { handles: 0, objects: 0 });
  });

  it('maps diskstats numbers to names, last duplicate wins', () => {
    const m = parseDiskstats('   8       0 sda 1 2 3\n 259       0 nvme0n1 1\n   8       0 sdz 1\n');
    assert.equal(m.get('8:0'), 'sdz');
    assert.equal(m.get('259:0'), 'nvme0n1');
  });

  it('reads MemTotal and SwapTotal in bytes', () => {
    assert.deepEqual(parseMeminfoTotals('MemTotal:       1000 kB\nSwapTotal:         2 kB\n'), {
      memTotal: 1024000,
      swapTotal: 2048,
    });
    assert.deepEqual(parseMeminfoTotals('MemFree: 1 kB\n'), { memTotal: 0, swapTotal: 0 });
  });

  it('parses cgroup.procs', () => {
    assert.deepEqual(parsePids('4202\n4203\n\n'), [4202, 4203]);
  });

  it('converts k8s cpu.weight to shares and CPUs', () => {
    assert.equal(weightToShares(1), 2);
    assert.equal(weightToShares(10000), 262144);
    assert.equal(weightToShares(100), 2597);
    assert.equal(sharesToCpus(weightToShares(1)), 0.001);
    assert.equal(sharesToCpus(1024), 1);
    assert.equal(sharesToCpus(2048), 2);
  });

  it('unescapes systemd paths like Go strconv.Unquote, keeps invalid ones', () => {
    assert.equal(
      unescapePath('/sys/fs/cgroup/machine.slice/machine-qemu\\x2d3\\x2dinstance\\x2d0000002a.scope'),
      '/sys/fs/cgroup/machine.slice/machine-qemu-3-instance-0000002a.scope',
    );
    assert.equal(unescapePath('/plain/path'), '/plain/path');
    assert.equal(unescapePath('/bad\\q'), '/bad\\q');
    assert.equal(unescapePath('/bad\\x2'), '/bad\\x2');
    assert.equal(unescapePath('/quote"\\x2d'), '/quote"\\x2d');
  });
});
