// Real SLURM (testbed): jobs of two users appear as compute units of the slurm collector while they run
// and disappear once they end.

import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Started, startProgram } from '../helpers/process.js';
import { cancelJobs, submitJob, testbedEnv } from '../helpers/slurm.js';
import { waitFor, waitForScrape } from '../helpers/wait.js';

const env = testbedEnv();
const NODE = env.CEEMS_TESTBED_SLURM_NODE!;

function submit(user: string, account: string, wrap: string): string {
  return submitJob(user, account, wrap, { mem: '256M', minutes: 2 });
}

interface UnitSample {
  labels: Record<string, string>;
  value: number;
}

/** Samples of one family per uuid. */
function family(text: string, name: string): Map<string, UnitSample> {
  const out = new Map<string, UnitSample>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const brace = line.lastIndexOf('}');
    const labels: Record<string, string> = {};
    for (const m of line.slice(name.length + 1, brace).matchAll(/(\w+)="([^"]*)"/g)) labels[m[1]!] = m[2]!;
    out.set(labels.uuid!, { labels, value: Number(line.slice(brace + 2)) });
  }
  return out;
}

/** Waits until a fresh scrape shows the unit's CPU user seconds above `before`. */
function cpuUserSecondsGrow(url: string, uuid: string, before: number): Promise<number> {
  return waitForScrape(url, `CPU user seconds of ${uuid} above ${before}`, 10_000, (text) => {
    const now = family(text, 'ceems_compute_unit_cpu_user_seconds_total').get(uuid)?.value ?? 0;
    return now > before ? now : undefined;
  });
}

describe('slurm collector on the real SLURM testbed', () => {
  let exporter: Started;
  const jobs: string[] = [];

  before(async () => {
    exporter = await startProgram('ceems_exporter', [
      '--collector.disable-defaults',
      '--collector.slurm',
      '--collector.slurm.swap-memory-metrics',
      '--collector.slurm.psi-metrics',
      '--web.listen-address=127.0.0.1:0',
    ]);
  });

  after(async () => {
    cancelJobs(jobs);
    await exporter?.stop();
  });

  const metricsUrl = () => `${exporter.url}/metrics`;

  it('reports running jobs of two users and drops them after they end', async () => {
    const cpuJob = submit('usr1', 'acc1', 'stress-ng --cpu 1 --timeout 40s');
    jobs.push(cpuJob);
    const memJob = submit(
      'usr2',
      'acc2',
      `/usr/bin/python3 -c 'import time; b = b"x" * (100 << 20); time.sleep(40)'`,
    );
    jobs.push(memJob);

    // both jobs running (they may queue behind other tests' jobs first), the python one holding ~100 MB
    const first = await waitForScrape(
      metricsUrl(),
      `jobs ${cpuJob} (CPU) and ${memJob} (100 MB)`,
      60_000,
      (text) => {
        const rss = family(text, 'ceems_compute_unit_memory_rss_bytes');
        const user = family(text, 'ceems_compute_unit_cpu_user_seconds_total');
        const cpuUser = user.get(cpuJob)?.value ?? 0;
        return (rss.get(memJob)?.value ?? 0) >= 100 * 2 ** 20 && cpuUser > 0 ? { text, cpuUser } : undefined;
      },
    );
    for (const id of [cpuJob, memJob]) {
      const used = family(first.text, 'ceems_compute_unit_memory_used_bytes').get(id);
      assert.ok(used, `job ${id} has no memory_used sample`);
      assert.deepEqual(used.labels, {
        cgrouphostname: NODE,
        hostname: process.env.NODE_NAME || hostname(),
        manager: 'slurm',
        uuid: id,
      });
      assert.ok(used.value > 0, `job ${id} memory used ${used.value}`);
      assert.equal(family(first.text, 'ceems_compute_unit_memory_total_bytes').get(id)?.value, 256 * 2 ** 20);
      assert.equal(family(first.text, 'ceems_compute_unit_cpus').get(id)?.value, 1);
      // cgroup v1: memory+swap usage from memory.memsw.*; PSI does not exist and is exported as 0
      assert.ok((family(first.text, 'ceems_compute_unit_memsw_used_bytes').get(id)?.value ?? 0) > 0);
      assert.equal(family(first.text, 'ceems_compute_unit_cpu_psi_seconds').get(id)?.value, 0);
    }
    assert.match(first.text, /^ceems_scrape_collector_success\{collector="slurm"\} 1$/m);

    // CPU seconds of the stress-ng job grow between scrapes
    await cpuUserSecondsGrow(metricsUrl(), cpuJob, first.cpuUser);

    execFileSync('scancel', [cpuJob, memJob], { env });
    await waitForScrape(
      metricsUrl(),
      'cancelled jobs to leave the scrape',
      20_000,
      (text) => !text.includes(`uuid="${cpuJob}"`) && !text.includes(`uuid="${memJob}"`),
    );
  });
});

// Slurm 22.05 (the testbed) names job cgroups by job id; recent releases may use the job's SLUID. The
// directory is made here on the real cgroup v1 tree, next to slurmd's, and holds a real process.
describe('SLUID-named job directory on the real cgroup v1 tree', () => {
  const CGROUP = env.CEEMS_TESTBED_CGROUP_ROOT ?? '/sys/fs/cgroup';
  const rel = join(env.CEEMS_TESTBED_SLURM_CGROUP_PREFIX!, 'uid_4242', 'job_s0X7JY4KQ2M8N');
  const controllers = ['cpuacct', 'memory', 'cpuset'].map((c) => join(CGROUP, c));
  const JOB_ID = '900000001';
  let exporter: Started;
  let task: ChildProcess;

  before(async () => {
    for (const c of controllers) {
      mkdirSync(join(c, rel), { recursive: true });
      if (c.endsWith('cpuset'))
        for (const f of ['cpuset.cpus', 'cpuset.mems']) {
          for (const d of [join(rel, '..'), rel])
            writeFileSync(join(c, d, f), readFileSync(join(c, env.CEEMS_TESTBED_SLURM_CGROUP_PREFIX!, f)));
        }
    }
    // The shell joins the job cgroups before it becomes stress-ng: moving stress-ng in after its start
    // raced with the fork of its worker, which then burnt CPU outside the job (the test's one flake).
    const enter = controllers.map((c) => `echo $$ > '${join(c, rel, 'cgroup.procs')}'`).join(' && ');
    task = spawn('sh', ['-c', `${enter} && exec stress-ng --cpu 1 --timeout 60s`], {
      env: { PATH: process.env.PATH, SLURM_JOB_ID: JOB_ID },
      stdio: 'ignore',
    });
    exporter = await startProgram('ceems_exporter', [
      '--collector.disable-defaults',
      '--collector.slurm',
      '--web.listen-address=127.0.0.1:0',
    ]);
  });

  after(async () => {
    await exporter?.stop();
    task?.kill('SIGKILL');
    // stress-ng workers are children of the spawned process: wait until the cgroups are empty
    await waitFor(
      'SLUID cgroup to empty',
      10_000,
      async () => {
        const procs = readFileSync(join(controllers[0]!, rel, 'cgroup.procs'), 'utf8').trim();
        for (const pid of procs.split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
        return procs === '' ? true : undefined;
      },
      500,
    );
    for (const c of controllers) for (const d of [rel, join(rel, '..')]) rmdirSync(join(c, d));
  });

  it('reports the unit under the SLURM_JOB_ID of its processes, with growing CPU seconds', async () => {
    const url = `${exporter.url}/metrics`;
    const first = await waitForScrape(url, `SLUID job ${JOB_ID} with CPU seconds`, 20_000, (text) => {
      const s = family(text, 'ceems_compute_unit_cpu_user_seconds_total').get(JOB_ID);
      return s && s.value > 0 ? s : undefined;
    });
    assert.equal(first.labels.cgrouphostname, NODE);
    await cpuUserSecondsGrow(url, JOB_ID, first.value);
    const text = await (await fetch(url)).text();
    assert.ok(!text.includes('s0X7JY4KQ2M8N'), 'the directory name never becomes a label');
    assert.ok((family(text, 'ceems_compute_unit_memory_used_bytes').get(JOB_ID)?.value ?? 0) > 0);
  });
});
