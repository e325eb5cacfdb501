import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { encode } from '../../../../src/common/exposition.js';
import { parseFlags } from '../../../../src/common/flags.js';
import { createLogger } from '../../../../src/common/logger.js';
import { FamilySet } from '../../../../src/exporter/collector.js';
import { slurm } from '../../../../src/exporter/collectors/slurm.js';
import { type GpuDevice, SlurmGpuMapper } from '../../../../src/exporter/gpu/index.js';
import type { SlurmCollector } from '../../../../src/exporter/units/slurm.js';

const FIX = resolve(import.meta.dirname, '../../../fixtures/cgroup');

async function scrapeSlurm(
  cgroupfs: string,
  args: string[],
  withGpus?: (c: SlurmCollector) => void,
): Promise<string> {
  const { flags } = parseFlags(slurm.flags, args);
  const c = (await slurm.create({
    hostname: 'node1',
    procfs: join(FIX, 'proc'),
    sysfs: join(FIX, 'sys'),
    cgroupfs,
    flags,
    logger: createLogger({ level: 'silent' }),
  })) as SlurmCollector;
  withGpus?.(c);
  const out = new FamilySet();
  await c.update(out, new AbortController().signal);
  return encode(out.families.values());
}

const samples = (text: string, needle: string) =>
  text.split('\n').filter((l) => !l.startsWith('#') && l.includes(needle));

describe('slurm collector', () => {
  it('cgroup v2: drops stale jobs, exports the others with swap and PSI families', async () => {
    const text = await scrapeSlurm(join(FIX, 'v2'), [
      '--collector.cgroups.force-version=v2',
      '--collector.slurm.swap-memory-metrics',
      '--collector.slurm.psi-metrics',
      '--collector.gpu.type=nogpu',
    ]);
    assert.deepEqual(samples(text, 'ceems_compute_unit_cpu_user_seconds_total'), [
      'ceems_compute_unit_cpu_user_seconds_total{cgrouphostname="",hostname="node1",manager="slurm",uuid="1009248"} 45',
      'ceems_compute_unit_cpu_user_seconds_total{cgrouphostname="",hostname="node1",manager="slurm",uuid="1009252"} 2.5',
      'ceems_compute_unit_cpu_user_seconds_total{cgrouphostname="nodeA",hostname="node1",manager="slurm",uuid="1009251"} 1',
    ]);
    // 1009249 has no live process (stale); 1009250 is live but unreadable
    assert.equal(samples(text, 'uuid="1009249"').length, 0);
    assert.deepEqual(samples(text, 'ceems_compute_unit_collect_error'), [
      'ceems_compute_unit_collect_error{cgrouphostname="",hostname="node1",manager="slurm",uuid="1009250"} 1',
    ]);
    assert.deepEqual(samples(text, 'ceems_compute_units'), [
      'ceems_compute_units{hostname="node1",manager="slurm"} 4',
    ]);
    assert.equal(samples(text, 'ceems_compute_unit_memsw_used_bytes').length, 3);
    assert.equal(samples(text, 'ceems_compute_unit_cpu_psi_seconds').length, 3);
    // slurm never exports block IO
    assert.equal(samples(text, 'blkio').length, 0);
  });

  it('cgroup v1 on separately mounted controllers (Debian slurm_<node> root)', async () => {
    const text = await scrapeSlurm(join(FIX, 'v1'), [
      '--collector.cgroups.force-version=v1',
      '--collector.gpu.type=nogpu',
    ]);
    assert.equal(
      text,
      [
        '# HELP ceems_compute_unit_cpu_system_seconds_total Total job CPU system seconds',
        '# TYPE ceems_compute_unit_cpu_system_seconds_total counter',
        'ceems_compute_unit_cpu_system_seconds_total{cgrouphostname="vm",hostname="node1",manager="slurm",uuid="12"} 0.25',
        'ceems_compute_unit_cpu_system_seconds_total{cgrouphostname="vm",hostname="node1",manager="slurm",uuid="13"} 4.8',
        '# HELP ceems_compute_unit_cpu_user_seconds_total Total job CPU user seconds',
        '# TYPE ceems_compute_unit_cpu_user_seconds_total counter',
        'ceems_compute_unit_cpu_user_seconds_total{cgrouphostname="vm",hostname="node1",manager="slurm",uuid="12"} 18.3',
        'ceems_compute_unit_cpu_user_seconds_total{cgrouphostname="vm",hostname="node1",manager="slurm",uuid="13"} 1.2',
        '# HELP ceems_compute_unit_cpus Total number of job CPUs',
        '# TYPE ceems_compute_unit_cpus gauge',
        'ceems_compute_unit_cpus{cgrouphostname="vm",hostname="node1",manager="slurm",uuid="12"} 1',
        'ceems_compute_unit_cpus{cgrouphostname="vm",hostname="node1",manager="slurm",uuid="13"} 2',
        '# HELP ceems_compute_unit_memory_cache_bytes Memory cache used in bytes',
        '# TYPE ceems_compute_unit_memory_cache_bytes gauge',
        'ceems_compute_unit_memory_cache_bytes{cgrouphostname="vm",hostname="node1",manager="slurm",uuid="12"} 1.486848e+06',
        'ceems_compute_unit_memory_cache_bytes{cgrouphostname="vm",hostname="node1",manager="slurm",uuid="13"} 4.8576e+06',
        '# HELP ceems_compute_unit_memory_fail_count Memory fail count',
        '# TYPE ceems_compute_unit_memory_fail_count gauge',
        'ceems_compute_unit_memory_fail_count{cgrouphostname="vm",hostname="node1",manager="slurm",uuid="12"} 0',
        'ceems_compute_unit_memory_fail_count{cgrouphostname="vm",hostname="node1",manager="slurm",uuid="13"} 3',
        '# HELP ceems_compute_unit_memory_rss_bytes Memory RSS used in bytes',
        '# TYPE ceems_compute_unit_memory_rss_bytes gauge',
        'ceems_compute_unit_memory_rss_bytes{cgrouphostname="vm",hostname="node1",manager="slurm",uuid="12"} 6.815744e+07',
        'ceems_compute_unit_memory_rss_bytes{cgrouphostname="vm",hostname="node1",manager="slurm",uuid="13"} 1e+08',
        '# HELP ceems_compute_unit_memory_total_bytes Memory total in bytes',
        '# TYPE ceems_compute_unit_memory_total_bytes gauge',
        'ceems_compute_unit_memory_total_bytes{cgrouphostname="vm",hostname="node1",manager="slurm",uuid="12"} 2.68435456e+08',
        'ceems_compute_unit_memory_total_bytes{cgrouphostname="vm",hostname="node1",manager="slurm",uuid="13"} 3.3554432e+10',
        '# HELP ceems_compute_unit_memory_used_bytes Memory used in bytes',
        '# TYPE ceems_compute_unit_memory_used_bytes gauge',
        'ceems_compute_unit_memory_used_bytes{cgrouphostname="vm",hostname="node1",manager="slurm",uuid="12"} 9.2340224e+07',
        'ceems_compute_unit_memory_used_bytes{cgrouphostname="vm",hostname="node1",manager="slurm",uuid="13"} 1.048576e+08',
        '# HELP ceems_compute_unit_rdma_hca_handles Current number of RDMA HCA handles',
        '# TYPE ceems_compute_unit_rdma_hca_handles gauge',
        'ceems_compute_unit_rdma_hca_handles{cgrouphostname="vm",device="mlx5_0",hostname="node1",manager="slurm",uuid="12"} 3',
        '# HELP ceems_compute_unit_rdma_hca_objects Current number of RDMA HCA objects',
        '# TYPE ceems_compute_unit_rdma_hca_objects gauge',
        'ceems_compute_unit_rdma_hca_objects{cgrouphostname="vm",device="mlx5_0",hostname="node1",manager="slurm",uuid="12"} 17',
        '# HELP ceems_compute_units Total number of jobs',
        '# TYPE ceems_compute_units gauge',
        'ceems_compute_units{hostname="node1",manager="slurm"} 2',
        '',
      ].join('\n'),
    );
  });

  it('maps jobs to GPUs from the environ of their first process with GPU ids', async () => {
    const gpu = (minor: number): GpuDevice => ({
      vendor: 'nvidia',
      minor,
      index: String(minor),
      name: 'NVIDIA A100-SXM4-80GB',
      uuid: `GPU-0000000${minor}-1111-2222-3333-444444444444`,
      busId: `0000:0${minor}:00.0`,
      smCount: 108,
      partitioned: false,
      vgpuEnabled: false,
      instances: [],
      deviceIds: [],
      mdevUuids: [],
    });
    const devices = [gpu(0), gpu(1), gpu(2)];
    const text = await scrapeSlurm(
      join(FIX, 'v2'),
      ['--collector.cgroups.force-version=v2', '--collector.gpu.type=nogpu'],
      (c) =>
        c.useGpus(
          new SlurmGpuMapper(
            { devices: () => devices },
            {
              procfs: join(FIX, 'proc'),
              hostname: 'node1',
              gresConfigFile: join(FIX, 'no-gres.conf'),
              logger: createLogger({ level: 'silent' }),
            },
          ),
        ),
    );
    // job 1009248: the step_0 task (first in walk order) has SLURM_STEP_GPUS=1; nodeA job 1009251 has 2
    const row = (host: string, uuid: string, i: number) =>
      `{cgrouphostname="${host}",gpuiid="",gpuuuid="GPU-0000000${i}-1111-2222-3333-444444444444",hindex="node1/gpu-${i}",hostname="node1",index="${i}",manager="slurm",uuid="${uuid}"}`;
    assert.deepEqual(samples(text, 'ceems_compute_unit_gpu_'), [
      `ceems_compute_unit_gpu_index_flag${row('', '1009248', 1)} 1`,
      `ceems_compute_unit_gpu_index_flag${row('nodeA', '1009251', 2)} 1`,
      `ceems_compute_unit_gpu_sm_count${row('', '1009248', 1)} 108`,
      `ceems_compute_unit_gpu_sm_count${row('nodeA', '1009251', 2)} 108`,
    ]);
    assert.ok(
      text.includes(
        '# HELP ceems_compute_unit_gpu_index_flag A value > 0 indicates the job using current GPU\n',
      ),
    );
  });

  it('accepts the hidden deprecated flag aliases', () => {
    const { flags } = parseFlags(slurm.flags, [
      '--collector.slurm.swap.memory.metrics',
      '--collector.slurm.psi.metrics',
    ]);
    assert.equal(flags.bool('collector.slurm.swap-memory-metrics'), true);
    assert.equal(flags.bool('collector.slurm.psi-metrics'), true);
    assert.deepEqual(flags.usedAliases, [
      'collector.slurm.swap.memory.metrics',
      'collector.slurm.psi.metrics',
    ]);
  });

  it('fails at start-up without SLURM cgroups, naming the directory', async () => {
    await assert.rejects(
      scrapeSlurm(join(FIX, 'proc'), ['--collector.cgroups.force-version=v2']),
      /no SLURM cgroups found under .*proc\/system\.slice/,
    );
  });
});
