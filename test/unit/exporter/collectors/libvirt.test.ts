import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { encode } from '../../../../src/common/exposition.js';
import { parseFlags } from '../../../../src/common/flags.js';
import { createLogger } from '../../../../src/common/logger.js';
import { FamilySet } from '../../../../src/exporter/collector.js';
import { libvirt } from '../../../../src/exporter/collectors/libvirt.js';
import type { GpuDevice } from '../../../../src/exporter/gpu/index.js';
import { loadXmlParser } from '../../../../src/exporter/gpu/xml.js';
import { allFlags } from '../../../../src/exporter/main.js';
import { LibvirtCollector } from '../../../../src/exporter/units/libvirt.js';

// the XML parsers need fast-xml-parser loaded (the collectors load it at create time)
await loadXmlParser();

const FIX = resolve(import.meta.dirname, '../../../fixtures');
const XML_DIR = join(FIX, 'libvirt/qemu');
const UUID_2A = '4f6a3b2c-8d1e-4f7a-9b0c-1d2e3f4a5b6c';
const UUID_2B = '9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';

function makeCollector(tree: string, version: 'v1' | 'v2', args: string[] = [], now?: () => number) {
  const { flags } = parseFlags(allFlags(), [
    `--collector.cgroups.force-version=${version}`,
    `--collector.libvirt.xml-dir=${XML_DIR}`,
    ...args,
  ]);
  return new LibvirtCollector(
    {
      hostname: 'compute-0',
      procfs: join(FIX, 'cgroup/proc'),
      sysfs: join(FIX, 'sys'),
      cgroupfs: join(FIX, 'cgroup', tree),
      flags,
      logger: createLogger({ level: 'silent' }),
    },
    now,
  );
}

async function scrape(c: LibvirtCollector): Promise<string> {
  const out = new FamilySet();
  await c.update(out, new AbortController().signal);
  return encode(out.families.values());
}

const samples = (text: string, needle: string) =>
  text.split('\n').filter((l) => !l.startsWith('#') && l.includes(needle));
const L = (uuid: string, extra = '') =>
  `{cgrouphostname="",${extra}hostname="compute-0",manager="libvirt",uuid="${uuid}"}`;

describe('libvirt collector', () => {
  it('cgroup v2 systemd layout: domain uuid from the instance XML, vCPU count, block IO and PSI', async () => {
    const c = makeCollector('libvirt-v2', 'v2', [
      '--collector.libvirt.blkio-metrics',
      '--collector.libvirt.psi-metrics',
    ]);
    const text = await scrape(c);
    assert.deepEqual(samples(text, `uuid="${UUID_2A}"`), [
      `ceems_compute_unit_blkio_read_total_bytes${L(UUID_2A, 'device="dm-0",')} 5.24288e+07`,
      `ceems_compute_unit_blkio_read_total_requests${L(UUID_2A, 'device="dm-0",')} 1200`,
      `ceems_compute_unit_blkio_write_total_bytes${L(UUID_2A, 'device="dm-0",')} 1.048576e+08`,
      `ceems_compute_unit_blkio_write_total_requests${L(UUID_2A, 'device="dm-0",')} 3400`,
      `ceems_compute_unit_cpu_psi_seconds${L(UUID_2A)} 12`,
      `ceems_compute_unit_cpu_system_seconds_total${L(UUID_2A)} 120`,
      `ceems_compute_unit_cpu_user_seconds_total${L(UUID_2A)} 3600`,
      `ceems_compute_unit_cpus${L(UUID_2A)} 4`,
      `ceems_compute_unit_memory_cache_bytes${L(UUID_2A)} 8.05306368e+08`,
      `ceems_compute_unit_memory_fail_count${L(UUID_2A)} 0`,
      `ceems_compute_unit_memory_psi_seconds${L(UUID_2A)} 0`,
      `ceems_compute_unit_memory_rss_bytes${L(UUID_2A)} 1.5032385536e+10`,
      `ceems_compute_unit_memory_total_bytes${L(UUID_2A)} 1.7179869184e+10`,
      `ceems_compute_unit_memory_used_bytes${L(UUID_2A)} 1.610612736e+10`,
    ]);
    // no XML for instance-0000002c: the instance id is the uuid
    assert.deepEqual(samples(text, 'ceems_compute_unit_cpus'), [
      `ceems_compute_unit_cpus${L(UUID_2A)} 4`,
      `ceems_compute_unit_cpus${L('instance-0000002c')} 2`,
    ]);
    assert.deepEqual(samples(text, 'ceems_compute_units'), [
      'ceems_compute_units{hostname="compute-0",manager="libvirt"} 2',
    ]);
    assert.ok(text.includes('# HELP ceems_compute_units Total number of jobs\n'));
    const vm = c.vms().find((u) => u.id === 'instance-0000002a')!;
    assert.deepEqual(vm.pids, [6601]);
    // on-disk (escaped) child paths [D-EXP-7]
    assert.equal(vm.children[0], '/machine.slice/machine-qemu\\x2d1\\x2dinstance\\x2d0000002a.scope/libvirt');
  });

  it('cgroup v2 without systemd: machine/qemu-N-instance-X.libvirt-qemu', async () => {
    const text = await scrape(makeCollector('libvirt-v2-nosystemd', 'v2'));
    assert.deepEqual(samples(text, 'ceems_compute_unit_cpu'), [
      `ceems_compute_unit_cpu_system_seconds_total${L(UUID_2B)} 10`,
      `ceems_compute_unit_cpu_user_seconds_total${L(UUID_2B)} 50`,
      `ceems_compute_unit_cpus${L(UUID_2B)} 1`,
    ]);
    assert.equal(samples(text, 'blkio').length, 0);
  });

  it('cgroup v1: flat vcpu children, blkio from the throttle files, malformed XML falls back to the id', async () => {
    const text = await scrape(makeCollector('libvirt-v1', 'v1', ['--collector.libvirt.blkio-metrics']));
    assert.deepEqual(samples(text, 'ceems_compute_unit_cpus'), [
      `ceems_compute_unit_cpus${L(UUID_2A)} 2`,
      `ceems_compute_unit_cpus${L('instance-0000002d')} 1`,
    ]);
    assert.deepEqual(samples(text, `uuid="${UUID_2A}"`).slice(0, 4), [
      `ceems_compute_unit_blkio_read_total_bytes${L(UUID_2A, 'device="dm-0",')} 8192`,
      `ceems_compute_unit_blkio_read_total_requests${L(UUID_2A, 'device="dm-0",')} 2`,
      `ceems_compute_unit_cpu_system_seconds_total${L(UUID_2A)} 5`,
      `ceems_compute_unit_cpu_user_seconds_total${L(UUID_2A)} 20`,
    ]);
  });

  it('keeps the domain uuid of an instance once read, even if its XML goes away [D-EXP-2]', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'libvirt-xml-'));
    try {
      cpSync(XML_DIR, dir, { recursive: true });
      const c = makeCollector('libvirt-v2', 'v2', [`--collector.libvirt.xml-dir=${dir}`]);
      assert.equal(samples(await scrape(c), `cpus${L(UUID_2A)}`).length, 1);
      rmSync(join(dir, 'instance-0000002a.xml'));
      assert.deepEqual(samples(await scrape(c), 'ceems_compute_unit_cpus'), [
        `ceems_compute_unit_cpus${L(UUID_2A)} 4`,
        `ceems_compute_unit_cpus${L('instance-0000002c')} 2`,
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('maps PCI passthrough and vGPU hostdevs to GPUs; recomputes on instance changes or after 15 min', async () => {
    const gpu = (minor: number, over: Partial<GpuDevice>): GpuDevice => ({
      vendor: 'nvidia',
      minor,
      index: String(minor),
      name: 'NVIDIA A100-PCIE-40GB',
      uuid: `GPU-${minor}aaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee`,
      busId: `0000:${minor}0:00.0`,
      smCount: 108,
      partitioned: false,
      vgpuEnabled: false,
      instances: [],
      deviceIds: [],
      mdevUuids: [],
      ...over,
    });
    let devices = [
      gpu(0, { busId: '0000:3b:00.0' }),
      gpu(1, { vgpuEnabled: true, mdevUuids: ['c73f1fa6-489e-4834-9476-d70dabd98c40'] }),
    ];
    let t = 0;
    const c = makeCollector('libvirt-v2', 'v2', [], () => t);
    c.useGpus({ devices: () => devices });
    const row = (i: number) =>
      `{cgrouphostname="",gpuiid="",gpuuuid="GPU-${i}aaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",hindex="compute-0/gpu-${i}",hostname="compute-0",index="${i}",manager="libvirt",uuid="${UUID_2A}"}`;
    const text = await scrape(c);
    assert.deepEqual(samples(text, 'gpu_index_flag'), [
      `ceems_compute_unit_gpu_index_flag${row(0)} 1`,
      `ceems_compute_unit_gpu_index_flag${row(1)} 1`,
    ]);
    assert.ok(
      text.includes(
        '# HELP ceems_compute_unit_gpu_index_flag A value > 0 indicates running instance using current GPU\n',
      ),
    );
    // same instances, 14 min later: the cached mapping is kept although the device list changed
    devices = [gpu(0, { busId: '0000:3b:00.0' })];
    t = 14 * 60_000;
    assert.equal(samples(await scrape(c), 'gpu_index_flag').length, 2);
    t = 15 * 60_000;
    assert.deepEqual(samples(await scrape(c), 'gpu_index_flag'), [
      `ceems_compute_unit_gpu_index_flag${row(0)} 1`,
    ]);
  });

  it('creates through the definition with no GPUs and no VMs yet', async () => {
    const { flags } = parseFlags(allFlags(), ['--collector.cgroups.force-version=v2']);
    const c = await libvirt.create({
      hostname: 'compute-0',
      procfs: join(FIX, 'cgroup/proc'),
      sysfs: join(FIX, 'cgroup/proc'), // no bus/pci/devices: no GPU
      cgroupfs: join(FIX, 'cgroup/v2'),
      flags,
      logger: createLogger({ level: 'silent' }),
    });
    const out = new FamilySet();
    await c.update(out, new AbortController().signal);
    assert.equal(
      encode(out.families.values()),
      '# HELP ceems_compute_units Total number of jobs\n# TYPE ceems_compute_units gauge\nceems_compute_units{hostname="compute-0",manager="libvirt"} 0\n',
    );
  });
});
