// Real SLURM (testbed) and the real kernel: the ebpf sub-collector counts what jobs do. Each job waits until
// the exporter reports it, then does a known amount of IO (test/fixtures/ebpf/job.py); the growth of its
// ceems_ebpf_* series over that work is compared with the amount, and a job running at the same time must
// get none of it. Also: programs are gone after a stop and after a crash, and an exporter that cannot load
// them (no cap_bpf) keeps its other collectors working and says why once.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mountOf } from '../helpers/mounts.js';
import { awaitListening, type Started, startProgram } from '../helpers/process.js';
import { cancelJobs, jobDir, jobState, submitJob, testbedEnv } from '../helpers/slurm.js';
import { waitFor, waitForScrape } from '../helpers/wait.js';

const env = testbedEnv();
const ROOT = resolve(import.meta.dirname, '../..');
const JOB_PY = resolve(import.meta.dirname, '../fixtures/ebpf/job.py');
const EXPORTER_ARGS = [
  '--collector.disable-defaults',
  '--collector.slurm',
  '--collector.ebpf.io-metrics',
  '--collector.ebpf.network-metrics',
  '--web.listen-address=127.0.0.1:0',
];
const MIB = 1 << 20;

/** Every ceems_ebpf_* sample of `uuid`, keyed by family and its other labels (absent = 0 in diffs). */
function samples(text: string, uuid: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^ceems_ebpf_(\w+)\{([^}]*)\} (\S+)$/gm)) {
    const labels = m[2]!;
    if (!labels.includes(`uuid="${uuid}"`)) continue;
    const rest = labels
      .split(',')
      .filter((l) => !/^(hostname|manager|uuid)=/.test(l))
      .join(',');
    out.set(`${m[1]}{${rest}}`, Number(m[3]));
  }
  return out;
}

function grown(before: Map<string, number>, now: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of now) out.set(k, v - (before.get(k) ?? 0));
  return out;
}

/** How many BPF programs and maps of ours the kernel holds (bpftool, needs root), as `<programs>/<maps>`. */
function ours(): string {
  const list = (what: string) =>
    JSON.parse(execFileSync('bpftool', ['-j', what, 'show'], { encoding: 'utf8' })) as { name?: string }[];
  const programs = list('prog').filter((p) =>
    /^(exit_|sock_send$|sock_recv$|sock_state$|tcp_retransmit$)/.test(p.name ?? ''),
  );
  const maps = list('map').filter((m) => /^(io_stats|file_stats|net_stats|sock_owner)$/.test(m.name ?? ''));
  return `${programs.length}/${maps.length}`;
}

describe('ebpf sub-collector on the real SLURM testbed', () => {
  let exporter: Started;
  const jobs: string[] = [];
  const files: string[] = [];
  const url = () => `${exporter.url}/metrics`;
  const scrape = async () => (await fetch(url())).text();

  before(async () => {
    exporter = await startProgram('ceems_exporter', EXPORTER_ARGS);
  });

  after(async () => {
    cancelJobs(jobs);
    for (const f of files) rmSync(f, { force: true });
    await exporter?.stop();
  });

  /**
   * Submits job.py with `args`; once it started up and the exporter shows it, lets it work; returns how much
   * each of its series grew over the work.
   */
  async function measure(name: string, args: string): Promise<Map<string, number>> {
    const tag = `${process.pid}-${name}`;
    const file = (what: string) => join(jobDir(), `ebpf-${what}-${tag}`);
    const [ready, go, done] = [file('ready'), file('go'), file('done')];
    files.push(ready, go, done);
    const id = submitJob('usr1', 'acc1', `/usr/bin/python3 -B ${JOB_PY} ${ready} ${go} ${done} ${args}`, {
      mem: '256M',
      minutes: 5,
      name: `ebpf-${name}`,
    });
    jobs.push(id);
    await waitFor(`job ${id} (${name}) to start up`, 180_000, () => {
      if (existsSync(ready)) return true;
      throw new Error(jobState(id));
    });
    // the interpreter's start-up opened files: the job's counters are there once its cgroup is mapped
    await waitForScrape(url(), `ebpf counters of job ${id} (${name})`, 60_000, (text) => {
      if (samples(text, id).has('open_requests_total{}')) return true;
      throw new Error(jobState(id));
    });
    const start = samples(await scrape(), id);
    writeFileSync(go, '');
    await waitFor(`job ${id} (${name}) to finish its work`, 120_000, () => {
      if (existsSync(done)) return true;
      throw new Error(jobState(id));
    });
    const growth = grown(start, samples(await scrape(), id));
    execFileSync('scancel', [id], { env });
    console.log(`job ${id} ${name} (${args}): ${JSON.stringify(Object.fromEntries(growth))}`);
    return growth;
  }

  const within = (what: string, v: number | undefined, lo: number, hi: number) =>
    assert.ok(v !== undefined && v >= lo && v <= hi, `${what}: ${v}, expected ${lo}..${hi}`);
  const nothing = (g: Map<string, number>, pattern: RegExp, what: string) => {
    const got = [...g].filter(([k, v]) => pattern.test(k) && v !== 0);
    assert.deepEqual(got, [], `${what} should not have grown`);
  };

  it('dd: write and read bytes of the job on the job directory mount; a job beside it gets none', async () => {
    const size = 64;
    const mount = mountOf(jobDir());
    const [io, quiet] = await Promise.all([
      measure('io', `io ${jobDir()} ${size}`),
      measure('quiet', 'quiet'),
    ]);
    const at = `mountpoint="${mount}"`;
    // dd's own start-up (the dynamic loader reading libc's header, locale files) is the constant
    within('write bytes', io.get(`write_bytes_total{${at}}`), size * MIB, size * MIB * 1.01 + 64 * 1024);
    within('read bytes', io.get(`read_bytes_total{${at}}`), size * MIB, size * MIB * 1.01 + 64 * 1024);
    within('write requests', io.get(`write_requests_total{${at}}`), size, size + 50);
    assert.equal(io.get(`write_errors_total{${at}}`), 0);
    assert.equal(io.get(`read_errors_total{${at}}`), 0);
    // /dev/zero read, /dev/null written: the other mount
    within(
      'read bytes of /dev',
      io.get('read_bytes_total{mountpoint="/dev"}'),
      size * MIB,
      size * MIB + 4096,
    );
    within(
      'write bytes of /dev',
      io.get('write_bytes_total{mountpoint="/dev"}'),
      size * MIB,
      size * MIB + 4096,
    );
    nothing(quiet, /^(read|write)_|^(ingress|egress)_/, 'the quiet job beside the dd job');
  });

  it('TCP/IPv4 and UDP/IPv6 over loopback: egress and ingress per proto and family', async () => {
    const n = 8 * MIB;
    const m = 500;
    const size = 1000;
    const net = await measure('net', `net ${n} ${m} ${size}`);
    const tcp4 = 'family="ipv4",proto="tcp"';
    const udp6 = 'family="ipv6",proto="udp"';
    within('TCP egress bytes', net.get(`egress_bytes_total{${tcp4}}`), n, n * 1.01);
    within('TCP ingress bytes', net.get(`ingress_bytes_total{${tcp4}}`), n, n * 1.01);
    within('UDP egress bytes', net.get(`egress_bytes_total{${udp6}}`), m * size, m * size * 1.01);
    within('UDP ingress bytes', net.get(`ingress_bytes_total{${udp6}}`), m * size, m * size * 1.01);
    within('UDP egress packets', net.get(`egress_packets_total{${udp6}}`), m, m);
    within('UDP ingress packets', net.get(`ingress_packets_total{${udp6}}`), m, m);
    nothing(net, /family="ipv6",proto="tcp"|family="ipv4",proto="udp"/, 'TCP/IPv6 and UDP/IPv4');
    nothing(net, /^retrans_/, 'retransmissions over loopback');
  });

  it('open, create and unlink requests and errors; a job beside it gets none', async () => {
    const k = 200;
    const [ops, quiet] = await Promise.all([
      measure('files', `files ${jobDir()} ${k}`),
      measure('quiet2', 'quiet'),
    ]);
    // K creates, K opens again, K failed opens; one mkdir; K unlinks, K failed unlinks, one rmdir
    assert.equal(ops.get('open_requests_total{}'), 3 * k);
    assert.equal(ops.get('open_errors_total{}'), k);
    assert.equal(ops.get('create_requests_total{}'), k + 1);
    assert.equal(ops.get('open_create_total{}'), 0, 'create errors');
    assert.equal(ops.get('unlink_requests_total{}'), 2 * k + 1);
    assert.equal(ops.get('unlink_errors_total{}'), k);
    nothing(quiet, /^(open|create|unlink)_|^open_create/, 'the quiet job beside the files job');

    // all of it read from the maps after root was dropped: the exporter kept cap_bpf and cap_perfmon only
    assert.match(exporter.stderr(), /msg="Dropped root privileges" .*capabilities=\S*cap_perfmon,cap_bpf/);
    const text = await scrape();
    assert.match(text, /^ceems_scrape_collector_duration_seconds\{collector="slurm",subcollector="ebpf"\} /m);
    assert.match(text, /^ceems_scrape_collector_success\{collector="slurm"\} 1$/m);
  });

  it('detaches its programs at stop and the kernel frees them and their maps when the exporter dies', async () => {
    const base = ours(); // this file's exporter's
    const [programs = 0, maps = 0] = base.split('/').map(Number);
    assert.ok(programs >= 20 && maps === 4, `programs/maps of the running exporter: ${base}`);
    const second = await startProgram('ceems_exporter', EXPORTER_ARGS);
    assert.equal(ours(), `${2 * programs}/${2 * maps}`);
    await second.stop('SIGKILL');
    const freed = (what: string) =>
      waitFor(`programs and maps of the ${what} exporter to be freed`, 10_000, () => {
        const now = ours();
        if (now === base) return true;
        throw new Error(`${now} loaded, ${base} before`);
      });
    await freed('killed');
    const third = await startProgram('ceems_exporter', EXPORTER_ARGS);
    assert.equal(await third.stop(), 0);
    await freed('stopped');
  });

  it('without cap_bpf: the reason is logged once and the slurm collector still succeeds', async () => {
    const proc = spawn(
      'setpriv',
      [
        '--bounding-set=-bpf,-perfmon,-sys_admin',
        '--inh-caps=-all',
        process.execPath,
        join(ROOT, 'bin/ceems_exporter'),
        ...EXPORTER_ARGS,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const limited = await awaitListening(proc, 'ceems_exporter without cap_bpf');
    try {
      for (let i = 0; i < 3; i++) {
        const text = await (await fetch(`${limited.url}/metrics`)).text();
        assert.match(text, /^ceems_scrape_collector_success\{collector="slurm"\} 1$/m);
        assert.match(text, /^ceems_compute_units\{/m);
        assert.doesNotMatch(text, /^ceems_ebpf_/m);
      }
      const reports = limited
        .stderr()
        .split('\n')
        .filter((l) => l.includes('cannot load the ebpf programs'));
      assert.equal(reports.length, 1, limited.stderr());
      assert.match(reports[0]!, /EPERM/);
    } finally {
      await limited.stop();
    }
  });
});
