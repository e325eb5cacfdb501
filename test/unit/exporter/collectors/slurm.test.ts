import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { encode } from '../../../../src/common/exposition.js';
import { parseFlags } from '../../../../src/common/flags.js';
import { createLogger } from '../../../../src/common/logger.js';
import { FamilySet } from '../../../../src/exporter/collector.js';
import { slurm } from '../../../../src/exporter/collectors/slurm.js';

const FIX = resolve(import.meta.dirname, '../../../fixtures/cgroup');

async function scrapeSlurm(cgroupfs: string, args: string[]): Promise<string> {
  const { flags } = parseFlags(slurm.flags, args);
  const c = await slurm.create({
    hostname: 'node1',
    procfs: join(FIX, 'proc'),
    sysfs: join(FIX, 'sys'),
    cgroupfs,
    flags,
    logger: createLogger({ level: 'silent' }),
  });
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
