// slurm collector scrape over a generated cgroup v2 tree of N jobs vs the floor of a minimal reader that
// lists the same directories and reads the same files once (no parsing, no metrics). Also checks that
// the cost grows linearly with the number of jobs.

import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode } from '../src/common/exposition.js';
import { parseFlags } from '../src/common/flags.js';
import { readFileFast } from '../src/common/fsread.js';
import { createLogger } from '../src/common/logger.js';
import { FamilySet } from '../src/exporter/collector.js';
import { slurm } from '../src/exporter/collectors/slurm.js';

interface Tree {
  root: string;
  cgroupfs: string;
  procfs: string;
  dirs: string[];
  files: string[];
  pids: string[];
}

const UNIT_FILES: Record<string, string> = {
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

/** SLURM v2 layout: slurmstepd.scope/job_N/{step_batch,step_extern,step_0/user/task_0}, 2 PIDs per job. */
function generate(jobs: number): Tree {
  // tmpfs when available: in-memory like cgroupfs, so disk latency does not blur the figures
  const root = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bench-cgroup-'));
  const cgroupfs = join(root, 'cgroup');
  const procfs = join(root, 'proc');
  const t: Tree = { root, cgroupfs, procfs, dirs: [], files: [], pids: [] };
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

/** The floor: list every directory, read every file, check every PID once. */
function floor(t: Tree): number {
  let n = 0;
  for (const d of t.dirs) n += readdirSync(d, { withFileTypes: true }).length;
  for (const f of t.files) n += readFileFast(f).length;
  for (const p of t.pids) if (existsSync(p)) n++;
  return n;
}

interface Figures {
  wallMs: number;
  cpuMs: number;
}

function measure(fn: () => unknown, reps: number): Figures {
  fn(); // warm-up (page cache, JIT)
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    walls.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpus.push((c.user + c.system) / 1000);
  }
  const median = (a: number[]) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  return { wallMs: median(walls), cpuMs: median(cpus) };
}

async function scraper(t: Tree): Promise<() => number> {
  const { flags } = parseFlags(slurm.flags, [
    '--collector.cgroups.force-version=v2',
    '--collector.gpu.type=nogpu',
    '--collector.slurm.swap-memory-metrics',
    '--collector.slurm.psi-metrics',
  ]);
  const c = await slurm.create({
    hostname: 'node-001',
    procfs: t.procfs,
    sysfs: t.procfs,
    cgroupfs: t.cgroupfs,
    flags,
    logger: createLogger({ level: 'silent' }),
  });
  return () => {
    const out = new FamilySet();
    c.update(out, new AbortController().signal);
    return encode(out.families.values()).length;
  };
}

export async function run(small: boolean): Promise<void> {
  const sizes = small ? [50] : [1000, 3000];
  const reps = small ? 3 : 7;
  const rows: { jobs: number; scrape: Figures; floor: Figures }[] = [];
  for (const jobs of sizes) {
    const t = generate(jobs);
    try {
      const scrape = await scraper(t);
      const bytes = scrape();
      const rss0 = process.resourceUsage().maxRSS;
      const s = measure(scrape, reps);
      const rssGrowthMb = (process.resourceUsage().maxRSS - rss0) / 1024;
      const f = measure(() => floor(t), reps);
      rows.push({ jobs, scrape: s, floor: f });
      console.log(
        `jobs=${jobs} files=${t.files.length} dirs=${t.dirs.length} exposition=${(bytes / 1024).toFixed(0)} KiB`,
      );
      console.log(
        `  scrape (walk + read + parse + encode): wall ${s.wallMs.toFixed(1)} ms, CPU ${s.cpuMs.toFixed(1)} ms`,
      );
      console.log(
        `  floor (readdir + read each file once): wall ${f.wallMs.toFixed(1)} ms, CPU ${f.cpuMs.toFixed(1)} ms`,
      );
      console.log(
        `  ratio scrape/floor: wall ${(s.wallMs / f.wallMs).toFixed(2)}x, CPU ${(s.cpuMs / f.cpuMs).toFixed(2)}x; ` +
          `peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB (grew ${rssGrowthMb.toFixed(1)} MiB during scrapes)`,
      );
    } finally {
      rmSync(t.root, { recursive: true, force: true });
    }
  }
  if (rows.length === 2) {
    const [a, b] = rows as [(typeof rows)[0], (typeof rows)[0]];
    const per = (r: (typeof rows)[0]) => r.scrape.wallMs / r.jobs;
    console.log(
      `linearity: ${(per(a) * 1000).toFixed(1)} µs/job at ${a.jobs} jobs, ${(per(b) * 1000).toFixed(1)} µs/job at ${b.jobs} jobs (ratio ${(per(b) / per(a)).toFixed(2)})`,
    );
  }
}
