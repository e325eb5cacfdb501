// SLUID-named job directories (recent Slurm releases) are reported under the numeric job id.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { encode } from '../../../../src/common/exposition.js';
import { parseFlags } from '../../../../src/common/flags.js';
import { createLogger } from '../../../../src/common/logger.js';
import { FamilySet } from '../../../../src/exporter/collector.js';
import { slurm } from '../../../../src/exporter/collectors/slurm.js';
import type { SlurmCollector } from '../../../../src/exporter/units/slurm.js';
import { ROOT } from '../../../helpers/process.js';

const FIX = join(ROOT, 'test/fixtures/cgroup');
const V2_JOB = join(FIX, 'v2/system.slice/slurmstepd.scope/job_1009248');
const SLUID_A = 's0X7JY4KQ2M8N';
const SLUID_B = 's0X7JY4KQ2M8P';
const SLUID_C = 's0X7JY4KQ2M8Q';

interface Proc {
  env?: Record<string, string>;
  cmdline: string;
}

function writeProc(procfs: string, pid: number, p: Proc): void {
  cpSync(join(FIX, 'proc/meminfo'), join(procfs, 'meminfo'));
  mkdirSync(join(procfs, String(pid)), { recursive: true });
  const env = Object.entries(p.env ?? {}).map(([k, v]) => `${k}=${v}\0`);
  writeFileSync(join(procfs, String(pid), 'environ'), env.join(''));
  writeFileSync(join(procfs, String(pid), 'cmdline'), `${p.cmdline.split(' ').join('\0')}\0`);
}

/** Copies a real-format job directory under a new name and puts `pids` in one of its cgroups. */
function addJob(scope: string, name: string, procsDir: string, pids: number[]): void {
  const dir = join(scope, name);
  cpSync(V2_JOB, dir, { recursive: true });
  for (const f of ['cgroup.procs', 'step_batch/cgroup.procs', 'step_0/user/task_0/cgroup.procs'])
    writeFileSync(join(dir, f), '');
  mkdirSync(join(dir, procsDir), { recursive: true });
  writeFileSync(join(dir, procsDir, 'cgroup.procs'), pids.map((p) => `${p}\n`).join(''));
}

/** A cgroup v2 node: one numeric job, and SLUID jobs identified by environ, by slurmstepd title, or not. */
function v2Node(): { cgroupfs: string; procfs: string; scope: string } {
  const base = mkdtempSync(join(tmpdir(), 'ceems-sluid-'));
  chmodSync(base, 0o755);
  const cgroupfs = join(base, 'cgroup');
  const procfs = join(base, 'proc');
  const scope = join(cgroupfs, 'system.slice/slurmstepd.scope');
  addJob(scope, 'job_1009248', 'step_batch', [101]);
  writeProc(procfs, 101, {
    cmdline: '/bin/bash /var/spool/slurmd/job1009248/slurm_script',
    env: { SLURM_JOB_ID: '1009248' },
  });
  // batch task with the job environment
  addJob(scope, `job_${SLUID_A}`, 'step_batch/user/task_0', [201]);
  writeProc(procfs, 201, {
    cmdline: 'python train.py',
    env: { SLURM_JOB_ID: '1009300', HOME: '/home/usr1' },
  });
  // only the step daemon so far (cgroup v2 keeps slurmstepd in step_*/slurm)
  addJob(scope, `job_${SLUID_B}`, 'step_extern/slurm', [301]);
  writeProc(procfs, 301, { cmdline: 'slurmstepd: [1009301.extern]' });
  // processes that carry no job id at all (e.g. adopted by pam_slurm_adopt)
  addJob(scope, `job_${SLUID_C}`, 'step_extern/user/task_special', [401]);
  writeProc(procfs, 401, { cmdline: 'sleep 100000000', env: { HOME: '/home/usr2' } });
  return { cgroupfs, procfs, scope };
}

async function collector(cgroupfs: string, procfs: string, warnings: string[], args: string[] = []) {
  const logger = createLogger({
    level: 'warn',
    format: 'json',
    write: (l: string) => warnings.push(JSON.parse(l).msg),
  });
  const { flags } = parseFlags(slurm.flags, ['--collector.gpu.type=nogpu', ...args]);
  return (await slurm.create({
    hostname: 'node1',
    procfs,
    sysfs: join(FIX, 'sys'),
    cgroupfs,
    flags,
    logger,
  })) as SlurmCollector;
}

async function scrape(c: SlurmCollector): Promise<string[]> {
  const out = new FamilySet();
  await c.update(out, new AbortController().signal);
  return encode(out.families.values())
    .split('\n')
    .filter((l) => l.startsWith('ceems_compute_unit_cpu_user_seconds_total'));
}

const cpuUser = (host: string, uuid: string) =>
  `ceems_compute_unit_cpu_user_seconds_total{cgrouphostname="${host}",hostname="node1",manager="slurm",uuid="${uuid}"} 45`;

describe('SLUID-named job directories', () => {
  it('cgroup v2: reports them under the job id from the environment or the slurmstepd title', async () => {
    const { cgroupfs, procfs } = v2Node();
    const warnings: string[] = [];
    const c = await collector(cgroupfs, procfs, warnings, ['--collector.cgroups.force-version=v2']);
    // every copied job has the cpu.stat of job 1009248 (45 s user)
    assert.deepEqual(await scrape(c), [
      cpuUser('', '1009248'),
      cpuUser('', '1009300'),
      cpuUser('', '1009301'),
    ]);
    assert.deepEqual(
      c.jobs().map((j) => j.id),
      ['1009248', '1009300', '1009301'],
    );
    assert.deepEqual(warnings, [], 'an unidentified job may just be starting: no warning yet');
  });

  it('warns once about a job directory that stays unidentified, and keeps skipping it', async () => {
    const { cgroupfs, procfs } = v2Node();
    const warnings: string[] = [];
    const c = await collector(cgroupfs, procfs, warnings, ['--collector.cgroups.force-version=v2']);
    for (let i = 0; i < 5; i++) assert.equal((await scrape(c)).length, 3);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, new RegExp(`job_${SLUID_C}: none of its 1 processes shows SLURM_JOB_ID`));
  });

  it('a job id found once is kept for the directory; a new directory is identified again', async () => {
    const { cgroupfs, procfs, scope } = v2Node();
    const c = await collector(cgroupfs, procfs, [], ['--collector.cgroups.force-version=v2']);
    assert.ok((await scrape(c)).includes(cpuUser('', '1009300')));
    // the task ends and a new one without the variable starts: the SLUID still names job 1009300
    writeProc(procfs, 201, { cmdline: 'python train.py', env: {} });
    assert.ok((await scrape(c)).includes(cpuUser('', '1009300')));
    // the directory goes away and another job's directory appears: nothing stale is reused
    rmSync(join(scope, `job_${SLUID_A}`), { recursive: true });
    assert.ok(!(await scrape(c)).some((l) => l.includes('1009300')));
    addJob(scope, `job_${SLUID_A}`, 'step_batch/user/task_0', [202]);
    writeProc(procfs, 202, { cmdline: 'a.out', env: { SLURM_JOB_ID: '1009400' } });
    assert.ok((await scrape(c)).includes(cpuUser('', '1009400')));
  });

  it('cgroup v1 with --enable-multiple-slurmd layouts keeps the host of the directory', async () => {
    const base = mkdtempSync(join(tmpdir(), 'ceems-sluid-v1-'));
    const cgroupfs = join(base, 'cgroup');
    const procfs = join(base, 'proc');
    const src = join(FIX, 'v1/cpuacct/slurm_vm/uid_1001');
    const job = join(cgroupfs, 'cpuacct/slurm_nodeA/uid_1001', `job_${SLUID_A}`);
    const numeric = readdirSync(src).find((n) => /^job_\d+$/.test(n))!;
    cpSync(join(src, numeric), job, { recursive: true });
    writeFileSync(join(job, 'cgroup.procs'), '501\n');
    writeProc(procfs, 501, { cmdline: 'stress-ng --cpu 1', env: { SLURM_JOB_ID: '77' } });
    const c = await collector(cgroupfs, procfs, [], ['--collector.cgroups.force-version=v1']);
    assert.deepEqual(
      c.jobs().map((j) => [j.id, j.uuid, j.cgrouphostname]),
      [['77', '77', 'nodeA']],
    );
  });

  it('names the missing privilege when the environment of job processes cannot be read', () => {
    const { cgroupfs, procfs } = v2Node();
    chmodSync(join(procfs, '201', 'environ'), 0o600); // root-owned: unreadable for nobody
    const script = `
      import { createLogger } from './src/common/logger.ts';
      import { parseFlags } from './src/common/flags.ts';
      import { slurm } from './src/exporter/collectors/slurm.ts';
      const msgs = [];
      const logger = createLogger({ level: 'warn', format: 'json', write: (l) => msgs.push(JSON.parse(l).msg) });
      const { flags } = parseFlags(slurm.flags, ['--collector.gpu.type=nogpu', '--collector.cgroups.force-version=v2']);
      const c = await slurm.create({ hostname: 'n', procfs: ${JSON.stringify(procfs)}, sysfs: '/nonexistent',
        cgroupfs: ${JSON.stringify(cgroupfs)}, flags, logger });
      console.log(JSON.stringify({ ids: c.jobs().map((j) => j.id), msgs }));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      uid: 65534,
      gid: 65534,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const { ids, msgs } = JSON.parse(r.stdout) as { ids: string[]; msgs: string[] };
    assert.deepEqual(ids, ['1009248', '1009301']);
    assert.ok(
      msgs.some(
        (m) =>
          m.includes(`job_${SLUID_A}: cannot read the environment of 1 of its 1 processes`) &&
          m.includes('cap_sys_ptrace'),
      ),
      msgs.join('\n'),
    );
  });
});
