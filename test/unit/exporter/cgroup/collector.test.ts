import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { encode } from '../../../../src/common/exposition.js';
import { parseFlags } from '../../../../src/common/flags.js';
import { createLogger } from '../../../../src/common/logger.js';
import {
  CgroupCollector,
  type UnitSubCollector,
  type UnitSubCollectorDefinition,
} from '../../../../src/exporter/cgroup/collector.js';
import { detectCgroupVersion, managerLayout, v1Hierarchy } from '../../../../src/exporter/cgroup/layout.js';
import type { StatsOptions } from '../../../../src/exporter/cgroup/stats.js';
import { FamilySet, NoDataError } from '../../../../src/exporter/collector.js';

const FIX = resolve(import.meta.dirname, '../../../fixtures/cgroup');
const PROC = join(FIX, 'proc');
const quiet = createLogger({ level: 'silent' });

function collector(
  cgroupfs: string,
  version: 'v1' | 'v2',
  stats: Partial<Omit<StatsOptions, 'memTotal' | 'swapTotal'>> = {},
): CgroupCollector {
  return new CgroupCollector({
    layout: managerLayout('slurm', { cgroupfs, version, activeSubsystem: 'cpuacct' }),
    hostname: 'node1',
    procfs: PROC,
    logger: quiet,
    stats: { cpuCount: 'cpuset', swap: false, psi: false, blkio: false, ...stats },
  });
}

function scrapeText(c: CgroupCollector): { text: string; ids: string[] } {
  const out = new FamilySet();
  const units = c.collect(out, c.discover());
  return { text: encode(out.families.values()), ids: units.map((u) => u.id) };
}

const grep = (text: string, needle: string) =>
  text.split('\n').filter((l) => !l.startsWith('#') && l.includes(needle));

describe('cgroup version detection', () => {
  it('honours the forced version and inspects the given root otherwise [D-EXP-12]', () => {
    assert.equal(detectCgroupVersion(FIX, 'v2'), 'v2');
    assert.equal(detectCgroupVersion(FIX, 'v1'), 'v1');
    // a fixture directory is not a cgroup2 mount
    assert.equal(detectCgroupVersion(FIX), 'v1');
    assert.throws(() => detectCgroupVersion(join(FIX, 'missing')), /cannot inspect cgroup root .*missing/);
  });

  it('falls back to separately mounted cpuacct when cpu,cpuacct does not exist', () => {
    assert.equal(v1Hierarchy(join(FIX, 'v1'), 'cpuacct'), join(FIX, 'v1/cpuacct'));
    assert.equal(v1Hierarchy(join(FIX, 'v1'), 'cpu'), join(FIX, 'v1/cpu'));
    assert.equal(v1Hierarchy(join(FIX, 'v1-comounted'), 'cpuacct'), join(FIX, 'v1-comounted/cpu,cpuacct'));
    assert.equal(v1Hierarchy(join(FIX, 'v1'), 'memory'), join(FIX, 'v1/memory'));
  });

  it('finds slurmstepd scopes anywhere below system.slice, first match per branch', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'cgroots-'));
    try {
      for (const d of ['slurmstepd.scope/job_1/step_0', 'slurm.slice/nodeB_slurmstepd.scope', 'sshd.service'])
        mkdirSync(join(tmp, 'system.slice', d), { recursive: true });
      const l = managerLayout('slurm', { cgroupfs: tmp, version: 'v2', activeSubsystem: 'cpuacct' });
      assert.deepEqual(l.roots, [
        join(tmp, 'system.slice/slurm.slice/nodeB_slurmstepd.scope'),
        join(tmp, 'system.slice/slurmstepd.scope'),
      ]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('fails start-up when no SLURM cgroup root exists', () => {
    assert.throws(
      () => managerLayout('slurm', { cgroupfs: join(FIX, 'v1'), version: 'v2', activeSubsystem: 'cpuacct' }),
      /no SLURM cgroups found under .*v1\/system\.slice \(cgroup v2\)/,
    );
  });
});

describe('cgroup v2 units', () => {
  it('exports every per-unit family with swap, PSI and block IO', () => {
    const { text, ids } = scrapeText(
      collector(join(FIX, 'v2'), 'v2', { swap: true, psi: true, blkio: true }),
    );
    assert.deepEqual(ids, ['1009251', '1009248', '1009249', '1009250', '1009252']);
    const L = 'cgrouphostname="",hostname="node1",manager="slurm",uuid="1009248"';
    assert.deepEqual(grep(text, 'uuid="1009248"'), [
      `ceems_compute_unit_blkio_read_total_bytes{${L.replace(',hostname', ',device="sda",hostname')}} 1.048576e+06`,
      `ceems_compute_unit_blkio_read_total_requests{${L.replace(',hostname', ',device="sda",hostname')}} 256`,
      `ceems_compute_unit_blkio_write_total_bytes{${L.replace(',hostname', ',device="nvme0n1",hostname')}} 4096`,
      `ceems_compute_unit_blkio_write_total_bytes{${L.replace(',hostname', ',device="sda",hostname')}} 2.097152e+06`,
      `ceems_compute_unit_blkio_write_total_requests{${L.replace(',hostname', ',device="nvme0n1",hostname')}} 1`,
      `ceems_compute_unit_blkio_write_total_requests{${L.replace(',hostname', ',device="sda",hostname')}} 512`,
      `ceems_compute_unit_cpu_psi_seconds{${L}} 1.5`,
      `ceems_compute_unit_cpu_system_seconds_total{${L}} 15`,
      `ceems_compute_unit_cpu_user_seconds_total{${L}} 45`,
      `ceems_compute_unit_cpus{${L}} 5`,
      `ceems_compute_unit_memory_cache_bytes{${L}} 1e+09`,
      `ceems_compute_unit_memory_fail_count{${L}} 2`,
      `ceems_compute_unit_memory_psi_seconds{${L}} 0.25`,
      `ceems_compute_unit_memory_rss_bytes{${L}} 3e+09`,
      `ceems_compute_unit_memory_total_bytes{${L}} 8.589934592e+09`,
      `ceems_compute_unit_memory_used_bytes{${L}} 4.111222333e+09`,
      `ceems_compute_unit_memsw_fail_count{${L}} 0`,
      `ceems_compute_unit_memsw_total_bytes{${L}} 1.073741824e+09`,
      `ceems_compute_unit_memsw_used_bytes{${L}} 5.24288e+07`,
      `ceems_compute_unit_rdma_hca_handles{${L.replace(',hostname', ',device="mlx5_0",hostname')}} 2`,
      `ceems_compute_unit_rdma_hca_objects{${L.replace(',hostname', ',device="mlx5_0",hostname')}} 2000`,
    ]);
    assert.ok(
      text.includes('# HELP ceems_compute_units Total number of jobs\n# TYPE ceems_compute_units gauge\n'),
    );
    assert.deepEqual(grep(text, 'ceems_compute_units{'), [
      'ceems_compute_units{hostname="node1",manager="slurm"} 5',
    ]);
  });

  it('uses host MemTotal/SwapTotal for "max" limits and reads the multiple-slurmd host', () => {
    const { text } = scrapeText(collector(join(FIX, 'v2'), 'v2', { swap: true }));
    assert.deepEqual(
      grep(text, 'total_bytes{cgrouphostname="",hostname="node1",manager="slurm",uuid="1009252"}'),
      [
        'ceems_compute_unit_memory_total_bytes{cgrouphostname="",hostname="node1",manager="slurm",uuid="1009252"} 3.3554432e+10',
        'ceems_compute_unit_memsw_total_bytes{cgrouphostname="",hostname="node1",manager="slurm",uuid="1009252"} 8.388608e+09',
      ],
    );
    assert.deepEqual(grep(text, 'cpus{cgrouphostname="nodeA"'), [
      'ceems_compute_unit_cpus{cgrouphostname="nodeA",hostname="node1",manager="slurm",uuid="1009251"} 2',
    ]);
  });

  it('omits optional families when disabled and marks unreadable units with collect_error', () => {
    const { text } = scrapeText(collector(join(FIX, 'v2'), 'v2'));
    assert.equal(grep(text, 'memsw_').length, 0);
    assert.equal(grep(text, 'psi_').length, 0);
    assert.equal(grep(text, 'blkio_').length, 0);
    assert.equal(grep(text, 'rdma_hca_objects{').length, 1);
    assert.deepEqual(grep(text, 'uuid="1009250"'), [
      'ceems_compute_unit_collect_error{cgrouphostname="",hostname="node1",manager="slurm",uuid="1009250"} 1',
    ]);
    assert.ok(
      text.includes(
        '# HELP ceems_compute_unit_collect_error Indicates collection error, 0=no error, 1=error\n',
      ),
    );
  });

  it('records children and existing PIDs of every unit', () => {
    const units = collector(join(FIX, 'v2'), 'v2').discover();
    const job = units.find((u) => u.id === '1009248')!;
    assert.equal(job.rel, '/system.slice/slurmstepd.scope/job_1009248');
    assert.deepEqual(job.children, [
      '/system.slice/slurmstepd.scope/job_1009248/step_0',
      '/system.slice/slurmstepd.scope/job_1009248/step_0/user',
      '/system.slice/slurmstepd.scope/job_1009248/step_0/user/task_0',
      '/system.slice/slurmstepd.scope/job_1009248/step_batch',
      '/system.slice/slurmstepd.scope/job_1009248/step_extern',
    ]);
    assert.deepEqual(job.pids, [4202, 4203, 4201]);
    // PID 9999 is not in the fake procfs
    assert.deepEqual(units.find((u) => u.id === '1009249')!.pids, []);
  });

  it('skips a unit whose cgroup vanishes between listing and reading; the scrape succeeds', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'cgv2-'));
    try {
      cpSync(join(FIX, 'v2'), tmp, { recursive: true });
      const c = collector(tmp, 'v2');
      const units = c.discover();
      rmSync(join(tmp, 'system.slice/slurmstepd.scope/job_1009252'), { recursive: true });
      const out = new FamilySet();
      const present = c.collect(out, units);
      assert.ok(!present.some((u) => u.id === '1009252'));
      const text = encode(out.families.values());
      assert.equal(grep(text, 'uuid="1009252"').length, 0);
      assert.deepEqual(grep(text, 'ceems_compute_units{'), [
        'ceems_compute_units{hostname="node1",manager="slurm"} 4',
      ]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('cgroup v1 units', () => {
  it('reads separately mounted controllers under slurm_<node> (cgrouphostname from the root)', () => {
    const { text, ids } = scrapeText(collector(join(FIX, 'v1'), 'v1', { swap: true, blkio: true }));
    assert.deepEqual(ids, ['12', '13']);
    const L = 'cgrouphostname="vm",hostname="node1",manager="slurm",uuid="12"';
    const D = (dev: string) => L.replace(',hostname', `,device="${dev}",hostname`);
    assert.deepEqual(grep(text, 'uuid="12"'), [
      // recursive files are read after the throttle ones and win for 8:0; 259:0 only has throttle rows
      `ceems_compute_unit_blkio_read_total_bytes{${D('sda')}} 40960`,
      `ceems_compute_unit_blkio_read_total_requests{${D('sda')}} 10`,
      `ceems_compute_unit_blkio_write_total_bytes{${D('nvme0n1')}} 65536`,
      `ceems_compute_unit_blkio_write_total_bytes{${D('sda')}} 8192`,
      `ceems_compute_unit_blkio_write_total_requests{${D('nvme0n1')}} 16`,
      `ceems_compute_unit_blkio_write_total_requests{${D('sda')}} 2`,
      `ceems_compute_unit_cpu_system_seconds_total{${L}} 0.25`,
      `ceems_compute_unit_cpu_user_seconds_total{${L}} 18.3`,
      `ceems_compute_unit_cpus{${L}} 1`,
      `ceems_compute_unit_memory_cache_bytes{${L}} 1.486848e+06`,
      `ceems_compute_unit_memory_fail_count{${L}} 0`,
      `ceems_compute_unit_memory_rss_bytes{${L}} 6.815744e+07`,
      `ceems_compute_unit_memory_total_bytes{${L}} 2.68435456e+08`,
      `ceems_compute_unit_memory_used_bytes{${L}} 9.2340224e+07`,
      `ceems_compute_unit_memsw_fail_count{${L}} 0`,
      `ceems_compute_unit_memsw_total_bytes{${L}} 2.68435456e+08`,
      `ceems_compute_unit_memsw_used_bytes{${L}} 9.2340224e+07`,
      `ceems_compute_unit_rdma_hca_handles{${D('mlx5_0')}} 3`,
      `ceems_compute_unit_rdma_hca_objects{${D('mlx5_0')}} 17`,
    ]);
    // 2^64-1 means unlimited (host MemTotal); the kernel's 9223372036854771712 is exported as is (kept quirk)
    const L13 = 'cgrouphostname="vm",hostname="node1",manager="slurm",uuid="13"';
    assert.deepEqual(grep(text, `total_bytes{${L13}}`), [
      `ceems_compute_unit_memory_total_bytes{${L13}} 3.3554432e+10`,
      `ceems_compute_unit_memsw_total_bytes{${L13}} 9.223372036854772e+18`,
    ]);
    assert.deepEqual(grep(text, `cpus{${L13}}`), [`ceems_compute_unit_cpus{${L13}} 2`]);
    assert.deepEqual(grep(text, `_fail_count{${L13}}`), [
      `ceems_compute_unit_memory_fail_count{${L13}} 3`,
      `ceems_compute_unit_memsw_fail_count{${L13}} 1`,
    ]);
  });

  it('walks co-mounted cpu,cpuacct with the upstream slurm root', () => {
    const c = collector(join(FIX, 'v1-comounted'), 'v1');
    const { text, ids } = scrapeText(c);
    assert.deepEqual(ids, ['4242']);
    assert.deepEqual(c.discover()[0]!.pids, [5302]);
    const L = 'cgrouphostname="",hostname="node1",manager="slurm",uuid="4242"';
    assert.deepEqual(grep(text, 'cpu'), [
      `ceems_compute_unit_cpu_system_seconds_total{${L}} 1`,
      `ceems_compute_unit_cpu_user_seconds_total{${L}} 5`,
      `ceems_compute_unit_cpus{${L}} 4`,
    ]);
  });
});

describe('unit sub-collectors (perf, ebpf, rdma hook)', () => {
  const records: { level: string; msg: string; time?: number; subcollector?: string; err?: string }[] = [];
  const logger = createLogger({
    level: 'debug',
    format: 'json',
    write: (l: string) => records.push(JSON.parse(l)),
  });
  const sub = (
    name: string,
    update: UnitSubCollector['update'],
    stop?: () => void,
  ): UnitSubCollectorDefinition => ({
    name,
    enabled: (flags) => flags.bool('with-subs'),
    create: (_ctx, manager) => {
      assert.equal(manager, 'slurm');
      return { update, ...(stop ? { stop } : {}) };
    },
  });

  it('run after the cgroup metrics on the same units; failures are logged and keep their duration sample', async () => {
    const c = new CgroupCollector({
      layout: managerLayout('slurm', {
        cgroupfs: join(FIX, 'v2'),
        version: 'v2',
        activeSubsystem: 'cpuacct',
      }),
      hostname: 'node1',
      procfs: PROC,
      logger,
      stats: { cpuCount: 'cpuset', swap: false, psi: false, blkio: false },
    });
    const seen: string[] = [];
    const stopped: string[] = [];
    const defs = [
      sub(
        'ok',
        async (out, units) => {
          seen.push(...units.map((u) => u.uuid));
          out.emit('test_units', 'gauge', 'units seen', {}, units.length);
        },
        () => stopped.push('ok'),
      ),
      sub(
        'broken',
        async () => {
          throw new Error('kernel interface missing');
        },
        () => {
          throw new Error('cannot release');
        },
      ),
      sub('nodata', async () => {
        throw new NoDataError('no hardware');
      }),
    ];
    const flag = { name: 'with-subs', type: 'bool', default: false, help: '' } as const;
    const ctx = (argv: string[]) => ({
      hostname: 'node1',
      procfs: PROC,
      sysfs: PROC,
      cgroupfs: FIX,
      flags: parseFlags([flag], argv).flags,
      logger,
    });
    await c.enableSubCollectors(ctx([]), defs); // switched off by the flag: nothing runs
    const idle = new FamilySet();
    await c.runSubCollectors(idle, c.collect(idle, c.discover()), new AbortController().signal);
    assert.equal(idle.families.has('ceems_scrape_collector_duration_seconds'), false);

    await c.enableSubCollectors(ctx(['--with-subs']), defs);
    const out = new FamilySet();
    const units = c.collect(out, c.discover());
    await c.runSubCollectors(out, units, new AbortController().signal);
    assert.deepEqual(
      seen,
      units.map((u) => u.uuid),
    );
    assert.equal(out.families.get('test_units')!.samples[0]!.value, units.length);
    assert.deepEqual(
      out.families.get('ceems_scrape_collector_duration_seconds')!.samples.map((s) => s.labels),
      ['ok', 'broken', 'nodata'].map((subcollector) => ({ collector: 'slurm', subcollector })),
    );
    assert.deepEqual(
      records.filter((r) => r.subcollector).map((r) => [r.level, r.subcollector, r.msg, r.err]),
      [
        ['INFO', 'ok', 'Sub-collector enabled', undefined],
        ['INFO', 'broken', 'Sub-collector enabled', undefined],
        ['INFO', 'nodata', 'Sub-collector enabled', undefined],
        ['ERROR', 'broken', 'sub-collector failed', 'kernel interface missing'],
        ['DEBUG', 'nodata', 'sub-collector returned no data', 'no hardware'],
      ],
    );
    await c.stopSubCollectors();
    assert.deepEqual(stopped, ['ok']);
    assert.deepEqual(records.at(-1), {
      level: 'WARN',
      time: records.at(-1)!.time,
      subcollector: 'broken',
      err: 'cannot release',
      msg: 'sub-collector stop failed',
    });
  });
});

describe('unit files that are not regular files', () => {
  it('mark their unit with collect_error and are logged once per scrape, the other units unaffected', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'cgfifo-'));
    try {
      cpSync(join(FIX, 'v2'), tmp, { recursive: true });
      const job = join(tmp, 'system.slice/slurmstepd.scope/job_1009252');
      rmSync(join(job, 'cpu.stat'));
      execFileSync('mkfifo', [join(job, 'cpu.stat')]);
      // a unit whose processes cannot be listed is walked without them (a stale job for slurm)
      const procs = join(tmp, 'system.slice/slurmstepd.scope/job_1009248/step_batch/cgroup.procs');
      rmSync(procs);
      execFileSync('mkfifo', [procs]);
      const records: { level: string; msg: string; uuid?: string; file?: string; err?: string }[] = [];
      const logger = createLogger({
        level: 'info',
        format: 'json',
        write: (l: string) => records.push(JSON.parse(l)),
      });
      const c = new CgroupCollector({
        layout: managerLayout('slurm', { cgroupfs: tmp, version: 'v2', activeSubsystem: 'cpuacct' }),
        hostname: 'node1',
        procfs: PROC,
        logger,
        stats: { cpuCount: 'cpuset', swap: false, psi: false, blkio: false },
      });
      let text = '';
      for (let scrape = 0; scrape < 3; scrape++) {
        const out = new FamilySet();
        c.collect(out, c.discover());
        text = encode(out.families.values());
      }
      assert.deepEqual(grep(text, 'collect_error'), [
        'ceems_compute_unit_collect_error{cgrouphostname="",hostname="node1",manager="slurm",uuid="1009250"} 1',
        'ceems_compute_unit_collect_error{cgrouphostname="",hostname="node1",manager="slurm",uuid="1009252"} 1',
      ]);
      assert.equal(grep(text, 'cpu_user_seconds_total{').length, 3);
      const fifo = records.filter((r) => r.file === join(job, 'cpu.stat'));
      assert.deepEqual(
        fifo.map((r) => [r.level, r.msg, r.uuid, r.err]),
        Array(3).fill([
          'ERROR',
          'cannot read unit cgroup',
          '1009252',
          `not a regular file (FIFO): ${join(job, 'cpu.stat')}`,
        ]),
      );
      assert.deepEqual(
        records.filter((r) => r.file === procs).map((r) => [r.uuid, r.err]),
        Array(3).fill(['1009248', `not a regular file (FIFO): ${procs}`]),
      );
      assert.deepEqual(
        c.discover().find((u) => u.id === '1009248')!.pids,
        [4202, 4203], // task_0's PIDs; step_batch's 4201 cannot be listed
      );
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
