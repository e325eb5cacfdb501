import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { lookPath, runCommand } from '../../../../src/exporter/gpu/command.js';
import { createGpuInventory, GpuInventory } from '../../../../src/exporter/gpu/inventory.js';
import { detectVendor, normalizeBusId } from '../../../../src/exporter/gpu/vendor.js';
import { fixture } from './fixtures.js';
import { gpuContext, recordingLogger } from './helpers.js';

const NVIDIA_SMI = fixture('bin/nvidia-smi');
const AMD_SMI = fixture('bin/amd-smi');
const ROCM_SMI = fixture('bin/rocm-smi');

function useFixture(prefix: string, mode = 'ok'): void {
  process.env.FAKE_SMI_FIXTURE = fixture(prefix);
  process.env.FAKE_SMI_MODE = mode;
}

afterEach(() => {
  delete process.env.FAKE_SMI_FIXTURE;
  delete process.env.FAKE_SMI_MODE;
});

describe('SMI command runner', () => {
  it('returns stdout of a successful command', async () => {
    useFixture('nvidia/h100x4');
    assert.match(await runCommand(NVIDIA_SMI, ['-L'], 5000), /^GPU 3: NVIDIA H100 80GB HBM3/m);
  });

  it('names the command, exit code and reason (stdout for nvidia-smi, stderr for amd-smi) on failure', async () => {
    useFixture('nvidia/h100x4', 'fail');
    await assert.rejects(runCommand(NVIDIA_SMI, ['--query', '--xml-format'], 5000), {
      name: 'CommandError',
      message: `command '${NVIDIA_SMI} --query --xml-format' failed with exit code 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.`,
    });
    await assert.rejects(runCommand(AMD_SMI, ['static'], 5000), /exit code 1: AMDSMI_STATUS_DRM_ERROR/);
  });

  it('kills a hanging command (and its children) at the timeout', async () => {
    useFixture('nvidia/h100x4', 'hang');
    await assert.rejects(runCommand(NVIDIA_SMI, ['-L'], 200), {
      name: 'CommandError',
      message: `command '${NVIDIA_SMI} -L' timed out after 200 ms`,
    });
  });

  it('reports a missing binary', async () => {
    await assert.rejects(
      runCommand('/nonexistent/nvidia-smi', [], 1000),
      /cannot run '\/nonexistent\/nvidia-smi': ENOENT/,
    );
  });

  it('looks binaries up in $PATH like exec.LookPath (executable files only)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ceems-path-'));
    try {
      writeFileSync(join(dir, 'rocm-smi'), 'not executable', { mode: 0o644 });
      assert.equal(lookPath('rocm-smi', dir), undefined);
      assert.equal(lookPath('amd-smi', `${dir}:${fixture('bin')}`), AMD_SMI);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('vendor detection', () => {
  it('finds NVIDIA and AMD display/accelerator devices and ignores BMC VGA and NICs', () => {
    assert.equal(detectVendor(fixture('sysfs/nvidia')), 'nvidia');
    assert.equal(detectVendor(fixture('sysfs/mi300x-cpx')), 'amd');
    assert.equal(detectVendor(fixture('sysfs/nogpu')), undefined);
    assert.equal(detectVendor('/nonexistent'), undefined);
  });

  it('normalises PCI bus ids', () => {
    assert.equal(normalizeBusId('00000000:3B:00.0'), '0000:3b:00.0');
    assert.equal(normalizeBusId('0000:c5:00.1'), '0000:c5:00.1');
    assert.equal(normalizeBusId('3b:00.0'), '0000:3b:00.0');
    assert.equal(normalizeBusId('GPU-1'), undefined);
  });
});

describe('GPU inventory', () => {
  it('is off with --collector.gpu.type=nogpu or without GPU devices', async () => {
    const { logger } = recordingLogger();
    assert.equal(
      await createGpuInventory(gpuContext(['--collector.gpu.type=nogpu'], 'sysfs/nvidia', logger), 'slurm'),
      undefined,
    );
    assert.equal(await createGpuInventory(gpuContext([], 'sysfs/nogpu', logger), 'slurm'), undefined);
  });

  it('discovers NVIDIA GPUs, MIG UUIDs and applies the SLURM order map', async () => {
    useFixture('nvidia/a100x2-mig');
    const { logger } = recordingLogger();
    const ctx = gpuContext(
      [
        `--collector.gpu.nvidia-smi-path=${NVIDIA_SMI}`,
        '--collector.slurm.gpu-order-map=0:1.5,1:0,2:1.1,3:1.13',
      ],
      'sysfs/nvidia',
      logger,
    );
    const inv = await createGpuInventory(ctx, 'slurm');
    assert.ok(inv);
    const [full, mig] = inv.devices();
    assert.equal(full!.index, '1');
    assert.deepEqual(
      mig!.instances.map((i) => [i.gpuInstanceId, i.index, i.uuid.slice(0, 12)]),
      [
        [1, '2', 'MIG-2c4e6a8b'],
        [5, '0', 'MIG-5d7f9b1c'],
        [13, '3', 'MIG-8e0a2c4d'],
      ],
    );
  });

  it('rejects a malformed order map at start-up', async () => {
    const { logger } = recordingLogger();
    const ctx = gpuContext([`--collector.slurm.gpu-order-map=0:1,x`], 'sysfs/nvidia', logger);
    await assert.rejects(createGpuInventory(ctx, 'slurm'), {
      name: 'GpuOrderMapError',
      message:
        "invalid entry 'x' in --collector.slurm.gpu-order-map: expected <slurm_index>:<minor>[.<gpu_instance_id>]",
    });
  });

  it('queries vGPUs for libvirt only', async () => {
    useFixture('nvidia/a100x2-vgpuhost');
    const { logger } = recordingLogger();
    const args = [`--collector.gpu.nvidia-smi-path=${NVIDIA_SMI}`, '--collector.gpu.type=nvidia'];
    const lv = await createGpuInventory(gpuContext(args, 'sysfs/nogpu', logger), 'libvirt');
    assert.equal(lv!.devices()[0]!.mdevUuids.length, 2);
    const slurm = await createGpuInventory(gpuContext(args, 'sysfs/nogpu', logger), 'slurm');
    assert.equal(slurm!.devices()[0]!.mdevUuids.length, 0);
  });

  it('prefers amd-smi and falls back to rocm-smi for AMD GPUs', async () => {
    const { logger } = recordingLogger();
    useFixture('amd/amd-smi-mi300x-cpx.json');
    const viaAmd = await createGpuInventory(
      gpuContext([`--collector.gpu.amd-smi-path=${AMD_SMI}`], 'sysfs/mi300x-cpx', logger),
      'k8s',
    );
    assert.equal(viaAmd!.vendor, 'amd');
    assert.equal(viaAmd!.devices()[1]!.instances[7]!.deviceIds[0], 'amdgpu_xcp.13');
    useFixture('amd/rocm-smi-mi300x-cpx.json');
    const oldPath = process.env.PATH;
    process.env.PATH = '/usr/bin:/bin'; // no amd-smi here: rocm-smi from the flag is used
    try {
      const viaRocm = await createGpuInventory(
        gpuContext([`--collector.gpu.rocm-smi-path=${ROCM_SMI}`], 'sysfs/mi300x-cpx', logger),
        'k8s',
      );
      assert.deepEqual(
        viaRocm!.devices().map((d) => [d.uuid, d.instances.length, d.smCount]),
        [
          ['PHJZ2410000401', 8, 304],
          ['PHJZ2410000587', 8, 304],
        ],
      );
      const none = await createGpuInventory(gpuContext([], 'sysfs/mi300x-cpx', logger), 'k8s');
      assert.deepEqual(none!.devices(), []);
    } finally {
      process.env.PATH = oldPath;
    }
  });

  it('keeps the last good list when a later run hangs, fails or prints garbage, and logs why', async () => {
    useFixture('nvidia/h100x4');
    const rec = recordingLogger();
    const inv = new GpuInventory({
      vendor: 'nvidia',
      sysfs: '/nonexistent',
      logger: rec.logger,
      nvidiaSmiPath: NVIDIA_SMI,
      timeoutMs: 300,
    });
    assert.equal(await inv.refresh(), true);
    const good = inv.devices();
    assert.equal(good.length, 4);
    for (const [mode, why] of [
      ['hang', /timed out after 300 ms/],
      ['fail', /failed with exit code 9: NVIDIA-SMI has failed/],
      ['garbage', /^invalid nvidia-smi XML: /],
    ] as const) {
      process.env.FAKE_SMI_MODE = mode;
      assert.equal(await inv.refresh(), false);
      assert.equal(inv.devices(), good);
      const last = rec.lines.at(-1)!;
      assert.equal(last.msg, 'GPU discovery failed; keeping the last known GPU list');
      assert.equal(last.cached_gpus, 4);
      assert.match(String(last.err), why);
    }
  });

  it('an initial failure leaves an empty list and is retried in the background', async () => {
    useFixture('nvidia/h100x4', 'fail');
    let now = 1_000_000;
    const inv = new GpuInventory({
      vendor: 'nvidia',
      sysfs: '/nonexistent',
      logger: recordingLogger().logger,
      nvidiaSmiPath: NVIDIA_SMI,
      retryMs: 60_000,
      refreshMs: 900_000,
      now: () => now,
    });
    assert.equal(await inv.refresh(), false);
    assert.deepEqual(inv.devices(), []);
    process.env.FAKE_SMI_MODE = 'ok';
    now += 30_000;
    inv.devices(); // too early for a retry
    assert.equal(inv.lastSuccess, Number.NEGATIVE_INFINITY);
    now += 30_000;
    assert.deepEqual(inv.devices(), []); // starts the retry, still answers from the cache
    await inv.refresh(); // joins the running discovery
    assert.equal(inv.devices().length, 4);
    assert.equal(inv.lastSuccess, now);
  });

  it('re-discovers in the background once the list is older than the refresh interval', async () => {
    useFixture('nvidia/h100x4');
    let now = 5_000_000;
    const inv = new GpuInventory({
      vendor: 'nvidia',
      sysfs: '/nonexistent',
      logger: recordingLogger().logger,
      nvidiaSmiPath: NVIDIA_SMI,
      refreshMs: 900_000,
      now: () => now,
    });
    await inv.refresh();
    const first = inv.devices();
    useFixture('nvidia/a100x2-mig');
    now += 899_000;
    assert.equal(inv.devices(), first);
    now += 1_000;
    assert.equal(inv.devices(), first);
    await inv.refresh();
    assert.equal(inv.devices().length, 2);
  });
});
