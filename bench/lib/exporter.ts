// What the exporter benchmarks share: a generated SLURM cgroup v2 tree, the C floor that reads the same
// directories and files, the real exporter as a child process (bin/ceems_exporter, i.e. dist/: run
// `npm run build` first) and the per-process figures read from /proc (RSS, CPU in ns from schedstat).

import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROGRAMS } from '../../scripts/package.js';
import { awaitListening, ROOT, type Started } from '../../test/helpers/process.js';

/** The exporter's Node.js flags (test/integration/packaging.test.ts checks bin/ceems_exporter passes these). */
const EXPORTER_EXEC_ARGV = PROGRAMS.find((p) => p.name === 'ceems_exporter')?.execArgv ?? [];

export interface Tree {
  root: string;
  cgroupfs: string;
  procfs: string;
  dirs: string[];
  files: string[];
  pids: string[];
  jobs: number;
}

export const UNIT_FILES: Record<string, string> = {
  'cpu.stat':
    'usage_usec 60000000\nuser_usec 45000000\nsystem_usec 15000000\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n',
  'cpuset.cpus.effective': '0-3,8\n',
  'memory.current': '4111222333\n',
  'memory.max': '8589934592\n',
  'memory.stat':
    'anon 3000000000\nfile 1000000000\nkernel 3420160\nkernel_stack 229376\npagetables 2154496\nshmem 0\nfile_mapped 1081344\nfile_dirty 0\ninactive_anon 3000000000\nactive_anon 0\ninactive_file 1000000000\nactive_file 0\nunevictable 0\nslab 1027456\npgfault 254112\npgmajfault 12\n',
  'memory.events': 'low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\noom_group_kill 0\n',
  'memory.swap.current': '0\n',
  'memory.swap.max': 'max\n',
  'cpu.pressure':
    'some avg10=0.00 avg60=0.00 avg300=0.00 total=2500000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1500000\n',
  'memory.pressure':
    'some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n',
};

/**
 * SLURM v2 layout: slurmstepd.scope/job_N/{step_batch,step_extern,step_0/user/task_0}, 2 PIDs per job, on
 * tmpfs when available (in memory like cgroupfs, so disk latency does not blur the figures). Readable by
 * everyone: the exporter started as root switches to `nobody`.
 */
export function generateSlurmTree(jobs: number): Tree {
  const root = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bench-cgroup-'));
  chmodSync(root, 0o755);
  const cgroupfs = join(root, 'cgroup');
  const procfs = join(root, 'proc');
  const t: Tree = { root, cgroupfs, procfs, dirs: [], files: [], pids: [], jobs };
  const scope = join(cgroupfs, 'system.slice', 'slurmstepd.scope');
  mkdirSync(scope, { recursive: true });
  mkdirSync(procfs, { recursive: true });
  writeFileSync(join(procfs, 'meminfo'), 'MemTotal:       32768000 kB\nSwapTotal:       8192000 kB\n');
  t.dirs.push(join(cgroupfs, 'system.slice'), scope);
  for (let j = 0; j < jobs; j++) {
    const job = join(scope, `job_${2_000_000 + j}`);
    const pids = [100_000 + 2 * j, 100_001 + 2 * j].map(String);
    const children: [string, string][] = [
      ['step_batch', `${pids[0]}\n`],
      ['step_extern', ''],
      ['step_0', ''],
      ['step_0/user', ''],
      ['step_0/user/task_0', `${pids[1]}\n`],
    ];
    mkdirSync(join(job, 'step_0/user/task_0'), { recursive: true });
    mkdirSync(join(job, 'step_batch'));
    mkdirSync(join(job, 'step_extern'));
    t.dirs.push(job);
    writeFileSync(join(job, 'cgroup.procs'), '');
    t.files.push(join(job, 'cgroup.procs'));
    for (const [f, text] of Object.entries(UNIT_FILES)) {
      writeFileSync(join(job, f), text);
      t.files.push(join(job, f));
    }
    for (const [c, procs] of children) {
      t.dirs.push(join(job, c));
      writeFileSync(join(job, c, 'cgroup.procs'), procs);
      t.files.push(join(job, c, 'cgroup.procs'));
    }
    for (const p of pids) {
      mkdirSync(join(procfs, p));
      t.pids.push(join(procfs, p));
    }
  }
  return t;
}

export function removeTree(t: Tree): void {
  rmSync(t.root, { recursive: true, force: true });
}

/** Exporter flags of the slurm collector on a generated tree. */
export function slurmArgs(t: Tree): string[] {
  return [
    '--collector.slurm',
    '--collector.slurm.swap-memory-metrics',
    '--collector.slurm.psi-metrics',
    '--collector.gpu.type=nogpu',
    '--collector.cgroups.force-version=v2',
    `--path.cgroupfs=${t.cgroupfs}`,
    `--path.procfs=${t.procfs}`,
    `--path.sysfs=${join(t.root, 'sys')}`,
  ];
}

// The floor: every directory listed, every file read to its end (O_NONBLOCK, as the exporter opens them),
// every PID checked, `reps` times; prints wall and CPU ns of each pass.
const FLOOR_C = String.raw`
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static char buf[65536];
static long long ns(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
int main(int argc, char **argv) {
  FILE *in = fopen(argv[1], "r");
  int reps = atoi(argv[2]);
  size_t cap = 1024, n = 0;
  char **paths = malloc(cap * sizeof *paths);
  char *kinds = malloc(cap);
  char line[4096];
  while (fgets(line, sizeof line, in)) {
    size_t l = strlen(line);
    if (l < 3) continue;
    line[l - 1] = 0;
    if (n == cap) { cap *= 2; paths = realloc(paths, cap * sizeof *paths); kinds = realloc(kinds, cap); }
    kinds[n] = line[0];
    paths[n++] = strdup(line + 2);
  }
  long long sum = 0;
  for (int r = 0; r < reps; r++) {
    long long w0 = ns(CLOCK_MONOTONIC), c0 = ns(CLOCK_PROCESS_CPUTIME_ID);
    for (size_t i = 0; i < n; i++) {
      if (kinds[i] == 'd') {
        DIR *d = opendir(paths[i]);
        if (!d) continue;
        while (readdir(d)) sum++;
        closedir(d);
      } else if (kinds[i] == 'f') {
        int fd = open(paths[i], O_RDONLY | O_NONBLOCK);
        if (fd < 0) continue;
        ssize_t k;
        while ((k = read(fd, buf, sizeof buf)) > 0) sum += k;
        close(fd);
      } else if (access(paths[i], F_OK) == 0) sum++;
    }
    printf("%lld %lld\n", ns(CLOCK_MONOTONIC) - w0, ns(CLOCK_PROCESS_CPUTIME_ID) - c0);
  }
  fprintf(stderr, "%lld\n", sum);
  return 0;
}
`;

export interface Figures {
  wallMs: number;
  cpuMs: number;
}

export const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

/** Compiles the C floor into `dir`; undefined (with the reason printed) when gcc is missing or fails. */
export function compileFloor(dir: string): string | undefined {
  const src = join(dir, 'floor.c');
  const bin = join(dir, 'floor');
  writeFileSync(src, FLOOR_C);
  try {
    execFileSync('gcc', ['-O2', '-o', bin, src], { stdio: ['ignore', 'ignore', 'pipe'] });
    return bin;
  } catch (e) {
    console.log(`  gcc unavailable or failed (${(e as Error).message.split('\n')[0]}): JS floor instead`);
    return undefined;
  }
}

/** Writes the floors' list of `t` (one `d|f|p <path>` per line) into `dir`; returns its path. */
function writeList(t: Tree, dir: string): string {
  const list = join(dir, 'list.txt');
  const lines = [
    ...t.dirs.map((d) => `d ${d}`),
    ...t.files.map((f) => `f ${f}`),
    ...t.pids.map((p) => `p ${p}`),
  ];
  writeFileSync(list, `${lines.join('\n')}\n`);
  return list;
}

/** Median wall and CPU of the "<wall ns> <cpu ns>" lines a floor printed, its first (warm-up) pass left out. */
function passes(out: string): Figures {
  const p = out
    .split('\n')
    .filter((l) => /^\d+ \d+$/.test(l))
    .slice(1)
    .map((l) => l.split(' ').map(Number) as [number, number]);
  return { wallMs: median(p.map((x) => x[0] / 1e6)), cpuMs: median(p.map((x) => x[1] / 1e6)) };
}

/** The C floor over `t` (Node.js floor when gcc is missing): median of `reps` passes after one warm-up. */
export function floor(t: Tree, reps: number, bin: string | undefined, dir: string): Figures {
  if (!bin) return nodeFloor(t, reps, dir);
  const out = execFileSync(bin, [writeList(t, dir), String(reps + 1)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return passes(out);
}

/**
 * The Node.js floor over `t` (bench/lib/node-floor.mjs in its own process of the exporter's `node`, with the
 * exporter's V8 flags, as bin/ceems_exporter and its executable pass them, and MALLOC_ARENA_MAX): the same I/O
 * through Node's fs bindings, nothing parsed or encoded; with that process's peak RSS.
 */
export function nodeFloor(t: Tree, reps: number, dir: string): Figures & { peakMiB: number } {
  const out = execFileSync(
    nodeBinary(),
    [...EXPORTER_EXEC_ARGV, join(ROOT, 'bench/lib/node-floor.mjs'), writeList(t, dir), String(reps + 1)],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, MALLOC_ARENA_MAX: '1' } },
  );
  const peakKiB = Number(/^peak (\d+)$/m.exec(out)?.[1]);
  return { ...passes(out), peakMiB: peakKiB / 1024 };
}

/** CPU time of every thread of `pid` in ns (schedstat), precise where /proc/<pid>/stat counts 10 ms ticks. */
export function cpuNs(pid: number): number {
  let sum = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      sum += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // thread ended meanwhile
    }
  }
  return sum;
}

/**
 * RSS and peak RSS of `pid`, and the RSS split into anonymous memory (heaps, stacks: what the process takes
 * from the node) and file-backed pages (mostly the executable's code and read-only data it touched: page
 * cache, shared and reclaimable).
 */
export function memory(pid: number): { rssMiB: number; peakMiB: number; anonMiB: number; fileMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return {
    rssMiB: kb('VmRSS') / 1024,
    peakMiB: kb('VmHWM') / 1024,
    anonMiB: kb('RssAnon') / 1024,
    fileMiB: kb('RssFile') / 1024,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Bare `node` with a timer, the RSS floor: its RSS after `settleMs`, its peak, and its CPU over `idleMs`.
 * Same executable as bin/ceems_exporter runs with.
 */
export async function bareNode(
  settleMs: number,
  idleMs: number,
): Promise<Idle & { peakMiB: number; anonMiB: number; fileMiB: number }> {
  const child = spawn(nodeBinary(), ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
  try {
    await sleep(settleMs);
    const mem = memory(child.pid!);
    const idle = await idleCpu(child.pid!, idleMs);
    return { ...mem, idleCpuPct: idle };
  } finally {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
}

export interface Idle {
  rssMiB: number;
  idleCpuPct: number;
}

/** CPU share (%) `pid` uses over `ms` while nothing asks it anything. */
export async function idleCpu(pid: number, ms: number): Promise<number> {
  const c0 = cpuNs(pid);
  const t0 = performance.now();
  await sleep(ms);
  return ((cpuNs(pid) - c0) / 1e6 / (performance.now() - t0)) * 100;
}

/** The Node.js bin/ceems_exporter runs with: the project's node_modules/.bin/node, else the one on PATH. */
export function nodeBinary(): string {
  const local = join(ROOT, 'node_modules/.bin/node');
  return existsSync(local) ? local : 'node';
}

/** Warns when dist/ is older than the exporter's sources (the benchmark runs dist/ through bin/). */
export function warnIfStale(): void {
  const built = join(ROOT, 'dist/exporter/main.js');
  if (!existsSync(built)) throw new Error('dist/exporter/main.js missing: run `npm run build` first');
  const newest = (dir: string): number =>
    Math.max(
      0,
      ...readdirSync(dir, { withFileTypes: true, recursive: true })
        .filter((e) => e.isFile() && e.name.endsWith('.ts'))
        .map((e) => statSync(join(e.parentPath, e.name)).mtimeMs),
    );
  const src = Math.max(newest(join(ROOT, 'src/exporter')), newest(join(ROOT, 'src/common')));
  if (src > statSync(built).mtimeMs)
    console.log('  WARNING: src/ is newer than dist/: run `npm run build` first');
}

/** Starts bin/ceems_exporter, or the executable `exe` (a packaged one), on a free loopback port. */
export function startExporter(args: string[], exe = join(ROOT, 'bin/ceems_exporter')): Promise<Started> {
  const proc = spawn(exe, ['--web.listen-address=127.0.0.1:0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return awaitListening(proc, 'ceems_exporter', { timeoutMs: 60_000 });
}

/** A free loopback port (for a peer that cannot report the port it bound). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

/** GET `url`; resolves to the body size and wall ms. */
export function get(url: string, gzip = false): Promise<{ status: number; bytes: number; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: gzip ? { 'accept-encoding': 'gzip' } : {}, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => {
        bytes += d.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * `n` scrapes of `url` one after the other: median wall, and the CPU `pid` used over all of them divided by
 * `n` (so garbage collection after a response counts too), body bytes.
 */
export async function scrapes(
  url: string,
  pid: number,
  n: number,
  gzip = false,
): Promise<Figures & { bytes: number }> {
  const walls: number[] = [];
  let bytes = 0;
  const c0 = cpuNs(pid);
  for (let i = 0; i < n; i++) {
    const r = await get(url, gzip);
    if (r.status !== 200) throw new Error(`scrape answered ${r.status}`);
    walls.push(r.ms);
    bytes = r.bytes;
  }
  return { wallMs: median(walls), cpuMs: (cpuNs(pid) - c0) / 1e6 / n, bytes };
}

export const mib = (v: number): string => `${v.toFixed(1)} MiB`;
export const ms = (v: number): string => (v < 10 ? `${v.toFixed(2)} ms` : `${v.toFixed(0)} ms`);
export const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}x`;
