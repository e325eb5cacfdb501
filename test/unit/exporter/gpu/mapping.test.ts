import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { encode } from '../../../../src/common/exposition.js';
import { FamilySet } from '../../../../src/exporter/collector.js';
import { buildAmdDevices, parseAmdSmiJson, readKfdTopology } from '../../../../src/exporter/gpu/amd.js';
import { emitGpuRows } from '../../../../src/exporter/gpu/emit.js';
import { k8sGpuAssignments, normalizeDeviceId } from '../../../../src/exporter/gpu/k8s.js';
import { libvirtGpuAssignments, parseDomainGpus } from '../../../../src/exporter/gpu/libvirt.js';
import {
  applyMigUuids,
  applyVgpus,
  parseNvidiaSmiList,
  parseNvidiaSmiXml,
  parseVgpuQuery,
} from '../../../../src/exporter/gpu/nvidia.js';
import { readJobGpuEnv, SlurmGpuMapper } from '../../../../src/exporter/gpu/slurm.js';
import type { GpuAssignment, GpuDevice, Manager } from '../../../../src/exporter/gpu/types.js';
import { loadXmlParser } from '../../../../src/exporter/gpu/xml.js';
import { fixture, readFixture } from './fixtures.js';
import { recordingLogger } from './helpers.js';

// the XML parsers need fast-xml-parser loaded (the collectors load it at create time)
await loadXmlParser();

const nvidia = (prefix: string, vgpu = false): GpuDevice[] => {
  const d = parseNvidiaSmiXml(readFixture(`nvidia/${prefix}.xml`));
  applyMigUuids(d, parseNvidiaSmiList(readFixture(`nvidia/${prefix}-L.txt`)));
  if (vgpu) applyVgpus(d, parseVgpuQuery(readFixture(`nvidia/${prefix}-vgpu-query.txt`)));
  return d;
};
const inventory = (devices: readonly GpuDevice[]) => ({ devices: () => devices });

function render(
  manager: Manager,
  hostname: string,
  units: [string, GpuAssignment[] | undefined][],
): string[] {
  const out = new FamilySet();
  for (const [uuid, a] of units) emitGpuRows(out, manager, hostname, { uuid }, a ?? []);
  return encode(out.families.values()).trimEnd().split('\n');
}

// A fake /proc with job processes: pid → environment.
const procfs = mkdtempSync(join(tmpdir(), 'ceems-gpu-proc-'));
after(() => rmSync(procfs, { recursive: true }));
function proc(pid: number, env: Record<string, string>): void {
  mkdirSync(join(procfs, String(pid)), { recursive: true });
  const text = Object.entries({ PATH: '/usr/bin:/bin', HOME: '/home/u', ...env })
    .map(([k, v]) => `${k}=${v}\0`)
    .join('');
  writeFileSync(join(procfs, String(pid), 'environ'), text);
}

describe('SLURM job GPU mapping', () => {
  it('reads SLURM_JOB_GPUS, else SLURM_STEP_GPUS, of the first process of the job that has them', () => {
    proc(100, { SLURM_JOB_ID: '999', SLURM_JOB_GPUS: '3' }); // another job's process in the cgroup
    proc(101, { SLURM_JOB_ID: '4242' }); // no GPUs in its environment
    proc(102, { SLURM_JOB_ID: '4242', SLURM_STEP_GPUS: '2', SLURM_JOB_GPUS: '0,1' });
    proc(103, { SLURM_JOB_ID: '4242', SLURM_JOB_GPUS: '3' });
    assert.deepEqual(readJobGpuEnv(procfs, '4242', [100, 101, 77777, 102, 103], false), {
      ordinals: ['0', '1'],
      shares: undefined,
    });
    proc(104, { SLURM_JOB_ID: '4243', SLURM_STEP_GPUS: '2' });
    assert.deepEqual(readJobGpuEnv(procfs, '4243', [104], false), { ordinals: ['2'], shares: undefined });
    assert.equal(readJobGpuEnv(procfs, '4244', [100, 101], false), undefined);
  });

  it('with sharing configured, keeps looking for a process that also has the share count', () => {
    proc(110, { SLURM_JOB_ID: '5000', SLURM_JOB_GPUS: '0' });
    proc(111, { SLURM_JOB_ID: '5000', SLURM_JOB_GPUS: '0', SLURM_SHARDS_ON_NODE: '20' });
    proc(112, { SLURM_JOB_ID: '5001', SLURM_JOB_GPUS: '1', CUDA_MPS_ACTIVE_THREAD_PERCENTAGE: '50' });
    assert.deepEqual(readJobGpuEnv(procfs, '5000', [110, 111], true), { ordinals: ['0'], shares: 20 });
    assert.deepEqual(readJobGpuEnv(procfs, '5000', [110], true), { ordinals: ['0'], shares: undefined });
    assert.deepEqual(readJobGpuEnv(procfs, '5001', [112], true), { ordinals: ['1'], shares: 50 });
  });

  it('emits one flag row per GPU (and per MIG instance) with the exact labels and HELP', () => {
    proc(200, { SLURM_JOB_ID: '7001', SLURM_JOB_GPUS: '0,2' });
    proc(201, { SLURM_JOB_ID: '7002', SLURM_JOB_GPUS: '1' });
    const mapper = new SlurmGpuMapper(inventory(nvidia('a100x2-mig')), {
      procfs,
      hostname: 'gpu-mig01',
      gresConfigFile: '/nonexistent/gres.conf',
      logger: recordingLogger().logger,
    });
    assert.equal(mapper.sharing, false);
    const byJob = mapper.update([
      { uuid: '7001', pids: [200] },
      { uuid: '7002', pids: [201] },
    ]);
    assert.deepEqual(render('slurm', 'gpu-mig01', [...byJob.entries()]), [
      '# HELP ceems_compute_unit_gpu_index_flag A value > 0 indicates the job using current GPU',
      '# TYPE ceems_compute_unit_gpu_index_flag gauge',
      'ceems_compute_unit_gpu_index_flag{cgrouphostname="",gpuiid="",gpuuuid="GPU-f4b0e6b2-8c7a-4d3e-9f1a-2b3c4d5e6f70",hindex="gpu-mig01/gpu-0",hostname="gpu-mig01",index="0",manager="slurm",uuid="7001"} 1',
      'ceems_compute_unit_gpu_index_flag{cgrouphostname="",gpuiid="1",gpuuuid="GPU-a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c81",hindex="gpu-mig01/gpu-1",hostname="gpu-mig01",index="1",manager="slurm",uuid="7002"} 1',
      'ceems_compute_unit_gpu_index_flag{cgrouphostname="",gpuiid="5",gpuuuid="GPU-a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c81",hindex="gpu-mig01/gpu-2",hostname="gpu-mig01",index="2",manager="slurm",uuid="7001"} 1',
      '# HELP ceems_compute_unit_gpu_sm_count Number of SMs/CUs in the GPU instance',
      '# TYPE ceems_compute_unit_gpu_sm_count gauge',
      'ceems_compute_unit_gpu_sm_count{cgrouphostname="",gpuiid="",gpuuuid="GPU-f4b0e6b2-8c7a-4d3e-9f1a-2b3c4d5e6f70",hindex="gpu-mig01/gpu-0",hostname="gpu-mig01",index="0",manager="slurm",uuid="7001"} 108',
      'ceems_compute_unit_gpu_sm_count{cgrouphostname="",gpuiid="1",gpuuuid="GPU-a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c81",hindex="gpu-mig01/gpu-1",hostname="gpu-mig01",index="1",manager="slurm",uuid="7002"} 42',
      'ceems_compute_unit_gpu_sm_count{cgrouphostname="",gpuiid="5",gpuuuid="GPU-a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c81",hindex="gpu-mig01/gpu-2",hostname="gpu-mig01",index="2",manager="slurm",uuid="7001"} 28',
    ]);
  });

  it('splits shared GPUs by shards from gres.conf and keeps cgrouphostname / empty hostname labels', () => {
    proc(300, { SLURM_JOB_ID: '8001', SLURM_JOB_GPUS: '0', SLURM_SHARDS_ON_NODE: '20' });
    proc(301, { SLURM_JOB_ID: '8002', SLURM_JOB_GPUS: '0', SLURM_SHARDS_ON_NODE: '60' });
    proc(302, { SLURM_JOB_ID: '8003', SLURM_JOB_GPUS: '3' });
    const mapper = new SlurmGpuMapper(inventory(nvidia('h100x4')), {
      procfs,
      hostname: 'gpu002',
      gresConfigFile: fixture('gres/shard.conf'),
      logger: recordingLogger().logger,
    });
    assert.equal(mapper.sharing, true);
    const byJob = mapper.update([
      { uuid: '8001', pids: [300] },
      { uuid: '8002', pids: [301] },
      { uuid: '8003', pids: [302] },
    ]);
    assert.deepEqual(
      [...byJob].map(([u, a]) => [u, a.map((x) => [x.device.index, x.value])]),
      [
        ['8001', [['0', 0.25]]],
        ['8002', [['0', 0.75]]],
        ['8003', [['3', 1]]],
      ],
    );
    const out = new FamilySet();
    emitGpuRows(out, 'slurm', '', { uuid: '8003', cgrouphostname: 'nodeA' }, byJob.get('8003')!);
    assert.match(
      encode(out.families.values()),
      /\{cgrouphostname="nodeA",gpuiid="",gpuuuid="GPU-9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c44",hindex="\/gpu-3",hostname="",index="3",manager="slurm",uuid="8003"\} 1\n/,
    );
  });

  it('recomputes only when the job set changes or a job had no GPU information', () => {
    proc(400, { SLURM_JOB_ID: '9001', SLURM_JOB_GPUS: '0' });
    proc(401, { SLURM_JOB_ID: '9002' });
    const mapper = new SlurmGpuMapper(inventory(nvidia('h100x4')), {
      procfs,
      hostname: 'n',
      gresConfigFile: '/nonexistent',
      logger: recordingLogger().logger,
    });
    const jobs = [
      { uuid: '9001', pids: [400] },
      { uuid: '9002', pids: [401] },
    ];
    assert.deepEqual([...mapper.update(jobs).keys()], ['9001']);
    // 9002 had no GPU info: its environment is read again on the next update
    proc(401, { SLURM_JOB_ID: '9002', SLURM_JOB_GPUS: '1' });
    proc(400, { SLURM_JOB_ID: '9001', SLURM_JOB_GPUS: '2' });
    const second = mapper.update(jobs);
    assert.deepEqual(
      [...second].map(([u, a]) => [u, a[0]!.device.index]),
      [
        ['9001', '0'], // cached: known jobs are not re-read
        ['9002', '1'],
      ],
    );
    assert.equal(mapper.update(jobs), second);
    assert.deepEqual([...mapper.update([jobs[1]!]).keys()], ['9002']);
  });

  it('rejects a malformed gres.conf at start-up', () => {
    assert.throws(
      () =>
        new SlurmGpuMapper(inventory([]), {
          procfs,
          hostname: 'gpu001',
          gresConfigFile: fixture('gres/bad-count.conf'),
          logger: recordingLogger().logger,
        }),
      /gres.conf line 1: invalid or missing Count 'lots'/,
    );
  });
});

describe('libvirt VM GPU mapping', () => {
  it('parses hostdevs of the instance XML', () => {
    assert.deepEqual(parseDomainGpus(readFixture('libvirt/instance-00000001.xml')), {
      uuid: '9d4a2b17-8c3e-4f5a-b6d7-e8f9a0b1c2d3',
      pciAddresses: [],
      mdevUuids: ['8a7b6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d', '4c5d6e7f-8a9b-4c0d-9e1f-2a3b4c5d6e7f'],
    });
    assert.deepEqual(parseDomainGpus(readFixture('libvirt/instance-00000003.xml')).pciAddresses, [
      '0000:5d:00.0',
      '0000:17:00.1',
    ]);
    assert.throws(() => parseDomainGpus('<domain><uuid>x</uuid>'), /^Error: invalid domain XML: /);
    // the uuid label is the domain uuid as written in the XML
    assert.equal(
      parseDomainGpus('<domain><uuid>9D4A2B17-8C3E-4F5A-B6D7-E8F9A0B1C2D3</uuid></domain>').uuid,
      '9D4A2B17-8C3E-4F5A-B6D7-E8F9A0B1C2D3',
    );
  });

  it('vGPUs: shared physical GPU split by users, MIG-backed vGPU on its instance', () => {
    const vms = ['instance-00000001', 'instance-00000002'].map((i) =>
      parseDomainGpus(readFixture(`libvirt/${i}.xml`)),
    );
    const byVm = libvirtGpuAssignments(nvidia('a100x2-vgpuhost', true), vms);
    assert.deepEqual(render('libvirt', 'cn1', [...byVm.entries()]).slice(0, 5), [
      '# HELP ceems_compute_unit_gpu_index_flag A value > 0 indicates running instance using current GPU',
      '# TYPE ceems_compute_unit_gpu_index_flag gauge',
      'ceems_compute_unit_gpu_index_flag{cgrouphostname="",gpuiid="",gpuuuid="GPU-3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e90",hindex="cn1/gpu-0",hostname="cn1",index="0",manager="libvirt",uuid="2e3f4a5b-6c7d-4e8f-9a0b-1c2d3e4f5a6b"} 0.5',
      'ceems_compute_unit_gpu_index_flag{cgrouphostname="",gpuiid="",gpuuuid="GPU-3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e90",hindex="cn1/gpu-0",hostname="cn1",index="0",manager="libvirt",uuid="9d4a2b17-8c3e-4f5a-b6d7-e8f9a0b1c2d3"} 0.5',
      'ceems_compute_unit_gpu_index_flag{cgrouphostname="",gpuiid="1",gpuuuid="GPU-7d6c5b4a-3f2e-4d1c-9b8a-7f6e5d4c3b21",hindex="cn1/gpu-1",hostname="cn1",index="1",manager="libvirt",uuid="9d4a2b17-8c3e-4f5a-b6d7-e8f9a0b1c2d3"} 1',
    ]);
  });

  it('PCI passthrough matches the GPU bus id; other passed-through devices are ignored', () => {
    const vm = parseDomainGpus(readFixture('libvirt/instance-00000003.xml'));
    const byVm = libvirtGpuAssignments(nvidia('h100x4'), [vm]);
    assert.deepEqual(
      byVm.get('5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d')!.map((a) => [a.device.busId, a.device.index, a.value]),
      [['0000:5d:00.0', '3', 1]],
    );
  });
});

describe('Kubernetes pod GPU mapping', () => {
  it('normalises device-plugin ids', () => {
    assert.equal(normalizeDeviceId('GPU-F4B0E6B2-8c7a::3'), 'gpu-f4b0e6b2-8c7a');
    assert.equal(normalizeDeviceId('amdgpu_xcp.3'), 'amdgpu_xcp.3');
  });

  it('time-sliced replicas split a GPU; MIG ids select the instance', () => {
    const byPod = k8sGpuAssignments(nvidia('a100x2-mig'), [
      {
        uuid: 'pod-a',
        deviceIds: [
          'GPU-f4b0e6b2-8c7a-4d3e-9f1a-2b3c4d5e6f70::0',
          'GPU-f4b0e6b2-8c7a-4d3e-9f1a-2b3c4d5e6f70::1',
        ],
      },
      {
        uuid: 'pod-b',
        deviceIds: [
          'GPU-f4b0e6b2-8c7a-4d3e-9f1a-2b3c4d5e6f70::2',
          'MIG-5d7f9b1c-3e4a-5b6c-9d8e-0f1a2b3c4d02',
        ],
      },
      { uuid: 'pod-c', deviceIds: ['nvidia.com/unknown-1', '0000:3b:00.0'] },
    ]);
    const rows = (u: string) =>
      byPod.get(u)!.map((a) => [a.instance?.index ?? a.device.index, a.instance?.gpuInstanceId, a.value]);
    assert.deepEqual(rows('pod-a'), [['0', undefined, 2 / 3]]);
    assert.deepEqual(rows('pod-b'), [
      ['0', undefined, 1 / 3],
      ['2', 5, 1],
    ]);
    assert.equal(byPod.has('pod-c'), false);
  });

  it('AMD: partition ids select the partition; a partitioned GPU held by BDF gives index=""', () => {
    const amd = buildAmdDevices(
      parseAmdSmiJson(readFixture('amd/amd-smi-mi300x-cpx.json')),
      readKfdTopology(fixture('sysfs/mi300x-cpx')),
    );
    const byPod = k8sGpuAssignments(amd, [
      { uuid: 'p1', deviceIds: ['amdgpu_xcp.3'] },
      { uuid: 'p2', deviceIds: ['0000:26:00.0'] },
    ]);
    assert.deepEqual(render('k8s', 'k1', [...byPod.entries()]), [
      '# HELP ceems_compute_unit_gpu_index_flag A value > 0 indicates the pod using current GPU',
      '# TYPE ceems_compute_unit_gpu_index_flag gauge',
      'ceems_compute_unit_gpu_index_flag{cgrouphostname="",gpuiid="",gpuuuid="PHJZ2410000587",hindex="k1/gpu-",hostname="k1",index="",manager="k8s",uuid="p2"} 1',
      'ceems_compute_unit_gpu_index_flag{cgrouphostname="",gpuiid="4",gpuuuid="PHJZ2410000401",hindex="k1/gpu-4",hostname="k1",index="4",manager="k8s",uuid="p1"} 1',
      '# HELP ceems_compute_unit_gpu_sm_count Number of SMs/CUs in the GPU instance',
      '# TYPE ceems_compute_unit_gpu_sm_count gauge',
      'ceems_compute_unit_gpu_sm_count{cgrouphostname="",gpuiid="",gpuuuid="PHJZ2410000587",hindex="k1/gpu-",hostname="k1",index="",manager="k8s",uuid="p2"} 304',
      'ceems_compute_unit_gpu_sm_count{cgrouphostname="",gpuiid="4",gpuuuid="PHJZ2410000401",hindex="k1/gpu-4",hostname="k1",index="4",manager="k8s",uuid="p1"} 38',
    ]);
  });
});
