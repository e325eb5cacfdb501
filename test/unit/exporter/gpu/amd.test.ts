import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  buildAmdDevices,
  parseAmdSmiJson,
  parseRocmSmiJson,
  readKfdTopology,
} from '../../../../src/exporter/gpu/amd.js';
import { fixture, readFixture } from './fixtures.js';

describe('AMD discovery', () => {
  it('amd-smi MI250X: every GCD is a GPU indexed by its amd-smi id, gpuuuid = board serial', () => {
    const gpus = buildAmdDevices(parseAmdSmiJson(readFixture('amd/amd-smi-mi250x.json')), []);
    assert.deepEqual(
      gpus.map((g) => [g.minor, g.index, g.uuid, g.busId, g.partitioned, g.smCount]),
      [
        [0, '0', '692251001124', '0000:c1:00.0', false, 0],
        [1, '1', '692251001124', '0000:c6:00.0', false, 0],
        [2, '2', '692251001215', '0000:c9:00.0', false, 0],
        [3, '3', '692251001215', '0000:ce:00.0', false, 0],
      ],
    );
    assert.equal(gpus[0]!.name, 'Aldebaran/MI200 [Instinct MI250X/MI250]');
    assert.deepEqual(gpus[3]!.deviceIds, ['0000:ce:00.0']);
  });

  it('amd-smi MI300X SPX ({gpu_data} form): CU count from the kfd topology', () => {
    const kfd = readKfdTopology(fixture('sysfs/mi300x-spx'));
    assert.deepEqual(
      kfd.map((k) => [k.node, k.busId, k.computeUnits, k.deviceId]),
      [
        [2, '0000:05:00.0', 304, '0000:05:00.0'],
        [3, '0000:26:00.0', 304, '0000:26:00.0'],
      ],
    );
    const gpus = buildAmdDevices(parseAmdSmiJson(readFixture('amd/amd-smi-mi300x-spx.json')), kfd);
    assert.deepEqual(
      gpus.map((g) => [g.index, g.uuid, g.smCount, g.instances.length]),
      [
        ['0', 'PHJZ2410000401', 304, 0],
        ['1', 'PHJZ2410000587', 304, 0],
      ],
    );
  });

  it('amd-smi MI300X CPX: physical index "", one instance per partition with CUs and device-plugin ids', () => {
    const kfd = readKfdTopology(fixture('sysfs/mi300x-cpx'));
    const gpus = buildAmdDevices(parseAmdSmiJson(readFixture('amd/amd-smi-mi300x-cpx.json')), kfd);
    assert.equal(gpus.length, 2);
    const [g0, g1] = gpus;
    assert.deepEqual([g0!.index, g0!.partitioned, g0!.busId, g0!.smCount], ['', true, '0000:05:00.0', 304]);
    assert.deepEqual(
      g1!.instances.map((i) => [i.index, i.gpuInstanceId, i.smCount, i.deviceIds[0]]),
      [
        ['8', 0, 38, '0000:26:00.0'],
        ['9', 1, 38, 'amdgpu_xcp.7'],
        ['10', 2, 38, 'amdgpu_xcp.8'],
        ['11', 3, 38, 'amdgpu_xcp.9'],
        ['12', 4, 38, 'amdgpu_xcp.10'],
        ['13', 5, 38, 'amdgpu_xcp.11'],
        ['14', 6, 38, 'amdgpu_xcp.12'],
        ['15', 7, 38, 'amdgpu_xcp.13'],
      ],
    );
    assert.deepEqual(g0!.instances[1]!.deviceIds, ['amdgpu_xcp.0']);
  });

  it('rocm-smi: card order is the index, partitions numbered sequentially per GPU', () => {
    const mi250 = buildAmdDevices(parseRocmSmiJson(readFixture('amd/rocm-smi-mi250x.json')), []);
    assert.deepEqual(
      mi250.map((g) => [g.index, g.uuid, g.busId, g.name]),
      [
        ['0', '692251001124', '0000:c1:00.0', 'AMD Instinct MI250X'],
        ['1', '692251001124', '0000:c6:00.0', 'AMD Instinct MI250X'],
        ['2', '692251001215', '0000:c9:00.0', 'AMD Instinct MI250X'],
        ['3', '692251001215', '0000:ce:00.0', 'AMD Instinct MI250X'],
      ],
    );
    const cpx = buildAmdDevices(
      parseRocmSmiJson(readFixture('amd/rocm-smi-mi300x-cpx.json')),
      readKfdTopology(fixture('sysfs/mi300x-cpx')),
    );
    assert.deepEqual(
      cpx.map((g) => [g.index, g.uuid, g.instances.map((i) => i.gpuInstanceId).join(',')]),
      [
        ['', 'PHJZ2410000401', '0,1,2,3,4,5,6,7'],
        ['', 'PHJZ2410000587', '0,1,2,3,4,5,6,7'],
      ],
    );
    assert.equal(cpx[1]!.instances[0]!.index, '8');
  });

  it('without kfd sysfs the CU count is 0 (no sm_count row)', () => {
    assert.deepEqual(readKfdTopology(fixture('sysfs/nvidia')), []);
    const gpus = buildAmdDevices(parseAmdSmiJson(readFixture('amd/amd-smi-mi300x-cpx.json')), []);
    assert.ok(gpus.every((g) => g.smCount === 0 && g.instances.every((i) => i.smCount === 0)));
  });

  it('rejects malformed JSON and wrong shapes with clear errors', () => {
    assert.throws(
      () => parseAmdSmiJson('[{"gpu": 0, "bus": {"bdf": '),
      /^SmiOutputError: invalid amd-smi JSON: /,
    );
    assert.throws(() => parseAmdSmiJson('{"error": "no GPUs"}'), /expected a list of GPUs/);
    assert.throws(
      () => parseAmdSmiJson('[{"gpu": "zero", "bus": {"bdf": "0000:05:00.0"}}]'),
      /entry 0 lacks/,
    );
    assert.throws(() => parseRocmSmiJson('["card0"]'), /expected an object of cards/);
    assert.throws(
      () => parseRocmSmiJson('{"card0": {"PCI Bus": "nowhere"}}'),
      /card0 lacks a valid "PCI Bus"/,
    );
  });
});
