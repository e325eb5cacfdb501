import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  applyMigUuids,
  applyVgpus,
  parseNvidiaSmiList,
  parseNvidiaSmiXml,
  parseVgpuQuery,
  SmiOutputError,
  smCountForModel,
} from '../../../../src/exporter/gpu/nvidia.js';
import { loadXmlParser } from '../../../../src/exporter/gpu/xml.js';
import { readFixture } from './fixtures.js';

// the XML parsers need fast-xml-parser loaded (the collectors load it at create time)
await loadXmlParser();

describe('nvidia-smi XML', () => {
  it('parses four full H100s: minor = XML position, consecutive indexes, bus ids, SM count from the model', () => {
    const gpus = parseNvidiaSmiXml(readFixture('nvidia/h100x4.xml'));
    assert.deepEqual(
      gpus.map((g) => [g.minor, g.index, g.busId, g.uuid, g.smCount, g.partitioned]),
      [
        [0, '0', '0000:18:00.0', 'GPU-5f7b2c9e-0a4e-4b57-93e4-6d2f8a1c0b11', 132, false],
        [1, '1', '0000:2a:00.0', 'GPU-0c7ab1d2-7f39-4e1a-b5c0-2e8d91f4a622', 132, false],
        [2, '2', '0000:3a:00.0', 'GPU-b2e4c6a8-1d3f-4a5b-9c7e-0f1a2b3c4d33', 132, false],
        [3, '3', '0000:5d:00.0', 'GPU-9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c44', 132, false],
      ],
    );
    assert.equal(gpus[0]!.name, 'NVIDIA H100 80GB HBM3');
    assert.deepEqual(gpus[2]!.deviceIds, ['gpu-b2e4c6a8-1d3f-4a5b-9c7e-0f1a2b3c4d33']);
    assert.ok(gpus.every((g) => g.instances.length === 0 && !g.vgpuEnabled));
  });

  it('gives a MIG-enabled GPU index "" and its MIG devices the next indexes with their SM counts', () => {
    const gpus = parseNvidiaSmiXml(readFixture('nvidia/a100x2-mig.xml'));
    assert.deepEqual(
      gpus.map((g) => [g.index, g.partitioned, g.smCount]),
      [
        ['0', false, 108],
        ['', true, 108],
      ],
    );
    assert.deepEqual(
      gpus[1]!.instances.map((i) => [i.index, i.gpuInstanceId, i.computeInstanceId, i.migIndex, i.smCount]),
      [
        ['1', 1, 0, 0, 42],
        ['2', 5, 0, 1, 28],
        ['3', 13, 0, 2, 14],
      ],
    );
  });

  it('adds MIG UUIDs from nvidia-smi -L by GPU UUID and device index', () => {
    const gpus = parseNvidiaSmiXml(readFixture('nvidia/a100x2-mig.xml'));
    applyMigUuids(gpus, parseNvidiaSmiList(readFixture('nvidia/a100x2-mig-L.txt')));
    assert.deepEqual(
      gpus[1]!.instances.map((i) => i.uuid),
      [
        'MIG-2c4e6a8b-0d1f-5a3b-8c7d-9e0f1a2b3c01',
        'MIG-5d7f9b1c-3e4a-5b6c-9d8e-0f1a2b3c4d02',
        'MIG-8e0a2c4d-6f7b-5c8d-ae9f-1a2b3c4d5e03',
      ],
    );
    assert.deepEqual(gpus[1]!.instances[2]!.deviceIds, ['mig-8e0a2c4d-6f7b-5c8d-ae9f-1a2b3c4d5e03']);
  });

  it('attaches vGPU mdev UUIDs to the physical GPU or to the MIG instance of the GPU instance id', () => {
    const gpus = parseNvidiaSmiXml(readFixture('nvidia/a100x2-vgpuhost.xml'));
    assert.ok(gpus.every((g) => g.vgpuEnabled));
    const vgpus = parseVgpuQuery(readFixture('nvidia/a100x2-vgpuhost-vgpu-query.txt'));
    assert.deepEqual(vgpus, [
      { busId: '0000:3b:00.0', mdevUuid: '8a7b6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d' },
      { busId: '0000:3b:00.0', mdevUuid: '1f2e3d4c-5b6a-4978-8a9b-c0d1e2f3a4b5' },
      { busId: '0000:86:00.0', mdevUuid: '4c5d6e7f-8a9b-4c0d-9e1f-2a3b4c5d6e7f', gpuInstanceId: 1 },
      { busId: '0000:86:00.0', mdevUuid: '7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b', gpuInstanceId: 5 },
    ]);
    applyVgpus(gpus, vgpus);
    assert.deepEqual(gpus[0]!.mdevUuids, [
      '8a7b6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d',
      '1f2e3d4c-5b6a-4978-8a9b-c0d1e2f3a4b5',
    ]);
    assert.deepEqual(gpus[1]!.mdevUuids, []);
    assert.deepEqual(
      gpus[1]!.instances.map((i) => i.mdevUuids),
      [['4c5d6e7f-8a9b-4c0d-9e1f-2a3b4c5d6e7f'], ['7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b']],
    );
  });

  it('counts an unparsable MIG multiprocessor_count as 1 SM', () => {
    const doc = readFixture('nvidia/a100x2-mig.xml').replace(
      '<multiprocessor_count>28</multiprocessor_count>',
      '<multiprocessor_count>N/A</multiprocessor_count>',
    );
    assert.equal(parseNvidiaSmiXml(doc)[1]!.instances[1]!.smCount, 1);
  });

  it('rejects truncated or foreign XML with a clear error', () => {
    assert.throws(
      () => parseNvidiaSmiXml('<nvidia_smi_log><gpu id="00000000:3B:00.0"><product_name>NVIDIA'),
      {
        name: 'SmiOutputError',
        message: /^invalid nvidia-smi XML: /,
      },
    );
    assert.throws(() => parseNvidiaSmiXml('<?xml version="1.0"?><other/>'), SmiOutputError);
    assert.throws(
      () => parseNvidiaSmiXml('<nvidia_smi_log><gpu id="junk"><uuid>GPU-1</uuid></gpu></nvidia_smi_log>'),
      /no valid PCI bus id/,
    );
    assert.deepEqual(
      parseNvidiaSmiXml('<nvidia_smi_log><driver_version>535</driver_version></nvidia_smi_log>'),
      [],
    );
  });

  it('maps model tokens of product names to SM counts (tokens split on space and "-")', () => {
    assert.equal(smCountForModel('Tesla V100-SXM2-32GB'), 80);
    assert.equal(smCountForModel('NVIDIA A100-SXM4-80GB'), 108);
    assert.equal(smCountForModel('NVIDIA A10'), 72);
    assert.equal(smCountForModel('NVIDIA A2'), 10);
    assert.equal(smCountForModel('NVIDIA H800 PCIe'), 114);
    assert.equal(smCountForModel('NVIDIA B200'), 132);
    assert.equal(smCountForModel('NVIDIA GeForce RTX 4090'), 0);
  });
});
