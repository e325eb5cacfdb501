// Loads bpf/ceems.bpf.o and attaches the programs of the enabled metric groups to their tracepoints. Only
// file descriptors hold them (nothing is pinned): close() detaches and frees everything, and so does the
// kernel when the exporter dies.

import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { mountTracefs } from '../../common/syscall.js';
import * as libbpf from './libbpf.js';

/**
 * The compiled programs, beside this module in src/ (and in the single executable, which embeds them);
 * tsc copies no object into dist/, whose modules read the one in src/.
 */
function objectPath(): string {
  const candidates = [
    join(import.meta.dirname, 'bpf/ceems.bpf.o'),
    resolve(import.meta.dirname, '../../../src/exporter/ebpf/bpf/ceems.bpf.o'),
  ];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`the BPF object is missing (looked at ${candidates.join(', ')})`);
  return found;
}

export type MetricGroup = 'io' | 'file' | 'network';

/** Which metric group each program feeds, by the event it is attached to. */
export function programGroup(section: string): MetricGroup {
  const event = section.split('/').pop() ?? '';
  if (/^sys_exit_(p?read|p?write)/.test(event)) return 'io';
  if (event.startsWith('sys_')) return 'file';
  return 'network';
}

export interface LoadOptions {
  /** Metric groups whose programs are attached. */
  readonly groups: ReadonlySet<MetricGroup>;
  /** -1 on cgroup v2, else the index of the walked v1 hierarchy's subsystem in /proc/cgroups. */
  readonly v1Subsystem: number;
  /** tracefs mount point (its events/ lists the tracepoints this kernel has). */
  readonly tracefs?: string;
  readonly object?: Buffer;
}

export interface MissingEvent {
  readonly group: MetricGroup;
  readonly event: string;
}

export const MAPS = ['io_stats', 'file_stats', 'net_stats'] as const;
export type MapName = (typeof MAPS)[number];

export class LoadedPrograms {
  private constructor(
    private readonly obj: libbpf.Handle,
    private readonly links: libbpf.Handle[],
    readonly maps: Readonly<Record<MapName, libbpf.MapInfo>>,
    /** Tracepoints of the enabled groups that this kernel lacks. */
    readonly missing: readonly MissingEvent[],
    /** Events with a program attached. */
    readonly attached: readonly string[],
  ) {}

  /** Metric groups with at least one program attached. */
  get groups(): Set<MetricGroup> {
    return new Set(this.attached.map((e) => programGroup(e)));
  }

  /**
   * Opens, loads and attaches; all or nothing: on failure whatever was attached is detached and the
   * error says which step failed.
   */
  static load(o: LoadOptions): LoadedPrograms {
    // the programs read syscall arguments from x86-64 registers (bpf/ceems.bpf.c)
    if (process.arch !== 'x64') throw new Error(`bpf/ceems.bpf.o is built for x86-64, not ${process.arch}`);
    const tracefs = o.tracefs ?? '/sys/kernel/tracing';
    ensureTracefs(tracefs);
    const obj = libbpf.openObject(o.object ?? readFileSync(objectPath()));
    const links: libbpf.Handle[] = [];
    try {
      const rodata = Buffer.alloc(4);
      rodata.writeInt32LE(o.v1Subsystem);
      libbpf.setInitialValue(libbpf.findMap(obj, '.rodata'), rodata);
      const missing: MissingEvent[] = [];
      const chosen: libbpf.Program[] = [];
      for (const p of libbpf.programs(obj)) {
        const event = p.section.replace(/^tracepoint\//, '');
        const group = programGroup(p.section);
        const wanted = o.groups.has(group);
        const present = wanted && existsSync(join(tracefs, 'events', event));
        if (wanted && !present) missing.push({ group, event });
        libbpf.setAutoload(p, present);
        if (present) chosen.push(p);
      }
      libbpf.loadObject(obj);
      for (const p of chosen) links.push(libbpf.attach(p));
      const maps = Object.fromEntries(MAPS.map((m) => [m, libbpf.mapInfo(libbpf.findMap(obj, m))])) as Record<
        MapName,
        libbpf.MapInfo
      >;
      return new LoadedPrograms(
        obj,
        links,
        maps,
        missing,
        chosen.map((p) => p.section.replace(/^tracepoint\//, '')),
      );
    } catch (e) {
      for (const l of links) libbpf.destroyLink(l);
      libbpf.closeObject(obj);
      throw e;
    }
  }

  close(): void {
    for (const l of this.links.splice(0)) libbpf.destroyLink(l);
    libbpf.closeObject(this.obj);
  }
}

/** libbpf finds tracepoint ids under tracefs; mounts it where the kernel offers it and nothing is there. */
function ensureTracefs(tracefs: string): void {
  if (existsSync(join(tracefs, 'events')) || existsSync('/sys/kernel/debug/tracing/events')) return;
  try {
    mountTracefs(tracefs);
  } catch (e) {
    throw new Error(`tracefs is not mounted at ${tracefs} and cannot be: ${(e as Error).message}`);
  }
}
