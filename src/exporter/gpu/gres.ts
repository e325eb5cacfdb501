// gres.conf shard/MPS lines and the share allocation of spec exporter.md §9.7.

import type { GpuDevice, GpuInstance } from './types.js';

export class GresConfError extends Error {
  override name = 'GresConfError';
}

/** Splits on commas that are not inside brackets: `a[1,2],b` → [`a[1,2]`, `b`]. */
function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '[') depth++;
    else if (ch === ']') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts.filter((p) => p !== '');
}

/** Expands one bracket expression recursively: `node[001-003,010]` → node001…node003, node010. */
function expandOne(s: string): string[] {
  const open = s.indexOf('[');
  if (open < 0) return [s];
  const close = s.indexOf(']', open);
  if (close < 0) throw new GresConfError(`unbalanced '[' in '${s}'`);
  const prefix = s.slice(0, open);
  const rest = expandOne(s.slice(close + 1));
  const out: string[] = [];
  for (const range of s.slice(open + 1, close).split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(range.trim());
    if (!m) throw new GresConfError(`invalid range '${range}' in '${s}'`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi - lo > 100_000) throw new GresConfError(`invalid range '${range}' in '${s}'`);
    const width = m[1]!.length;
    for (let i = lo; i <= hi; i++)
      for (const r of rest) out.push(`${prefix}${String(i).padStart(width, '0')}${r}`);
  }
  return out;
}

/** SLURM hostlist / file-list expansion: `node[001-004,010],gpu01`, `/dev/nvidia[0-3]`. */
export function expandHostlist(list: string): string[] {
  return splitTopLevel(list.trim()).flatMap(expandOne);
}

/** `/proc/driver/nvidia-caps/mig-minors`: cap minor → MIG instance (`gpu<G>/gi<I>[/ci<C>]/access <M>`). */
export function parseMigMinors(text: string): Map<number, { gpu: number; gi: number }> {
  const m = new Map<number, { gpu: number; gi: number }>();
  for (const line of text.split('\n')) {
    const r = /^gpu(\d+)\/gi(\d+)(?:\/ci\d+)?\/access\s+(\d+)\s*$/.exec(line.trim());
    if (r) m.set(Number(r[3]), { gpu: Number(r[1]), gi: Number(r[2]) });
  }
  return m;
}

/** A device named in gres.conf: a full GPU by minor, or a MIG instance by (GPU minor, GI id). */
export type GresDevice = { minor: number; gi?: number };

export interface ShareLine {
  /** Device groups the count is spread over; undefined = every GPU of the node. */
  groups?: GresDevice[][];
  count: number;
}

function deviceOf(file: string, migMinors: Map<number, { gpu: number; gi: number }>): GresDevice | undefined {
  const gpu = /^\/dev\/nvidia(\d+)$/.exec(file);
  if (gpu) return { minor: Number(gpu[1]) };
  const cap = /^\/dev\/nvidia-caps\/nvidia-cap(\d+)$/.exec(file);
  if (cap) {
    const mig = migMinors.get(Number(cap[1]));
    return mig ? { minor: mig.gpu, gi: mig.gi } : undefined;
  }
  return undefined;
}

/**
 * A `MultipleFiles=` group is one device: its MIG instances when cap files resolve (all of them, D-EXP-9),
 * else its full GPUs.
 */
function groupOf(files: string[], migMinors: Map<number, { gpu: number; gi: number }>): GresDevice[] {
  const devs = files.map((f) => deviceOf(f, migMinors)).filter((d) => d !== undefined);
  const migs = devs.filter((d) => d.gi !== undefined);
  const chosen = migs.length > 0 ? migs : devs;
  const seen = new Set<string>();
  return chosen.filter((d) => {
    const k = `${d.minor}/${d.gi}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Parses the shard/MPS lines of gres.conf that apply to `hostname`. */
export function parseGresConf(
  text: string,
  hostname: string,
  migMinors: Map<number, { gpu: number; gi: number }> = new Map(),
): ShareLine[] {
  const lines: ShareLine[] = [];
  text.split('\n').forEach((raw, n) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!/name=(shard|mps)\b/i.test(line)) return;
    const kv = new Map<string, string>();
    for (const tok of line.split(/\s+/)) {
      const i = tok.indexOf('=');
      if (i > 0) kv.set(tok.slice(0, i).toLowerCase(), tok.slice(i + 1));
    }
    const where = `gres.conf line ${n + 1}`;
    const nodes = kv.get('nodename');
    try {
      if (nodes !== undefined && !expandHostlist(nodes).includes(hostname)) return;
    } catch (e) {
      throw new GresConfError(`${where}: NodeName: ${(e as Error).message}`);
    }
    const countRaw = kv.get('count');
    const count = Number(countRaw);
    if (countRaw === undefined || !/^\d+$/.test(countRaw) || count <= 0)
      throw new GresConfError(`${where}: invalid or missing Count '${countRaw ?? ''}'`);
    let groups: GresDevice[][] | undefined;
    try {
      const file = kv.get('file');
      const multi = kv.get('multiplefiles');
      if (multi !== undefined) groups = [groupOf(expandHostlist(multi), migMinors)];
      else if (file !== undefined)
        groups = expandHostlist(file)
          .map((f) => groupOf([f], migMinors))
          .filter((g) => g.length > 0);
    } catch (e) {
      throw new GresConfError(`${where}: File: ${(e as Error).message}`);
    }
    lines.push({ groups, count });
  });
  return lines;
}

/** Something a unit can hold: a full GPU or one instance of it. */
export interface GpuTarget {
  device: GpuDevice;
  instance?: GpuInstance;
}

export const targetKey = (t: GpuTarget): string =>
  t.instance ? `${t.device.minor}/${t.instance.gpuInstanceId}` : `${t.device.minor}`;

/** Every schedulable target: full GPUs, and the instances of partitioned GPUs. */
export function allTargets(devices: readonly GpuDevice[]): GpuTarget[] {
  return devices.flatMap((device) =>
    device.partitioned ? device.instances.map((instance) => ({ device, instance })) : [{ device }],
  );
}

function resolve(devices: readonly GpuDevice[], d: GresDevice): GpuTarget | undefined {
  const device = devices.find((x) => x.minor === d.minor);
  if (!device) return undefined;
  if (d.gi === undefined) return { device };
  const instance = device.instances.find((i) => i.gpuInstanceId === d.gi);
  return instance ? { device, instance } : undefined;
}

/** Shares per target key: each line's Count is spread evenly over its device groups (remainder first). */
export function shareTotals(lines: readonly ShareLine[], devices: readonly GpuDevice[]): Map<string, number> {
  const totals = new Map<string, number>();
  for (const line of lines) {
    const groups: GpuTarget[][] = line.groups
      ? line.groups.map((g) => g.map((d) => resolve(devices, d)).filter((t) => t !== undefined))
      : allTargets(devices).map((t) => [t]);
    if (groups.length === 0) continue;
    const base = Math.floor(line.count / groups.length);
    const extra = line.count % groups.length;
    groups.forEach((g, i) => {
      for (const t of g) {
        const k = targetKey(t);
        totals.set(k, (totals.get(k) ?? 0) + base + (i < extra ? 1 : 0));
      }
    });
  }
  return totals;
}

export interface ShareRequest {
  uuid: string;
  targets: GpuTarget[];
  /** Shares asked for (SLURM_SHARDS_ON_NODE / CUDA_MPS_ACTIVE_THREAD_PERCENTAGE); undefined = whole GPU. */
  shares?: number;
}

/**
 * Flag values per unit and target. Units are handled in ascending order of their GPU count; on a shared
 * GPU each gets `min(requested, remaining)` shares and its flag is its shares ÷ all shares handed out on
 * that GPU. Unshared GPUs, and units without a share request, get 1.
 */
export function allocateShares(
  requests: readonly ShareRequest[],
  totals: ReadonlyMap<string, number>,
): Map<string, Map<string, number>> {
  const remaining = new Map(totals);
  const given = new Map<string, Map<string, number>>(); // target → uuid → shares
  const result = new Map<string, Map<string, number>>();
  const order = [...requests].sort((a, b) => a.targets.length - b.targets.length);
  for (const r of order) {
    const flags = new Map<string, number>();
    result.set(r.uuid, flags);
    for (const t of r.targets) {
      const k = targetKey(t);
      const left = remaining.get(k);
      if (left === undefined || r.shares === undefined) {
        flags.set(k, 1);
        continue;
      }
      const take = Math.min(r.shares, left);
      remaining.set(k, left - take);
      const users = given.get(k) ?? new Map<string, number>();
      given.set(k, users);
      users.set(r.uuid, (users.get(r.uuid) ?? 0) + take);
    }
  }
  for (const [k, users] of given) {
    let sum = 0;
    for (const v of users.values()) sum += v;
    for (const [uuid, v] of users) result.get(uuid)!.set(k, sum > 0 ? v / sum : 0);
  }
  return result;
}
