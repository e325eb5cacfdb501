// The exporter's footprint on a compute node, each figure against its floor in the same run: RSS once it
// listens with the default collectors (fixtures' /proc and /sys) against bare `node` with a timer, started as
// root and as nobody without capabilities (no privilege drop, no FFI addon), idle CPU of both over the same
// window, CPU per scrape of a typical node (defaults + slurm with 50 jobs, gzip and
// self metrics, as Prometheus scrapes it), and Debian's prometheus-node-exporter (Go) with the same node
// collectors on the same fixtures as a peer when it is installed. Runs bin/ceems_exporter: `npm run build`
// first.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildExecutable, PROGRAMS, type Program } from '../scripts/package.js';
import { ROOT } from '../test/helpers/process.js';
import {
  bareNode,
  compileFloor,
  floor,
  freePort,
  generateSlurmTree,
  get,
  idleCpu,
  memory,
  mib,
  ms,
  nodeBinary,
  nodeFloor,
  removeTree,
  scrapes,
  slurmArgs,
  startExporter,
  warnIfStale,
} from './lib/exporter.js';

const FIXTURES = join(ROOT, 'test/fixtures/node');
const NODE_PATHS = [`--path.procfs=${FIXTURES}/proc`, `--path.sysfs=${FIXTURES}/sys`];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** prometheus-node-exporter on PATH (Debian's package), or undefined. */
function nodeExporterBinary(): string | undefined {
  for (const bin of ['prometheus-node-exporter', 'node_exporter']) {
    try {
      execFileSync(bin, ['--version'], { stdio: 'ignore' });
      return bin;
    } catch {
      // not installed under this name
    }
  }
  return undefined;
}

async function startNodeExporter(bin: string): Promise<{ proc: ChildProcess; url: string }> {
  const port = await freePort();
  const proc = spawn(
    bin,
    [
      `--web.listen-address=127.0.0.1:${port}`,
      ...NODE_PATHS,
      '--collector.disable-defaults',
      '--collector.cpu',
      '--collector.meminfo',
      '--collector.rapl',
    ],
    { stdio: 'ignore' },
  );
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      await get(`${url}/`);
      return { proc, url };
    } catch (e) {
      if (i > 100 || proc.exitCode !== null) {
        proc.kill('SIGKILL');
        throw new Error(`${bin} did not start: ${(e as Error).message}`);
      }
      await sleep(50);
    }
  }
}

export async function run(small: boolean): Promise<void> {
  warnIfStale();
  const settleMs = small ? 300 : 1000;
  const idleMs = small ? 1000 : 10_000;
  const n = small ? 20 : 300;

  readFromDisk(nodeBinary()); // just installed (a fresh clone's npm ci), it would count more resident too
  const bare = await bareNode(settleMs, idleMs);
  console.log(
    `bare node (-e with a timer): RSS ${mib(bare.rssMiB)} (anonymous ${mib(bare.anonMiB)}, file-backed ` +
      `${mib(bare.fileMiB)}), idle CPU ${bare.idleCpuPct.toFixed(3)} %`,
  );

  // default collectors (cpu, meminfo, rapl) on the fixtures
  const exp = await startExporter(NODE_PATHS);
  let nodeScrape: Awaited<ReturnType<typeof scrapes>>;
  try {
    await sleep(settleMs);
    const { rssMiB, anonMiB, fileMiB } = memory(exp.pid);
    const idle = await idleCpu(exp.pid, idleMs);
    console.log(
      `exporter, default collectors, before the first scrape: RSS ${mib(rssMiB)} = bare + ${mib(rssMiB - bare.rssMiB)} ` +
        `(anonymous + ${mib(anonMiB - bare.anonMiB)}, file-backed + ${mib(fileMiB - bare.fileMiB)}); ` +
        `idle CPU ${idle.toFixed(3)} % (bare ${bare.idleCpuPct.toFixed(3)} %)`,
    );
    await scrapes(`${exp.url}/metrics`, exp.pid, 5, true);
    nodeScrape = await scrapes(`${exp.url}/metrics`, exp.pid, n, true);
    console.log(
      `  scrape (gzip, self metrics): wall ${ms(nodeScrape.wallMs)}, CPU ${ms(nodeScrape.cpuMs)}; RSS after ${n} scrapes ${mib(memory(exp.pid).rssMiB)}`,
    );
  } finally {
    await exp.stop();
  }
  await unprivilegedStart(bare, settleMs);

  // a typical node: the defaults plus 50 SLURM jobs, against the C floor of reading its jobs' files
  const t = generateSlurmTree(50);
  const work = mkdtempSync(join(tmpdir(), 'bench-floor-'));
  try {
    for (const f of ['stat', 'meminfo']) copyFileSync(join(FIXTURES, 'proc', f), join(t.procfs, f));
    mkdirSync(join(t.procfs, 'net'));
    copyFileSync(join(FIXTURES, 'proc/net/dev'), join(t.procfs, 'net/dev'));
    const c = compileFloor(work);
    const f = floor(t, small ? 3 : 50, c, work);
    const nf = nodeFloor(t, small ? 3 : 50, work);
    const typical = await startExporter([...slurmArgs(t), `--path.sysfs=${FIXTURES}/sys`]);
    try {
      await scrapes(`${typical.url}/metrics`, typical.pid, 5, true);
      const s = await scrapes(`${typical.url}/metrics`, typical.pid, n, true);
      console.log(
        `exporter, defaults + slurm with 50 jobs (gzip, self metrics): CPU ${ms(s.cpuMs)} per scrape, wall ${ms(s.wallMs)}, ` +
          `${(s.bytes / 1024).toFixed(1)} KiB gzipped; RSS ${mib(memory(typical.pid).rssMiB)}`,
      );
      console.log(
        `  ${c ? 'C' : 'Node.js'} floor of listing and reading those 50 jobs' cgroup files once: CPU ${ms(f.cpuMs)}, wall ${ms(f.wallMs)}`,
      );
      console.log(
        `  Node.js floor of the same (its own node process, nothing parsed): CPU ${ms(nf.cpuMs)}, wall ${ms(nf.wallMs)}`,
      );
    } finally {
      await typical.stop();
    }
  } finally {
    removeTree(t);
    rmSync(work, { recursive: true, force: true });
  }

  if (!small) await packaged(settleMs);

  const bin = nodeExporterBinary();
  if (!bin) {
    console.log('peer: prometheus-node-exporter not installed (apt-get install prometheus-node-exporter)');
    return;
  }
  const peer = await startNodeExporter(bin);
  try {
    await sleep(settleMs);
    const pid = peer.proc.pid!;
    const { rssMiB } = memory(pid);
    const idle = await idleCpu(pid, idleMs);
    await scrapes(`${peer.url}/metrics`, pid, 5, true);
    const s = await scrapes(`${peer.url}/metrics`, pid, n, true);
    console.log(
      `peer ${bin} (Go; cpu, meminfo, rapl on the same fixtures): RSS ${mib(rssMiB)}, idle CPU ${idle.toFixed(3)} %, ` +
        `scrape CPU ${ms(s.cpuMs)}, wall ${ms(s.wallMs)}; ceems_exporter's defaults: CPU ${ms(nodeScrape.cpuMs)} ` +
        `(${(nodeScrape.cpuMs / s.cpuMs).toFixed(2)}x)`,
    );
  } finally {
    peer.proc.kill('SIGTERM');
    await once(peer.proc, 'exit');
  }
}

/**
 * The default collectors started as `nobody` with no capability (util-linux setpriv): such a process has
 * nothing to switch or drop and loads no FFI addon, so its difference from the start as root above is what
 * the privilege drop costs at start.
 */
async function unprivilegedStart(bare: { rssMiB: number }, settleMs: number): Promise<void> {
  if (process.geteuid?.() !== 0 || !existsSync('/usr/bin/setpriv')) {
    console.log('  started as nobody: not measured (needs root and /usr/bin/setpriv)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'bench-nobody-'));
  try {
    const launcher = join(dir, 'ceems_exporter');
    writeFileSync(
      launcher,
      '#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all ' +
        `'${join(ROOT, 'bin/ceems_exporter')}' "$@"\n`,
      { mode: 0o755 },
    );
    const exp = await startExporter(NODE_PATHS, launcher); // setpriv and the launcher exec: the same pid
    try {
      await sleep(settleMs);
      const { rssMiB } = memory(exp.pid);
      const ffi = readFileSync(`/proc/${exp.pid}/maps`, 'utf8').includes('koffi.node');
      console.log(
        `  the same started as nobody without capabilities (FFI addon ${ffi ? 'loaded' : 'not loaded'}): ` +
          `RSS ${mib(rssMiB)} = bare + ${mib(rssMiB - bare.rssMiB)}`,
      );
    } finally {
      await exp.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Drops `file` from the page cache, so that it runs as an installed executable read from disk. A file just
 * written is cached whole, and its mappings then count far more of it as resident: the idle single
 * executable measured 57.3 MiB right after its build and 40.7 MiB once evicted (coreutils: `sync FILE`,
 * then `dd iflag=nocache count=0` drops the file's cached pages).
 */
function readFromDisk(file: string): void {
  execFileSync('sync', [file]);
  execFileSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
}

/**
 * The installed artefact: the exporter's single executable (scripts/package.ts) with the default collectors,
 * against a single executable that only waits, both built here with the node binary running this benchmark.
 */
async function packaged(settleMs: number): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'bench-sea-'));
  try {
    const exporter = PROGRAMS.find((p) => p.name === 'ceems_exporter')!;
    const idle: Program = { ...exporter, name: 'idle', entry: 'bench/lib/idle-main.ts', forbidden: [] };
    const [exe, floorExe] = [
      await buildExecutable(exporter, join(work, 'ceems_exporter')),
      await buildExecutable(idle, join(work, 'idle')),
    ];
    for (const built of [exe, floorExe]) readFromDisk(built.path);
    const floorProc = spawn(floorExe.path, [], { stdio: 'ignore' });
    await sleep(settleMs);
    const bare = memory(floorProc.pid!);
    floorProc.kill('SIGKILL');
    await once(floorProc, 'exit');
    const exp = await startExporter([...NODE_PATHS, '--no-security.drop-privileges'], exe.path);
    try {
      await sleep(settleMs);
      const m = memory(exp.pid);
      console.log(
        `single executables: idle ${mib(bare.rssMiB)}; exporter (main script ${mib(exe.bundleBytes / 2 ** 20)}, ` +
          `lazy packages ${mib(exe.lazyBytes / 2 ** 20)}), default collectors, before the first scrape: RSS ` +
          `${mib(m.rssMiB)} = idle + ${mib(m.rssMiB - bare.rssMiB)} (anonymous + ${mib(m.anonMiB - bare.anonMiB)})`,
      );
    } finally {
      await exp.stop();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
