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

// Byte-level fast paths of the parsers above, for the files read on every scrape. Each one handles only the
// plain form of its file (ASCII digits, at most 15 per number, so that the double is exact) and returns
// undefined for anything else, which the caller then parses as a string with the function above: the result
// is the same either way, without a string per file in the usual case.

const isSpace = (c: number): boolean => c === 32 || (c >= 9 && c <= 13);

/** The integer of buf[start, end) between ASCII blanks, as Number(text.trim()) gives it; NaN otherwise. */
export function plainInt(buf: Buffer, start: number, end: number): number {
  while (start < end && isSpace(buf[start]!)) start++;
  while (end > start && isSpace(buf[end - 1]!)) end--;
  if (end <= start || end - start > 15) return Number.NaN;
  let v = 0;
  for (let i = start; i < end; i++) {
    const d = buf[i]! - 48;
    if (d < 0 || d > 9) return Number.NaN;
    v = v * 10 + d;
  }
  return v;
}

/**
 * Whether buf[at, at + end - from) holds needle[from, end). A loop instead of Buffer#compare with ranges,
 * which allocates on every call (two calls per unit file on every scrape).
 */
function bytesAt(buf: Buffer, at: number, needle: Buffer, from: number, end: number): boolean {
  for (let i = from; i < end; i++) if (buf[at + i - from] !== needle[i]) return false;
  return true;
}

/** End of the line starting at `i` (its `\n` or `len`). */
function lineEnd(buf: Buffer, i: number, len: number): number {
  const nl = buf.indexOf(10, i);
  return nl < 0 || nl > len ? len : nl;
}

/** `key ` of a flat-keyed file, as a line start needle (`\nkey `) and its length. */
export interface FlatKey {
  readonly needle: Buffer;
}

export function flatKey(key: string): FlatKey {
  return { needle: Buffer.from(`\n${key} `, 'latin1') };
}

/**
 * parseFlatKeyed(text).get(key) for the file in buf[0, len): the last line `key <value>`; undefined when
 * no line has the key, NaN when the last one is not a plain integer (then parse the string instead).
 */
export function flatValue(buf: Buffer, len: number, key: FlatKey): number | undefined {
  const n = key.needle;
  let start = -1;
  const at = len >= n.length ? buf.lastIndexOf(n, len - n.length) : -1;
  if (at >= 0) start = at + n.length;
  else if (len >= n.length - 1 && bytesAt(buf, 0, n, 1, n.length)) start = n.length - 1;
  if (start < 0) return undefined;
  return plainInt(buf, start, lineEnd(buf, start, len));
}

/** countCpuList of buf[0, len) in its plain form (`0-3,8`); undefined otherwise. */
export function cpuListCount(buf: Buffer, len: number): number | undefined {
  let i = 0;
  let end = len;
  while (i < end && isSpace(buf[i]!)) i++;
  while (end > i && isSpace(buf[end - 1]!)) end--;
  if (i === end) return 0;
  let count = 0;
  while (i < end) {
    let lo = 0;
    let digits = 0;
    for (; i < end && buf[i]! >= 48 && buf[i]! <= 57; i++, digits++) lo = lo * 10 + buf[i]! - 48;
    if (digits === 0 || digits > 9) return undefined;
    let hi = lo;
    if (i < end && buf[i] === 45) {
      i++;
      hi = 0;
      digits = 0;
      for (; i < end && buf[i]! >= 48 && buf[i]! <= 57; i++, digits++) hi = hi * 10 + buf[i]! - 48;
      if (digits === 0 || digits > 9 || hi < lo) return undefined;
    }
    count += hi - lo + 1;
    if (i < end) {
      if (buf[i] !== 44) return undefined;
      i++;
      if (i === end) return undefined;
    }
  }
  return count;
}

const FULL = Buffer.from('\nfull ', 'latin1');
const TOTAL = Buffer.from('total=', 'latin1');

/** parsePsiFullTotal of buf[0, len) when its first `full` line has a plain `total=`; undefined otherwise. */
export function psiFullTotal(buf: Buffer, len: number): number | undefined {
  let line: number;
  if (len >= 5 && bytesAt(buf, 0, FULL, 1, 6)) line = 0;
  else {
    const at = buf.indexOf(FULL);
    if (at < 0 || at + FULL.length > len) return 0;
    line = at + 1;
  }
  const end = lineEnd(buf, line, len);
  const t = buf.indexOf(TOTAL, line);
  if (t < 0 || t + TOTAL.length > end) return undefined;
  const before = buf[t - 1]!;
  // `\btotal=`: the character before must not be a word character
  if (before === 95 || (before >= 48 && before <= 57) || ((before | 32) >= 97 && (before | 32) <= 122))
    return undefined;
  let i = t + TOTAL.length;
  let v = 0;
  const first = i;
  for (; i < end && buf[i]! >= 48 && buf[i]! <= 57; i++) v = v * 10 + buf[i]! - 48;
  if (i === first || i - first > 15) return undefined;
  return v / 1e6;
}

/** parsePids of buf[0, len) into `out` when every line is a plain PID; false otherwise (nothing added). */
export function pidsInto(buf: Buffer, len: number, out: number[]): boolean {
  const from = out.length;
  let i = 0;
  while (i < len) {
    const end = lineEnd(buf, i, len);
    let s = i;
    let e = end;
    while (s < e && isSpace(buf[s]!)) s++;
    while (e > s && isSpace(buf[e - 1]!)) e--;
    if (e > s) {
      const v = plainInt(buf, s, e);
      if (!(v > 0)) {
        out.length = from;
        return false;
      }
      out.push(v);
    }
    i = end + 1;
  }
  return true;
}
