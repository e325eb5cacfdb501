// The exporter over HTTP on a large generated SLURM cgroup v2 tree: the streamed exposition (many 64 KiB
// pieces, identity and gzip) is whole and the same either way, and jobs that start or end between two
// scrapes are in the very next scrape although the exporter keeps the tree's structure between scrapes.

import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { type Started, startProgram } from '../helpers/process.js';

const JOBS = 1500;
const FILES: Record<string, string> = {
  'cpu.stat': 'usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\n',
  'cpuset.cpus.effective': '0-1\n',
  'memory.current': '1048576\n',
  'memory.max': 'max\n',
  'memory.stat': 'anon 524288\nfile 262144\n',
  'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n',
};

class Tree {
  readonly root = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'ceems-stream-'));
  readonly cgroupfs = join(this.root, 'cgroup');
  readonly procfs = join(this.root, 'proc');
  readonly scope = join(this.cgroupfs, 'system.slice', 'slurmstepd.scope');

  constructor() {
    chmodSync(this.root, 0o755); // read by nobody after the switch
    mkdirSync(this.scope, { recursive: true });
    mkdirSync(this.procfs);
    writeFileSync(join(this.procfs, 'meminfo'), 'MemTotal: 1048576 kB\nSwapTotal: 0 kB\n');
  }

  add(id: number): void {
    const job = join(this.scope, `job_${id}`);
    mkdirSync(join(job, 'step_0'), { recursive: true });
    writeFileSync(join(job, 'cgroup.procs'), '');
    writeFileSync(join(job, 'step_0', 'cgroup.procs'), `${id}\n`);
    for (const [f, text] of Object.entries(FILES)) writeFileSync(join(job, f), text);
    mkdirSync(join(this.procfs, String(id)), { recursive: true });
  }

  remove(id: number): void {
    rmSync(join(this.scope, `job_${id}`), { recursive: true });
  }
}

async function scrape(url: string, gzip: boolean): Promise<string> {
  // undici's request leaves the body as sent (fetch would decompress it)
  const res = await request(url, { headers: gzip ? { 'accept-encoding': 'gzip' } : {} });
  assert.equal(res.statusCode, 200);
  const body = Buffer.from(await res.body.arrayBuffer());
  assert.equal(res.headers['content-encoding'], gzip ? 'gzip' : undefined);
  return (gzip ? gunzipSync(body) : body).toString();
}

const uuids = (text: string) =>
  [...text.matchAll(/^ceems_compute_unit_cpu_user_seconds_total\{[^}]*uuid="(\d+)"\} 2$/gm)].map(
    (m) => m[1]!,
  );

describe('exporter: streamed exposition of a large node', () => {
  let t: Tree;
  let exp: Started;
  before(async () => {
    t = new Tree();
    for (let i = 1; i <= JOBS; i++) t.add(100_000 + i);
    exp = await startProgram('ceems_exporter', [
      '--web.listen-address=127.0.0.1:0',
      '--collector.disable-defaults',
      '--collector.slurm',
      '--collector.gpu.type=nogpu',
      '--collector.cgroups.force-version=v2',
      `--path.cgroupfs=${t.cgroupfs}`,
      `--path.procfs=${t.procfs}`,
      '--web.disable-exporter-metrics',
    ]);
  });
  after(async () => {
    await exp?.stop();
    rmSync(t.root, { recursive: true, force: true });
  });

  it('sends every series whole, the same with and without gzip', async () => {
    const plain = await scrape(`${exp.url}/metrics`, false);
    assert.ok(plain.length > 4 * 64 * 1024, `${plain.length} bytes: several pieces`);
    assert.ok(plain.endsWith('\n'));
    for (const line of plain.split('\n').slice(0, -1))
      assert.match(line, /^(# (HELP|TYPE) \S+ .+|[a-z_]+(\{[^}]*\})? \S+)$/);
    assert.equal(uuids(plain).length, JOBS);
    assert.match(
      plain,
      new RegExp(`^ceems_compute_units\\{hostname="[^"]*",manager="slurm"\\} ${JOBS}$`, 'm'),
    );
    const zipped = await scrape(`${exp.url}/metrics`, true);
    // only the scrape duration differs between two scrapes
    const strip = (s: string) => s.replace(/^ceems_scrape_collector_duration_seconds.*$/gm, '');
    assert.equal(strip(zipped), strip(plain));
  });

  it('sees jobs that started and ended since the previous scrape', async () => {
    const before = new Set(uuids(await scrape(`${exp.url}/metrics`, false)));
    // one ends and one starts: the scope directory keeps its link count
    t.remove(100_007);
    t.add(200_001);
    let now = new Set(uuids(await scrape(`${exp.url}/metrics`, false)));
    assert.ok(!now.has('100007') && now.has('200001') && now.size === before.size);
    // a step appears in a running job: its PID counts at once
    mkdirSync(join(t.scope, 'job_100008', 'step_1'));
    writeFileSync(join(t.scope, 'job_100008', 'step_1', 'cgroup.procs'), '100008\n');
    t.remove(100_009);
    now = new Set(uuids(await scrape(`${exp.url}/metrics`, false)));
    assert.ok(now.has('100008') && !now.has('100009') && now.size === before.size - 1);
  });
});
