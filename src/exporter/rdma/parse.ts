// Parsers of the iproute2 `rdma` text output used by the rdma sub-collector (spec exporter.md §10.3).
// Every record is one line of `key value` pairs starting with `dev <name>` or `link <name>/<port>`;
// `comm <process name>` comes after the fixed fields (the name may contain spaces) and `rdma statistic qp
// show` appends `<counter> <value>` pairs after it. Indented continuation lines (`    LQPN: <07>`) belong
// to the record above and carry nothing used here.

export interface MrEntry {
  readonly device: string;
  readonly pid: number;
  readonly mrlen: number;
}

export interface CqEntry {
  readonly device: string;
  readonly pid: number;
  readonly cqe: number;
}

export interface QpEntry {
  readonly device: string;
  /** Port number (decimal string). */
  readonly port: string;
  readonly pid: number;
}

export interface QpCounterEntry extends QpEntry {
  /** Hardware counters of the line by name (only those of interest). */
  readonly counters: ReadonlyMap<string, number>;
}

export interface LinkMode {
  /** `<device>/<port>` as `rdma statistic qp set link` expects it. */
  readonly link: string;
  readonly device: string;
  /** False when the link reports `auto off`: no per-PID QP counters are allocated. */
  readonly autoOn: boolean;
}

export interface Parsed<T> {
  readonly entries: T[];
  /** Record lines that could not be understood, as printed. */
  readonly malformed: string[];
}

/** Per-QP hardware counters exported per unit (no `_total` suffix, kept as the original). */
export const QP_HW_COUNTERS = [
  'rx_write_requests',
  'rx_read_requests',
  'rx_atomic_requests',
  'req_cqe_error',
  'req_cqe_flush_error',
  'req_remote_access_errors',
  'req_remote_invalid_request',
  'resp_cqe_error',
  'resp_cqe_flush_error',
  'resp_local_length_error',
  'resp_remote_access_errors',
] as const;

const COUNTER_NAMES: ReadonlySet<string> = new Set(QP_HW_COUNTERS);
const NUMBER = /^\d+$/;
const KEY = /^[a-z][a-z0-9_-]*$/i;

/** True when `tokens` is a sequence of `<name> <decimal>` pairs (possibly empty). */
function counterPairs(tokens: readonly string[]): boolean {
  if (tokens.length % 2 !== 0) return false;
  for (let i = 0; i < tokens.length; i += 2)
    if (!KEY.test(tokens[i]!) || !NUMBER.test(tokens[i + 1]!)) return false;
  return true;
}

/** The `key value` fields of one record line; undefined when the pairs do not line up. */
export function parseRecord(line: string): Map<string, string> | undefined {
  const tokens = line.trim().split(/\s+/);
  const fields = new Map<string, string>();
  let i = 0;
  while (i < tokens.length) {
    const key = tokens[i]!;
    if (key === 'comm') {
      // The process name runs up to where only counter pairs remain.
      const rest = tokens.slice(i + 1);
      let len = 1;
      while (len <= rest.length && !counterPairs(rest.slice(len))) len++;
      if (rest.length === 0 || len > rest.length) return undefined;
      fields.set('comm', rest.slice(0, len).join(' '));
      i += 1 + len;
      continue;
    }
    const value = tokens[i + 1];
    if (value === undefined) return undefined;
    fields.set(key, value);
    i += 2;
  }
  return fields;
}

/** Splits `link <device>/<port>`; null for `<device>/-` (a QP not bound to a port yet, counted nowhere). */
function splitLink(link: string): { device: string; port: string } | null | undefined {
  const m = /^(.+)\/(\d+|-)$/.exec(link);
  if (!m) return undefined;
  return m[2] === '-' ? null : { device: m[1]!, port: String(Number(m[2])) };
}

/**
 * Parses record lines starting with `first`; kernel-owned records (no `pid`, e.g. `comm [ib_core]`) and
 * those `build` skips (null) are dropped, lines whose fields do not fit (undefined) are reported as malformed.
 */
function parseLines<T>(
  text: string,
  first: 'dev' | 'link',
  build: (fields: Map<string, string>, pid: number) => T | null | undefined,
): Parsed<T> {
  const entries: T[] = [];
  const malformed: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || /^\s/.test(line)) continue; // continuation line
    const fields = parseRecord(line);
    if (!fields || !line.startsWith(`${first} `)) {
      malformed.push(line);
      continue;
    }
    const pid = fields.get('pid');
    if (pid === undefined) continue; // owned by a kernel module
    const entry = NUMBER.test(pid) ? build(fields, Number(pid)) : undefined;
    if (entry === undefined) malformed.push(line);
    else if (entry !== null) entries.push(entry);
  }
  return { entries, malformed };
}

/** A decimal field, or undefined when absent or not a number. */
function numberField(fields: Map<string, string>, key: string): number | undefined {
  const v = fields.get(key);
  return v !== undefined && NUMBER.test(v) ? Number(v) : undefined;
}

/** `rdma resource show mr`: `dev <dev> mrn <n> rkey … mrlen <bytes> pdn <n> pid <pid> comm <name>`. */
export function parseMrs(text: string): Parsed<MrEntry> {
  return parseLines(text, 'dev', (f, pid) => {
    const mrlen = numberField(f, 'mrlen');
    return mrlen === undefined ? undefined : { device: f.get('dev')!, pid, mrlen };
  });
}

/** `rdma resource show cq`: `dev <dev> cqn <n> cqe <entries> users <n> … pid <pid> comm <name>`. */
export function parseCqs(text: string): Parsed<CqEntry> {
  return parseLines(text, 'dev', (f, pid) => {
    const cqe = numberField(f, 'cqe');
    return cqe === undefined ? undefined : { device: f.get('dev')!, pid, cqe };
  });
}

/** `rdma resource show qp`: `link <dev>/<port> lqpn <n> … pid <pid> comm <name>`. */
export function parseQps(text: string): Parsed<QpEntry> {
  return parseLines(text, 'link', (f, pid) => {
    const link = splitLink(f.get('link')!);
    return link ? { ...link, pid } : link;
  });
}

/** `rdma statistic qp show`: `link <dev>/<port> cntn <n> qp-type RC pid <pid> comm <name> <counter> <v> …`. */
export function parseQpCounters(text: string): Parsed<QpCounterEntry> {
  return parseLines(text, 'link', (f, pid) => {
    const link = splitLink(f.get('link')!);
    if (!link) return link;
    const counters = new Map<string, number>();
    for (const [k, v] of f) {
      if (!COUNTER_NAMES.has(k)) continue;
      if (!NUMBER.test(v)) return undefined;
      counters.set(k, Number(v));
    }
    return { ...link, pid, counters };
  });
}

/**
 * `rdma statistic qp mode`: `link <dev>/<port> mode auto off` when no automatic per-QP counters are
 * allocated; `mode qp auto type,pid on` or `mode manual` otherwise (iproute2 versions differ in wording).
 */
export function parseQpModes(text: string): Parsed<LinkMode> {
  const entries: LinkMode[] = [];
  const malformed: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || /^\s/.test(line)) continue;
    const m = /^link (\S+) mode (.+)$/.exec(line.trim());
    const link = m && splitLink(m[1]!);
    if (!m || !link) {
      malformed.push(line);
      continue;
    }
    entries.push({ link: m[1]!, device: link.device, autoOn: !/(^|\s)auto off$/.test(m[2]!.trim()) });
  }
  return { entries, malformed };
}
