// The real exporter (bin/ceems_exporter, a child process: run `npm run build` first) scraped over HTTP with
// the slurm collector on a generated cgroup v2 tree of N jobs, against the floor of a small C program
// (compiled with gcc here) that lists the same directories and reads the same files once per pass, and of the
// same I/O in a plain `node` process (bench/lib/node-floor.mjs: Node's own share of the ratio). Prints wall and
// CPU per scrape against the floors, the exporter's peak RSS against bare `node`, and the cost per job at both
// sizes (it must stay flat).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bareNode,
  compileFloor,
  type Figures,
  floor,
  generateSlurmTree,
  memory,
  mib,
  ms,
  nodeFloor,
  ratio,
  removeTree,
  scrapes,
  slurmArgs,
  startExporter,
  warnIfStale,
} from './lib/exporter.js';

interface Row {
  jobs: number;
  scrape: Figures;
  floor: Figures;
  nodeFloor: Figures;
}

export async function run(small: boolean): Promise<void> {
  warnIfStale();
  const sizes = small ? [50] : [1000, 10_000];
  const work = mkdtempSync(join(tmpdir(), 'bench-floor-'));
  const rows: Row[] = [];
  try {
    const bin = compileFloor(work);
    const bare = await bareNode(500, 0);
    console.log(`bare node: peak RSS ${mib(bare.peakMiB)}; floor: ${bin ? 'C (gcc -O2)' : 'JS'}`);
    for (const jobs of sizes) {
      const reps = small ? 3 : jobs >= 10_000 ? 5 : 9;
      const t = generateSlurmTree(jobs);
      try {
        const f = floor(t, reps, bin, work);
        const nf = nodeFloor(t, reps, work);
        const exp = await startExporter([
          '--collector.disable-defaults',
          ...slurmArgs(t),
          '--web.disable-exporter-metrics',
          '--collector.timeout=300s',
        ]);
        let s: Figures & { bytes: number };
        let start: ReturnType<typeof memory>;
        let end: ReturnType<typeof memory>;
        try {
          start = memory(exp.pid);
          await scrapes(`${exp.url}/metrics`, exp.pid, 2); // warm-up: JIT, page cache
          s = await scrapes(`${exp.url}/metrics`, exp.pid, reps);
          end = memory(exp.pid);
        } finally {
          await exp.stop();
        }
        rows.push({ jobs, scrape: s, floor: f, nodeFloor: nf });
        console.log(
          `jobs=${jobs} (${t.dirs.length} dirs, ${t.files.length} files, ${t.pids.length} PIDs) exposition ${(s.bytes / 1024).toFixed(0)} KiB`,
        );
        console.log(`  exporter scrape over HTTP: wall ${ms(s.wallMs)}, CPU ${ms(s.cpuMs)}`);
        console.log(`  floor (list + read the same once): wall ${ms(f.wallMs)}, CPU ${ms(f.cpuMs)}`);
        // what Node.js's own fs bindings cost for that I/O: the part of the ratio no exporter code can remove
        console.log(
          `  Node.js floor (the same I/O in a node process, nothing parsed): wall ${ms(nf.wallMs)} ` +
            `(${ratio(nf.wallMs, f.wallMs)} the C floor), CPU ${ms(nf.cpuMs)}, peak RSS ${mib(nf.peakMiB)} = ` +
            `bare + ${mib(nf.peakMiB - bare.peakMiB)}; exporter/Node.js floor: wall ${ratio(s.wallMs, nf.wallMs)}`,
        );
        console.log(
          `  ratio: wall ${ratio(s.wallMs, f.wallMs)}, CPU ${ratio(s.cpuMs, f.cpuMs)}; ` +
            `CPU ${((s.cpuMs / jobs) * 1000).toFixed(0)} µs per job; ` +
            `peak RSS ${mib(end.peakMiB)} = bare node + ${mib(end.peakMiB - bare.peakMiB)}`,
        );
        // where the peak comes from: RSS before the first scrape, and after the last split into anonymous
        // memory (V8 heap, malloc) and file-backed pages (mostly the node executable's code)
        console.log(
          `  RSS before the first scrape ${mib(start.rssMiB)} = bare + ${mib(start.rssMiB - bare.rssMiB)}; ` +
            `after the last ${mib(end.rssMiB)}: anonymous ${mib(end.anonMiB)} (bare ${mib(bare.anonMiB)}), ` +
            `file-backed ${mib(end.fileMiB)} (bare ${mib(bare.fileMiB)})`,
        );
      } finally {
        removeTree(t);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  if (rows.length === 2) {
    const [a, b] = rows as [Row, Row];
    const per = (r: Row) => (r.scrape.wallMs / r.jobs) * 1000;
    const perFloor = (r: Row) => (r.floor.wallMs / r.jobs) * 1000;
    const perNode = (r: Row) => (r.nodeFloor.wallMs / r.jobs) * 1000;
    console.log(
      `per job: ${per(a).toFixed(0)} µs at ${a.jobs} jobs, ${per(b).toFixed(0)} µs at ${b.jobs} jobs ` +
        `(ratio ${(per(b) / per(a)).toFixed(2)}; floor ${perFloor(a).toFixed(0)} → ${perFloor(b).toFixed(0)} µs, ` +
        `Node.js floor ${perNode(a).toFixed(0)} → ${perNode(b).toFixed(0)} µs)`,
    );
  }
}
