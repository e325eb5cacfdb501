// ceems_exporter with a FIFO where a job's cpu.stat is expected (a read of it used to block the whole process):
// /metrics and /health keep answering with the other jobs' series, the file is logged once per scrape, and
// SIGTERM ends the process within 5 s, also in the middle of a scrape.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, type Started, startProgram } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';

const FIX = join(ROOT, 'test/fixtures/cgroup');
const JOB = 'system.slice/slurmstepd.scope/job_1009252';
/** Every request gets an answer in well under this, or the exporter is blocked. */
const ANSWER_MS = 5000;

async function get(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(ANSWER_MS) });
  return { status: res.status, text: await res.text() };
}

const samples = (text: string, prefix: string) => text.split('\n').filter((l) => l.startsWith(prefix));

/** SIGTERM, then the exit within 5 s (the error shows the log's tail); SIGKILL if it did not come. */
async function stopWithin5s(exp: Started): Promise<{ code: number | null; ms: number }> {
  const sent = Date.now();
  const exited = new Promise<number | null>((res) => {
    if (exp.proc.exitCode !== null || exp.proc.signalCode !== null) res(exp.proc.exitCode);
    else exp.proc.once('exit', (code) => res(code));
  });
  let code: number | null | undefined;
  void exited.then((c) => {
    code = c;
  });
  process.kill(exp.pid, 'SIGTERM');
  try {
    await waitFor(`exit of the exporter (pid ${exp.pid}) after SIGTERM`, 5000, () => {
      if (code !== undefined) return true;
      throw new Error(`still running; log tail:\n${exp.stderr().split('\n').slice(-5).join('\n')}`);
    });
  } finally {
    if (code === undefined) process.kill(exp.pid, 'SIGKILL');
  }
  return { code: code ?? null, ms: Date.now() - sent };
}

describe('exporter: a unit file that would block a read', () => {
  let tmp: string;
  let fifo: string;
  let ipmiMode: string;
  let exp: Started;
  let scrapes = 0;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ceems-blocking-'));
    chmodSync(tmp, 0o755); // the test-mode BMC tool runs as the exporter's run-as user (nobody) and reads its mode file here
    const cgroupfs = join(tmp, 'cgroup');
    cpSync(join(FIX, 'v2'), cgroupfs, { recursive: true });
    fifo = join(cgroupfs, JOB, 'cpu.stat');
    rmSync(fifo);
    execFileSync('mkfifo', [fifo]);
    // a BMC tool that can be made to hang keeps a scrape in flight for its 1 s call limit
    ipmiMode = join(tmp, 'ipmi-mode');
    writeFileSync(ipmiMode, 'ok');
    exp = await startProgram(
      'ceems_exporter',
      [
        '--collector.disable-defaults',
        '--collector.slurm',
        '--collector.cgroups.force-version=v2',
        '--collector.gpu.type=nogpu',
        '--collector.empty-hostname-label',
        '--collector.ipmi_dcmi',
        `--collector.ipmi_dcmi.cmd=${join(ROOT, 'test/fixtures/ipmi/bin/ipmitool')} dcmi power reading`,
        '--collector.ipmi_dcmi.test-mode',
        `--path.cgroupfs=${cgroupfs}`,
        `--path.procfs=${join(FIX, 'proc')}`,
        '--web.listen-address=127.0.0.1:0',
      ],
      { env: { FAKE_IPMI_MODE_FILE: ipmiMode } },
    );
  });
  after(async () => {
    if (exp && exp.proc.exitCode === null && exp.proc.signalCode === null) process.kill(exp.pid, 'SIGKILL');
    rmSync(tmp, { recursive: true, force: true });
  });

  it('answers /metrics with the other jobs and marks the job with the FIFO as not collected', async () => {
    const res = await get(`${exp.url}/metrics`);
    scrapes++;
    assert.equal(res.status, 200);
    const L = (id: string) => `{cgrouphostname="",hostname="",manager="slurm",uuid="${id}"}`;
    assert.deepEqual(samples(res.text, 'ceems_compute_unit_cpu_user_seconds_total'), [
      `ceems_compute_unit_cpu_user_seconds_total${L('1009248')} 45`,
      'ceems_compute_unit_cpu_user_seconds_total{cgrouphostname="nodeA",hostname="",manager="slurm",uuid="1009251"} 1',
    ]);
    // 1009250 has a malformed cpu.stat in the fixture; 1009252 has the FIFO
    assert.deepEqual(samples(res.text, 'ceems_compute_unit_collect_error'), [
      `ceems_compute_unit_collect_error${L('1009250')} 1`,
      `ceems_compute_unit_collect_error${L('1009252')} 1`,
    ]);
    assert.deepEqual(samples(res.text, 'ceems_compute_units'), [
      'ceems_compute_units{hostname="",manager="slurm"} 4',
    ]);
    assert.deepEqual(samples(res.text, 'ceems_scrape_collector_success'), [
      'ceems_scrape_collector_success{collector="ipmi_dcmi"} 1',
      'ceems_scrape_collector_success{collector="slurm"} 1',
    ]);
  });

  it('answers /health', async () => {
    const res = await get(`${exp.url}/health`);
    assert.equal(res.status, 200);
    assert.equal(res.text, 'CEEMS Exporter is healthy');
  });

  it('logs the FIFO once per scrape, naming the file and why', async () => {
    for (let i = 0; i < 3; i++) {
      assert.equal((await get(`${exp.url}/metrics`)).status, 200);
      scrapes++;
    }
    const fifoLines = () =>
      exp
        .stderr()
        .split('\n')
        .filter((l) => l.includes(`file=${fifo} `));
    // the lines of the last scrape may still be on their way through the pipe
    await waitFor(`${scrapes} log lines naming ${fifo}`, 5000, () => {
      if (fifoLines().length >= scrapes) return true;
      throw new Error(`saw ${fifoLines().length}:\n${fifoLines().join('\n')}`);
    });
    const lines = fifoLines();
    assert.equal(lines.length, scrapes, lines.join('\n'));
    for (const l of lines)
      assert.ok(
        l.endsWith(
          ` level=ERROR msg="cannot read unit cgroup" collector=slurm uuid=1009252 file=${fifo} err="not a regular file (FIFO): ${fifo}"`,
        ),
        l,
      );
  });

  it('stops within 5 s on SIGTERM in the middle of a scrape, answering the scrape in flight', async () => {
    writeFileSync(ipmiMode, 'hang');
    const inFlight = fetch(`${exp.url}/metrics`, { signal: AbortSignal.timeout(ANSWER_MS) }).then(
      async (r) => ({ status: r.status, text: await r.text() }),
      (e: Error) => ({ status: 0, text: e.message }),
    );
    // the scrape is in flight while the exporter runs the (hanging) BMC tool
    const children = () =>
      readFileSync(`/proc/${exp.pid}/task/${exp.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    await waitFor('the exporter to run the BMC tool', 5000, () => {
      if (children().length > 0) return true;
      throw new Error(`no child process of ${exp.pid} yet`);
    });
    // still answering meanwhile; and its main thread has left the scrape's reads (there SIGTERM is fatal)
    assert.equal((await get(`${exp.url}/health`)).status, 200);
    assert.ok(children().length > 0, 'the scrape is still in flight');
    const { code, ms } = await stopWithin5s(exp);
    assert.equal(code, 0, `exit code after ${ms} ms`);
    const res = await inFlight;
    // answered (the BMC collector failed or was interrupted) or cut by the closing server, never left hanging
    if (res.status !== 0) {
      assert.equal(res.status, 200);
      assert.deepEqual(samples(res.text, 'ceems_scrape_collector_success{collector="ipmi_dcmi"}'), [
        'ceems_scrape_collector_success{collector="ipmi_dcmi"} 0',
      ]);
    } else assert.doesNotMatch(res.text, /timeout|aborted/i);
  });
});
