// Parsers of cgroup pseudo-files (v1 and v2) and of the few /proc files the cgroup sub-collector needs
// (spec exporter.md §8.1). All take file contents and never touch the filesystem.

/** `key value` per line (memory.stat, cpu.stat, cpuacct.stat, memory.events); non-numeric values skipped. */
export function parseFlatKeyed(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const sp = line.indexOf(' ');
    if (sp <= 0) continue;
    const v = Number(line.slice(sp + 1).trim());
    if (Number.isFinite(v)) out.set(line.slice(0, sp), v);
  }
  return out;
}

/** Number of CPUs in a range list such as `0-3,8` (cpuset.cpus); empty text → 0. */
export function countCpuList(text: string): number {
  const s = text.trim();
  if (s === '') return 0;
  let n = 0;
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`malformed CPU list '${s}'`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new Error(`malformed CPU range '${part}' in CPU list '${s}'`);
    n += hi - lo + 1;
  }
  return n;
}

/** `total=` of the `full` line of a PSI file (cpu.pressure, memory.pressure), µs → s; 0 when absent. */
export function parsePsiFullTotal(text: string): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith('full ')) continue;
    const m = /\btotal=(\d+)/.exec(line);
    if (m) return Number(m[1]) / 1e6;
  }
  return 0;
}

export interface BlkioDevice {
  readBytes: number;
  writeBytes: number;
  readRequests: number;
  writeRequests: number;
}

function device(map: Map<string, BlkioDevice>, majMin: string): BlkioDevice {
  let d = map.get(majMin);
  if (!d) {
    d = { readBytes: 0, writeBytes: 0, readRequests: 0, writeRequests: 0 };
    map.set(majMin, d);
  }
  return d;
}

/** v2 `io.stat`: `MAJ:MIN rbytes=… wbytes=… rios=… wios=… dbytes=… dios=…` per device. */
export function parseIoStat(text: string, into = new Map<string, BlkioDevice>()): Map<string, BlkioDevice> {
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 2 || !/^\d+:\d+$/.test(fields[0]!)) continue;
    const d = device(into, fields[0]!);
    for (const kv of fields.slice(1)) {
      const eq = kv.indexOf('=');
      const v = Number(kv.slice(eq + 1));
      if (eq < 0 || !Number.isFinite(v)) continue;
      switch (kv.slice(0, eq)) {
        case 'rbytes':
          d.readBytes = v;
          break;
        case 'wbytes':
          d.writeBytes = v;
          break;
        case 'rios':
          d.readRequests = v;
          break;
        case 'wios':
          d.writeRequests = v;
          break;
      }
    }
  }
  return into;
}

/**
 * v1 blkio files (`blkio.throttle.io_service_bytes`, `blkio.io_serviced_recursive`, …): rows
 * `MAJ:MIN Read|Write|Sync|Async|Discard|Total <n>` and a final `Total <n>`. Rows update `into`, so a file
 * read later wins per device.
 */
export function parseBlkioV1(
  text: string,
  kind: 'bytes' | 'requests',
  into: Map<string, BlkioDevice>,
): Map<string, BlkioDevice> {
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 3 || !/^\d+:\d+$/.test(f[0]!)) continue;
    const v = Number(f[2]);
    if (!Number.isFinite(v)) continue;
    if (f[1] === 'Read') {
      const d = device(into, f[0]!);
      if (kind === 'bytes') d.readBytes = v;
      else d.readRequests = v;
    } else if (f[1] === 'Write') {
      const d = device(into, f[0]!);
      if (kind === 'bytes') d.writeBytes = v;
      else d.writeRequests = v;
    }
  }
  return into;
}

export interface RdmaDevice {
  handles: number;
  objects: number;
}

/** `rdma.current`: `<dev> hca_handle=<n> hca_object=<m>` per line (`max` values count as 0). */
export function parseRdmaCurrent(text: string): Map<string, RdmaDevice> {
  const out = new Map<string, RdmaDevice>();
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 2 || f[0] === '') continue;
    const d: RdmaDevice = { handles: 0, objects: 0 };
    for (const kv of f.slice(1)) {
      const [k, raw] = kv.split('=', 2);
      const v = Number(raw);
      if (!Number.isFinite(v)) continue;
      if (k === 'hca_handle') d.handles = v;
      else if (k === 'hca_object') d.objects = v;
    }
    out.set(f[0]!, d);
  }
  return out;
}

/** `/proc/diskstats` → `MAJ:MIN` → device name; when numbers repeat, the last line wins. */
export function parseDiskstats(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 3 || !/^\d+$/.test(f[0]!) || !/^\d+$/.test(f[1]!)) continue;
    out.set(`${f[0]}:${f[1]}`, f[2]!);
  }
  return out;
}

/** `/proc/meminfo` `MemTotal` and `SwapTotal` in bytes (0 when absent). */
export function parseMeminfoTotals(text: string): { memTotal: number; swapTotal: number } {
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : 0;
  };
  return { memTotal: kb('MemTotal'), swapTotal: kb('SwapTotal') };
}

/** `cgroup.procs`: one PID per line. */
export function parsePids(text: string): number[] {
  const out: number[] = [];
  for (const line of text.split('\n')) {
    const s = line.trim();
    if (s === '') continue;
    const n = Number(s);
    if (Number.isInteger(n) && n > 0) out.push(n);
  }
  return out;
}

/**
 * Kubernetes CPUs from a cgroup v2 `cpu.weight` (kubelet's inverse conversion): shares =
 * ⌊((w − 1) × 262142) ÷ 9999⌋ + 2 clamped to [2, 262144].
 */
export function weightToShares(weight: number): number {
  const shares = Math.floor(((weight - 1) * 262142) / 9999) + 2;
  return Math.min(262144, Math.max(2, shares));
}

/** Kubernetes CPUs from cpu shares: ⌊shares × 1000 ÷ 1024⌋ milliCPU, as CPUs. */
export function sharesToCpus(shares: number): number {
  return Math.floor((shares * 1000) / 1024) / 1000;
}

/**
 * Go string-literal unescaping of a cgroup path (systemd writes `-` as `\x2d`); a path that is not a
 * valid Go string body is returned unchanged, as the original does when strconv.Unquote fails.
 */
export function unescapePath(path: string): string {
  if (!path.includes('\\')) return path;
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    if (c === '"') return path;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = path[++i];
    switch (e) {
      case 'x': {
        const hex = path.slice(i + 1, i + 3);
        if (!/^[0-9a-fA-F]{2}$/.test(hex)) return path;
        out += String.fromCharCode(Number.parseInt(hex, 16));
        i += 2;
        break;
      }
      case '\\':
        out += '\\';
        break;
      case '"':
        out += '"';
        break;
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case 'a':
        out += '\x07';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'v':
        out += '\v';
        break;
      default:
        return path;
    }
  }
  return out;
}
