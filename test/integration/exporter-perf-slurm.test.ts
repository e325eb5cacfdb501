// Real SLURM (testbed): the perf sub-collector counts what jobs do. Each job waits until the exporter
// reports its counters, then does a known amount of one kind of work (test/fixtures/perf/job.py); the
// growth of its ceems_perf_* series over that work is compared with the amount.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Started, startProgram } from '../helpers/process.js';
import { cancelJobs, jobDir, jobState, submitJob, testbedEnv } from '../helpers/slurm.js';
import { scrapeExcerpt, waitFor, waitForScrape } from '../helpers/wait.js';

const env = testbedEnv();
const JOB_PY = resolve(import.meta.dirname, '../fixtures/perf/job.py');
const EVENTS = ['page_faults', 'minor_faults', 'major_faults', 'context_switches', 'cpu_migrations'] as const;
type Counts = Record<(typeof EVENTS)[number], number>;

/** The job's ceems_perf_*_total samples (absent = 0: only values > 0 are exported). */
function counts(text: string, uuid: string): Counts {
  const out = Object.fromEntries(EVENTS.map((e) => [e, 0])) as Counts;
  for (const e of EVENTS) {
    const m = new RegExp(
      `^ceems_perf_${e}_total\\{hostname="[^"]*",manager="slurm",uuid="${uuid}"\\} (\\S+)$`,
      'm',
    ).exec(text);
    if (m) out[e] = Number(m[1]);
  }
  return out;
}

const diff = (a: Counts, b: Counts) => Object.fromEntries(EVENTS.map((e) => [e, b[e] - a[e]])) as Counts;

describe('perf sub-collector on the real SLURM testbed', () => {
  let exporter: Started;
  const jobs: string[] = [];
  const files: string[] = [];
  const url = () => `${exporter.url}/metrics`;

  before(async () => {
    exporter = await startProgram('ceems_exporter', [
      '--collector.disable-defaults',
      '--collector.slurm',
      '--collector.perf.software-events',
      '--collector.perf.hardware-events', // none on this VM: reported once at start-up, software events unaffected
      '--web.listen-address=127.0.0.1:0',
    ]);
  });

  after(async () => {
    cancelJobs(jobs);
    for (const f of files) rmSync(f, { force: true });
    await exporter?.stop();
  });

  /**
   * Submits job.py with `args`; once the exporter shows the job's counters, lets it work and returns how
   * much each of its series grew over the work.
   */
  async function measure(name: string, args: string, extra: string[] = []): Promise<Counts> {
    const tag = `${process.pid}-${name}`;
    const go = join(jobDir(), `perf-go-${tag}`);
    const done = join(jobDir(), `perf-done-${tag}`);
    files.push(go, done);
    const id = submitJob('usr1', 'acc1', `/usr/bin/python3 ${JOB_PY} ${go} ${done} ${args}`, {
      mem: '256M',
      minutes: 5,
      name: `perf-${name}`,
      extra,
    });
    jobs.push(id);
    // the job polls for GO: context switches show its counters are open and read
    await waitForScrape(url(), `perf counters of job ${id} (${name})`, 180_000, (text) => {
      if (counts(text, id).context_switches > 0) return true;
      throw new Error(`${jobState(id)}\nlast scrape:\n${scrapeExcerpt(text)}`);
    });
    const start = counts(await (await fetch(url())).text(), id);
    writeFileSync(go, '');
    await waitFor(`job ${id} (${name}) to finish its work`, 120_000, () => {
      if (existsSync(done)) return true;
      throw new Error(jobState(id));
    });
    const text = await (await fetch(url())).text();
    assert.match(
      text,
      new RegExp(
        `^ceems_perf_minor_faults_total\\{hostname="${process.env.NODE_NAME || hostname()}",manager="slurm",uuid="${id}"\\} `,
        'm',
      ),
    );
    const grown = diff(start, counts(text, id));
    execFileSync('scancel', [id], { env });
    console.log(`job ${id} ${name} (${args}): ${JSON.stringify(grown)}`);
    return grown;
  }

  const within = (what: string, v: number, lo: number, hi: number) =>
    assert.ok(v >= lo && v <= hi, `${what}: ${v}, expected ${lo}..${hi}`);

  it('counts what each job does: N fresh pages → ~N minor faults, K round trips → ~2K switches, M moves → ~M migrations', async () => {
    const N = 20_000;
    const K = 20_000;
    const M = 1_000;
    // two one-CPU jobs side by side on the two-CPU node
    const [fault, burn] = await Promise.all([measure('fault', `fault ${N}`), measure('burn', 'burn 5')]);
    // then one job with both CPUs (moves need two)
    const sw = await measure('switch', `switch ${K} ${M}`, ['-c', '2']);

    // the page toucher: its minor faults are the pages it touched, plus the interpreter's own few
    within('fault job minor faults', fault.minor_faults, N, N * 1.02 + 300);
    within('fault job page faults', fault.page_faults, fault.minor_faults, fault.minor_faults + 50);
    // the ping-pong: one switch per round trip in each process (the child counted through the parent's
    // inherited counters, not twice), one per move (the task waits for the stopper thread that moves it);
    // 5 % + 500 for preemption by the other work on this small node. Pinned, it moves only when asked.
    within('switch job context switches', sw.context_switches, 2 * K, 1.05 * (2 * K + M) + 500);
    within('switch job CPU migrations', sw.cpu_migrations, M, 1.05 * M + 20);
    // a one-CPU job cannot migrate; the burner hardly faults or switches next to the others
    assert.equal(fault.cpu_migrations, 0);
    assert.equal(burn.cpu_migrations, 0);
    assert.ok(burn.minor_faults < N / 20, `burn job minor faults ${burn.minor_faults}`);
    // (preempted by the other work of this node: up to ~500 switches a second seen, the ping-pong has 8,000)
    assert.ok(
      burn.context_switches < sw.context_switches / 4,
      `burn job context switches ${burn.context_switches}`,
    );
    assert.ok(sw.minor_faults < N / 4, `switch job minor faults ${sw.minor_faults}`);
    for (const c of [fault, burn, sw]) assert.equal(c.major_faults, 0, 'anonymous memory: no major faults');

    const text = await (await fetch(url())).text();
    assert.match(text, /^ceems_scrape_collector_duration_seconds\{collector="slurm",subcollector="perf"\} /m);
    assert.match(text, /^ceems_scrape_collector_success\{collector="slurm"\} 1$/m);
    // hardware events: each one either counted (a host with a PMU) or named once in the start-up report
    const reports = exporter
      .stderr()
      .split('\n')
      .filter((l) => l.includes('perf events not supported'));
    assert.ok(reports.length <= 1, `reported ${reports.length} times:\n${reports.join('\n')}`);
    for (const [event, metric] of [
      ['CpuCycles', 'cpucycles'],
      ['CpuInstr', 'instructions'],
    ])
      assert.ok(
        (reports[0]?.includes(event) ?? false) !== text.includes(`ceems_perf_${metric}_total{`),
        `${event}: counted or reported unsupported`,
      );
    console.log(reports[0] ?? 'all hardware events supported');
  });
});
