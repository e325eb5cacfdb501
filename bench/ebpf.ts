// ebpf sub-collector overhead, both arms in the same run:
// 1. Syscall cost: `dd bs=1` copying N bytes from /dev/zero to /dev/null (N reads and N writes, each through
//    a syscall exit program with the programs attached) without the programs (the floor) and with them,
//    keying by cgroup v2 id and by v1 cgroup, alternated; printed as the slowdown and the added time per
//    syscall.
// 2. Scrape cost: one slurm scrape of 1,000 jobs (a generated cgroup v2 tree, bench/lib/exporter.ts) without
//    ebpf (the floor) and with the ebpf sub-collector reading maps filled as those jobs would fill them
//    (2 cgroups per job with processes: 3 mount points each, file operations, TCP/IPv4), encoded to text.
// Needs root (BPF programs); everything runs in this process.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encode } from '../src/common/exposition.js';
import { parseFlags } from '../src/common/flags.js';
import { createLogger } from '../src/common/logger.js';
import { FamilySet } from '../src/exporter/collector.js';
import { slurm } from '../src/exporter/collectors/slurm.js';
import { EbpfCollector, subsystemIndex } from '../src/exporter/ebpf/collector.js';
import { updateEntry } from '../src/exporter/ebpf/libbpf.js';
import { LoadedPrograms, type MetricGroup } from '../src/exporter/ebpf/loader.js';
import { parseMountinfo } from '../src/exporter/ebpf/mounts.js';
import type { SlurmCollector } from '../src/exporter/units/slurm.js';
import { generateSlurmTree, median, ms, ratio, removeTree } from './lib/exporter.js';

const ALL: ReadonlySet<MetricGroup> = new Set(['io', 'file', 'network']);

/** Wall ms of one `dd bs=1` of `bytes` bytes. */
function ddMs(bytes: number): number {
  const t0 = performance.now();
  const r = spawnSync('dd', ['if=/dev/zero', 'of=/dev/null', 'bs=1', `count=${bytes}`, 'status=none']);
  if (r.status !== 0) throw new Error(`dd failed: ${r.stderr}`);
  return performance.now() - t0;
}

/** dd without programs, with them keying by cgroup v2 id, and keying by the cpuacct v1 cgroup (as on SLURM). */
function syscalls(bytes: number, reps: number): void {
  const cpuacct = subsystemIndex(readFileSync('/proc/cgroups', 'utf8'), 'cpuacct');
  const arms: Record<string, number | undefined> = {
    floor: undefined,
    'cgroup v2': -1,
    'cgroup v1': cpuacct,
  };
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(arms).map((k) => [k, []]));
  ddMs(bytes); // warm-up
  for (let i = 0; i < reps; i++)
    for (const [arm, v1Subsystem] of Object.entries(arms)) {
      const programs =
        v1Subsystem === undefined ? undefined : LoadedPrograms.load({ groups: ALL, v1Subsystem });
      try {
        times[arm]!.push(ddMs(bytes));
      } finally {
        programs?.close();
      }
    }
  const f = median(times.floor!);
  console.log(`dd bs=1 of ${bytes} bytes (${bytes} reads + ${bytes} writes), median of ${reps}:`);
  console.log(`  without programs (floor) ${ms(f)}`);
  for (const arm of ['cgroup v2', 'cgroup v1']) {
    const t = median(times[arm]!);
    const perCall = ((t - f) * 1e6) / (2 * bytes);
    console.log(
      `  with programs, ${arm} ids: ${ms(t)}, ratio ${ratio(t, f)}, +${perCall.toFixed(0)} ns per read/write`,
    );
  }
}

/** Fills the maps with what `jobs` would count: per job cgroup with processes, 3 mounts, file ops, TCP. */
function fill(programs: LoadedPrograms, cgroupIds: bigint[], mountIds: number[]): void {
  const value = Buffer.alloc(48);
  for (let f = 0; f < 6; f++) value.writeBigUInt64LE(BigInt(1000 * (f + 1)), f * 8);
  for (const id of cgroupIds) {
    for (const mnt of mountIds) {
      const key = Buffer.alloc(16);
      key.writeBigUInt64LE(id);
      key.writeUInt32LE(mnt, 8);
      updateEntry(programs.maps.io_stats.fd, key, value);
    }
    const file = Buffer.alloc(8);
    file.writeBigUInt64LE(id);
    updateEntry(programs.maps.file_stats.fd, file, value);
    const net = Buffer.alloc(16);
    net.writeBigUInt64LE(id);
    net.writeUInt16LE(6, 8); // TCP
    net.writeUInt16LE(2, 10); // IPv4
    updateEntry(programs.maps.net_stats.fd, net, value);
  }
}

async function scrape(jobs: number, reps: number): Promise<void> {
  const tree = generateSlurmTree(jobs);
  // the fake procfs needs our mount table for the mount ids
  mkdirSync(join(tree.procfs, 'self'));
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  writeFileSync(join(tree.procfs, 'self/mountinfo'), mountinfo);
  const programs = LoadedPrograms.load({ groups: ALL, v1Subsystem: -1 });
  try {
    const { flags } = parseFlags(slurm.flags, [
      '--collector.cgroups.force-version=v2',
      '--collector.gpu.type=nogpu',
    ]);
    const c = (await slurm.create({
      hostname: 'node-001',
      procfs: tree.procfs,
      sysfs: '/sys',
      cgroupfs: tree.cgroupfs,
      flags,
      logger: createLogger({ level: 'silent' }),
    })) as SlurmCollector;
    const ebpf = new EbpfCollector({
      manager: 'slurm',
      hostname: 'node-001',
      procfs: tree.procfs,
      cgroupBase: tree.cgroupfs,
      programs,
      mountFilter: [],
    });
    const units = c.jobs();
    const withProcesses = units.flatMap((u) =>
      u.children
        .filter((d) => /step_batch$|task_0$/.test(d))
        .map((d) => statSync(join(tree.cgroupfs, d), { bigint: true }).ino),
    );
    fill(programs, withProcesses, [...parseMountinfo(mountinfo).keys()].slice(0, 3));
    const signal = new AbortController().signal;
    const arms = {
      floor: async () => {
        const out = new FamilySet();
        await c.update(out, signal);
        return encode(out.families.values()).length;
      },
      // what the slurm collector's update does with the ebpf sub-collector on
      ebpf: async () => {
        const out = new FamilySet();
        const found = c.jobs();
        await Promise.all([c.cgroups.scrape(out, found, signal), ebpf.update(out, found)]);
        return encode(out.families.values()).length;
      },
    };
    const bytes = { floor: await arms.floor(), ebpf: await arms.ebpf() };
    const times: Record<'floor' | 'ebpf', number[]> = { floor: [], ebpf: [] };
    for (let i = 0; i < reps; i++)
      for (const name of ['floor', 'ebpf'] as const) {
        const t0 = performance.now();
        await arms[name]();
        times[name].push(performance.now() - t0);
      }
    const [f, e] = [median(times.floor), median(times.ebpf)];
    console.log(
      `slurm scrape of ${units.length} jobs (${withProcesses.length} cgroups with counters), median of ${reps}:`,
    );
    console.log(
      `  without ebpf (floor) ${ms(f)} (${bytes.floor} bytes), with ebpf ${ms(e)} (${bytes.ebpf} bytes): ` +
        `ratio ${ratio(e, f)}, ebpf ${(((e - f) * 1000) / units.length).toFixed(1)} µs per job`,
    );
  } finally {
    programs.close();
    removeTree(tree);
  }
}

export async function run(small: boolean): Promise<void> {
  syscalls(small ? 100_000 : 1_000_000, small ? 3 : 7);
  await scrape(small ? 50 : 1000, small ? 3 : 15);
}
