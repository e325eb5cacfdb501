// Time layouts of the API server (spec §1) in an IANA time zone: `DatetimeLayout` (`2024-05-06T13:45:00`)
// and `DatetimezoneLayout` (`2024-05-06T13:45:00+0200`). Shared with the resource managers and the cycle.

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(zone, f);
  }
  return f;
}

/** `Local` → the process' zone; otherwise the IANA name, validated. Throws RangeError on unknown zones. */
export function resolveZone(name: string): string {
  if (name === '' || name === 'Local') return Intl.DateTimeFormat().resolvedOptions().timeZone;
  formatter(name);
  return name;
}

/** True when `name` is a usable IANA zone name (or `Local`/`UTC`). */
export function isValidZone(name: string): boolean {
  try {
    resolveZone(name);
    return true;
  } catch {
    return false;
  }
}

interface Wall {
  y: number;
  mo: number;
  d: number;
  h: number;
  mi: number;
  s: number;
}

function wallTime(ms: number, zone: string): Wall {
  const p: Record<string, number> = {};
  for (const part of formatter(zone).formatToParts(new Date(ms))) {
    if (part.type !== 'literal') p[part.type] = Number(part.value);
  }
  return { y: p.year!, mo: p.month!, d: p.day!, h: p.hour!, mi: p.minute!, s: p.second! };
}

const pad = (n: number, w = 2) => String(Math.abs(n)).padStart(w, '0');

// Offsets cached per zone and 15-minute bucket (every zone transition falls on a quarter hour): the
// collection formats three times per unit, and Intl is ~10x slower than this arithmetic.
const QUARTER_MS = 15 * 60_000;
const offsetCache = new Map<string, Map<number, number>>();

/** Offset of `zone` from UTC at instant `ms`, in minutes. */
export function zoneOffsetMinutes(ms: number, zone: string): number {
  let cache = offsetCache.get(zone);
  if (!cache) {
    cache = new Map();
    offsetCache.set(zone, cache);
  }
  const bucket = Math.floor(ms / QUARTER_MS);
  let off = cache.get(bucket);
  if (off === undefined) {
    const at = bucket * QUARTER_MS;
    const w = wallTime(at, zone);
    off = Math.round((Date.UTC(w.y, w.mo - 1, w.d, w.h, w.mi, w.s) - at) / 60000);
    if (cache.size > 100_000) cache.clear();
    cache.set(bucket, off);
  }
  return off;
}

/** `YYYY-MM-DDTHH:MM:SS` of instant `ms` in `zone`. */
export function formatDatetime(ms: number, zone: string): string {
  const d = new Date(Math.floor(ms / 1000) * 1000 + zoneOffsetMinutes(ms, zone) * 60000);
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}` +
    `T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
  );
}

/** `YYYY-MM-DDTHH:MM:SS±HHMM` of instant `ms` in `zone`. */
export function formatDatetimezone(ms: number, zone: string): string {
  const off = zoneOffsetMinutes(ms, zone);
  const sign = off < 0 ? '-' : '+';
  return `${formatDatetime(ms, zone)}${sign}${pad(Math.trunc(Math.abs(off) / 60))}${pad(Math.abs(off) % 60)}`;
}

const DATETIMEZONE_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})([+-])(\d{2})(\d{2})$/;
const DATETIME_RE = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?)?$/;

/** Parses `DatetimezoneLayout`; undefined when the text is not in that layout (`Unknown`, `N/A`, …). */
export function parseDatetimezone(text: string): number | undefined {
  const m = DATETIMEZONE_RE.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, sign, oh, om] = m;
  const utc = Date.UTC(+y!, +mo! - 1, +d!, +h!, +mi!, +s!);
  const off = (+oh! * 60 + +om!) * (sign === '-' ? -1 : 1);
  return utc - off * 60000;
}

/** Instant of a wall-clock time in `zone` (`YYYY-MM-DD`, `…THH:MM`, `…THH:MM:SS`); undefined if malformed. */
export function parseDatetime(text: string, zone: string): number | undefined {
  const m = DATETIME_RE.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m;
  const wall = Date.UTC(+y!, +mo! - 1, +d!, +(h ?? 0), +(mi ?? 0), +(s ?? 0));
  if (Number.isNaN(wall)) return undefined;
  // Two passes settle the offset around DST changes.
  let ms = wall - zoneOffsetMinutes(wall, zone) * 60000;
  ms = wall - zoneOffsetMinutes(ms, zone) * 60000;
  return ms;
}

/** Local midnight of instant `ms` in `zone`, in `DatetimeLayout` (the `daily_usage` bucket, D-API-11). */
export function midnightDatetime(ms: number, zone: string): string {
  return `${formatDatetime(ms, zone).slice(0, 10)}T00:00:00`;
}

/** Re-renders a `DatetimezoneLayout` value in another zone; other values (`Unknown`, `N/A`) unchanged. */
export function convertDatetimezone(text: string, zone: string): string {
  const ms = parseDatetimezone(text);
  return ms === undefined ? text : formatDatetimezone(ms, zone);
}
