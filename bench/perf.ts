// perf sub-collector overhead: one slurm scrape of 100 jobs × 10 real processes with software-event
// counters against the same scrape without perf, alternated in the same run. The processes are real
// (`sleep` children of this benchmark: perf_event_open needs live tasks); the cgroup tree is a generated
// SLURM cgroup v2 tree whose cgroup.procs list them, so both arms read the same cgroup files and the
// difference is perf alone, on any host (this VM's SLURM hierarchy is v1, perf_event lives on v2).
//
// Also measured, perf part only: per-process counters against per-cgroup counters (PERF_FLAG_PID_CGROUP,
// one group per unit and CPU) on the same processes moved into real cgroup v2 directories, and one group
// read per process against one read per event.

import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { encode } from '../src/common/exposition.js';
import { parseFlags } from '../src/common/flags.js';
import { readFileFast } from '../src/common/fsread.js';
import { createLogger } from '../src/common/logger.js';
import type { Collector } from '../src/exporter/collector.js';
import { FamilySet } from '../src/exporter/collector.js';
import { slurm } from '../src/exporter/collectors/slurm.js';
import {
  countingAttr,
  decodeGroup,
  decodeSingle,
  encodeAttr,
  groupReadBytes,
  PERF_FLAG_PID_CGROUP,
  READ_FORMAT,
  type Reading,
  SINGLE_READ_BYTES,
} from '../src/exporter/perf/attr.js';
import { CounterPlan, CounterSet, LINUX } from '../src/exporter/perf/counters.js';
import { PERF_EVENTS } from '../src/exporter/perf/events.js';
import { scaledDelta } from '../src/exporter/perf/scale.js';

const SOFTWARE = PERF_EVENTS.filter((e) => e.kind === 'software');

/** `n` sleeping children; their shell (outside every unit) is their parent, as slurmstepd is a job's. */
async function sleepers(n: number): Promise<{ shell: ChildProcess; pids: number[] }> {
  const shell = spawn(
    'sh',
    ['-c', `i=0; while [ $i -lt ${n} ]; do sleep 3600 & echo $!; i=$((i+1)); done; wait`],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      detached: true, // own process group: killed together at the end
    },
  );
  const pids: number[] = [];
  let buf = '';
  for await (const chunk of shell.stdout!) {
    buf += String(chunk);
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) pids.push(Number(l));
    if (pids.length >= n) break;
  }
  return { shell, pids };
}

/** SLURM cgroup v2 tree: slurmstepd.scope/job_N/step_0/user/task_0 holding the job's processes. */
function cgroupTree(units: number[][]): { root: string; cgroupfs: string } {
  const root = mkdtempSync(join('/dev/shm', 'bench-perf-'));
  const cgroupfs = join(root, 'cgroup');
  const scope = join(cgroupfs, 'system.slice', 'slurmstepd.scope');
  units.forEach((pids, j) => {
    const job = join(scope, `job_${3_000_000 + j}`);
    const task = join(job, 'step_0/user/task_0');
    mkdirSync(task, { recursive: true });
    const files: Record<string, string> = {
      'cpu.stat': 'usage_usec 60000000\nuser_usec 45000000\nsystem_usec 15000000\n',
      'cpuset.cpus.effective': '0-1\n',
      'memory.current': '4111222333\n',
      'memory.max': '8589934592\n',
      'memory.stat': 'anon 3000000000\nfile 1000000000\n',
      'memory.events': 'oom 0\n',
      'cgroup.procs': '',
    };
    for (const [f, text] of Object.entries(files)) writeFileSync(join(job, f), text);
    for (const d of ['step_0', 'step_0/user']) writeFileSync(join(job, d, 'cgroup.procs'), '');
    writeFileSync(join(task, 'cgroup.procs'), `${pids.join('\n')}\n`);
  });
  return { root, cgroupfs };
}

async function slurmScraper(
  cgroupfs: string,
  perf: boolean,
): Promise<{ c: Collector; scrape: () => Promise<number> }> {
  const args = ['--collector.cgroups.force-version=v2', '--collector.gpu.type=nogpu'];
  if (perf) args.push('--collector.perf.software-events');
  const { flags } = parseFlags(slurm.flags, args);
  const c = await slurm.create({
    hostname: 'node-001',
    procfs: '/proc',
    sysfs: '/sys',
    cgroupfs,
    flags,
    logger: createLogger({ level: 'silent' }),
  });
  const scrape = async () => {
    const out = new FamilySet();
    await c.update(out, new AbortController().signal);
    return encode(out.families.values()).length;
  };
  return { c, scrape };
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

/** Median wall time (ms) of `fn`, the arms alternated so that drift hits both alike. */
async function alternate(arms: Record<string, () => unknown>, reps: number): Promise<Record<string, number>> {
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(arms).map((k) => [k, []]));
  for (const fn of Object.values(arms)) await fn(); // warm-up
  for (let i = 0; i < reps; i++)
    for (const [name, fn] of Object.entries(arms)) {
      const t0 = performance.now();
      await fn();
      times[name]!.push(performance.now() - t0);
    }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}

/** The cgroup2 mount: /sys/fs/cgroup on unified hosts, /sys/fs/cgroup/unified on hybrid ones. */
function cgroup2Mount(): string | undefined {
  for (const line of readFileFast('/proc/mounts').split('\n')) {
    const [, dir, type] = line.split(' ');
    if (type === 'cgroup2') return dir;
  }
  return undefined;
}

/** Per-cgroup counters: one software group per unit cgroup and CPU, read and scaled like per-process ones. */
function perCgroup(mount: string, units: number[][]) {
  const base = join(mount, `ceems-bench-perf-${process.pid}`);
  mkdirSync(base);
  const dirs = units.map((pids, j) => {
    const d = join(base, `job_${j}`);
    mkdirSync(d);
    for (const pid of pids) writeFileSync(join(d, 'cgroup.procs'), String(pid));
    return d;
  });
  const attrs = SOFTWARE.map((e) =>
    encodeAttr(
      countingAttr(
        e.type,
        e.config,
        READ_FORMAT.TOTAL_TIME_ENABLED | READ_FORMAT.TOTAL_TIME_RUNNING | READ_FORMAT.GROUP,
      ),
    ),
  );
  // cgroup events are per CPU; inherit does not apply to them
  for (const a of attrs) a.writeBigUInt64LE(a.readBigUInt64LE(40) & ~2n, 40);
  const cpus = availableParallelism();
  const groups: { fds: number[]; last: Reading[] }[] = [];
  let dirFds: number[] = [];
  const open = () => {
    dirFds = dirs.map((d) => openSync(d, 'r'));
    for (const dfd of dirFds)
      for (let cpu = 0; cpu < cpus; cpu++) {
        const fds: number[] = [];
        for (const a of attrs) fds.push(LINUX.open(a, dfd, cpu, fds[0] ?? -1, PERF_FLAG_PID_CGROUP));
        LINUX.enable(fds[0]!, true);
        groups.push({ fds, last: SOFTWARE.map(() => ({ value: 0, enabled: 0, running: 0 })) });
      }
  };
  const buf = Buffer.alloc(groupReadBytes(SOFTWARE.length));
  const totals = new Float64Array(SOFTWARE.length * units.length);
  const read = () => {
    groups.forEach((g, i) => {
      LINUX.read(g.fds[0]!, buf, buf.length);
      const unit = Math.floor(i / cpus);
      decodeGroup(buf, SOFTWARE.length).forEach((r, k) => {
        totals[unit * SOFTWARE.length + k]! += scaledDelta(g.last[k]!, r);
        g.last[k] = r;
      });
    });
  };
  const close = () => {
    for (const g of groups) for (const fd of g.fds) closeSync(fd);
    for (const fd of dirFds) closeSync(fd);
    groups.length = 0;
  };
  const remove = () => {
    close();
    // the processes go back to the root cgroup before their directories can go
    for (const [j, pids] of units.entries()) {
      for (const pid of pids) writeFileSync(join(mount, 'cgroup.procs'), String(pid));
      rmdirSync(dirs[j]!);
    }
    rmdirSync(base);
  };
  return { open, read, close, remove, fds: () => groups.length * SOFTWARE.length };
}

/** Reading each process's software events: one group read against one read per event. */
function readModes(pids: number[]) {
  const grouped = pids.map((pid) => CounterSet.open(LINUX, new CounterPlan(SOFTWARE), pid));
  const singleAttrs = SOFTWARE.map((e) =>
    encodeAttr(
      countingAttr(e.type, e.config, READ_FORMAT.TOTAL_TIME_ENABLED | READ_FORMAT.TOTAL_TIME_RUNNING),
    ),
  );
  const singles = pids.map((pid) =>
    singleAttrs.map((a) => {
      const fd = LINUX.open(a, pid, -1, -1, 0);
      LINUX.enable(fd, false);
      return fd;
    }),
  );
  const totals = new Float64Array(SOFTWARE.length);
  const buf = Buffer.alloc(SINGLE_READ_BYTES);
  return {
    group: () => {
      for (const s of grouped) s.addDeltas(totals);
    },
    single: () => {
      for (const fds of singles)
        fds.forEach((fd, k) => {
          LINUX.read(fd, buf, SINGLE_READ_BYTES);
          totals[k]! += decodeSingle(buf).value;
        });
    },
    close: () => {
      for (const s of grouped) s.close();
      for (const fds of singles) for (const fd of fds) closeSync(fd);
    },
  };
}

/** Per-process against per-cgroup counters on the same processes grouped as `units`: open and read. */
async function compare(mount: string, pids: number[], units: number[][], reps: number): Promise<void> {
  const n = pids.length;
  const perProcess = new CounterPlan(SOFTWARE);
  const sets = pids.map((pid) => CounterSet.open(LINUX, perProcess, pid));
  const totals = new Float64Array(SOFTWARE.length);
  const cg = perCgroup(mount, units);
  try {
    const opens = await alternate(
      {
        process: () => {
          for (const s of pids.map((pid) => CounterSet.open(LINUX, perProcess, pid))) s.close();
        },
        cgroup: () => {
          cg.open();
          cg.close();
        },
      },
      Math.min(reps, 5),
    );
    cg.open();
    const reads = await alternate(
      {
        process: () => {
          for (const s of sets) s.addDeltas(totals);
        },
        cgroup: cg.read,
      },
      reps,
    );
    const cpus = availableParallelism();
    const perSet = (reads.process! * 1000) / n;
    const perGroup = (reads.cgroup! * 1000) / (units.length * cpus);
    console.log(
      `  per-process vs per-cgroup, ${units.length} units × ${n / units.length} processes, perf part only: ` +
        `read ${reads.process!.toFixed(2)} vs ${reads.cgroup!.toFixed(2)} ms per scrape (${n} sets at ` +
        `${perSet.toFixed(1)} µs vs ${units.length} units × ${cpus} CPUs at ${perGroup.toFixed(1)} µs: ` +
        `${(reads.process! / reads.cgroup!).toFixed(1)}x); open ${opens.process!.toFixed(1)} vs ` +
        `${opens.cgroup!.toFixed(1)} ms; descriptors ${n * SOFTWARE.length} vs ${cg.fds()}`,
    );
    // per-cgroup reads grow with units × CPUs, per-process reads with processes
    const ms = (count: number, us: number) => `${((count * us) / 1000).toFixed(2)} ms`;
    console.log(
      `    per-cgroup reads cost less while a unit has more than ${((cpus * perGroup) / perSet).toFixed(1)} ` +
        `processes (${cpus} CPUs × ${(perGroup / perSet).toFixed(2)}); extrapolated to 128 CPUs shared by 16 jobs ` +
        `of 8 processes: per-process ${ms(128, perSet)}, per-cgroup ${ms(16 * 128, perGroup)}`,
    );
  } finally {
    for (const s of sets) s.close();
    cg.remove();
  }
}

export async function run(small: boolean): Promise<void> {
  const nUnits = small ? 5 : 100;
  const perUnit = small ? 2 : 10;
  const reps = small ? 3 : 15;
  const n = nUnits * perUnit;
  const { shell, pids } = await sleepers(n);
  const units = Array.from({ length: nUnits }, (_, j) => pids.slice(j * perUnit, (j + 1) * perUnit));
  const tree = cgroupTree(units);
  try {
    const without = await slurmScraper(tree.cgroupfs, false);
    const withPerf = await slurmScraper(tree.cgroupfs, true);
    const t0 = performance.now();
    await withPerf.scrape();
    const first = performance.now() - t0;
    const m = await alternate({ floor: without.scrape, perf: withPerf.scrape }, reps);
    const perProc = ((m.perf! - m.floor!) * 1000) / n;
    console.log(`${nUnits} jobs × ${perUnit} processes, ${SOFTWARE.length} software events per process`);
    console.log(`  first scrape with perf (opens ${n} counter sets): ${first.toFixed(1)} ms`);
    console.log(
      `  scrape without perf (floor) ${m.floor!.toFixed(2)} ms, with perf ${m.perf!.toFixed(2)} ms: ` +
        `ratio ${(m.perf! / m.floor!).toFixed(2)}x, perf ${perProc.toFixed(2)} µs per process`,
    );
    await withPerf.c.stop?.();
    await without.c.stop?.();

    const modes = readModes(pids);
    const r = await alternate({ group: modes.group, single: modes.single }, reps);
    modes.close();
    console.log(
      `  reading a process's ${SOFTWARE.length} counters: one group read ${((r.group! * 1000) / n).toFixed(2)} µs, ` +
        `one read per event ${((r.single! * 1000) / n).toFixed(2)} µs (${(r.single! / r.group!).toFixed(1)}x)`,
    );

    const mount = cgroup2Mount();
    if (!mount) {
      console.log('  per-cgroup counters: no cgroup2 mount here, not measured');
      return;
    }
    await compare(mount, pids, units, reps);
    // the size: 100 processes per unit (the same processes in fewer units)
    const big = small ? 5 : 100;
    await compare(
      mount,
      pids,
      Array.from({ length: n / big }, (_, j) => pids.slice(j * big, (j + 1) * big)),
      reps,
    );
  } finally {
    process.kill(-shell.pid!, 'SIGKILL');
    rmSync(tree.root, { recursive: true, force: true });
  }
}
