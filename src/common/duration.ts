// Prometheus duration syntax (`1h30m`, `15m`, `500ms`, `30d`, `1y`), as used in flags and config files.

const UNIT_MS: Record<string, number> = {
  y: 365 * 24 * 3600e3,
  w: 7 * 24 * 3600e3,
  d: 24 * 3600e3,
  h: 3600e3,
  m: 60e3,
  s: 1e3,
  ms: 1,
};
const DURATION_RE = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;
const UNITS = ['y', 'w', 'd', 'h', 'm', 's', 'ms'];

/** Parses a Prometheus duration into milliseconds; throws on bad syntax. */
export function parseDuration(text: string): number {
  if (text === '0') return 0;
  const m = DURATION_RE.exec(text);
  if (text === '' || !m) throw new Error(`not a valid duration string: "${text}"`);
  let ms = 0;
  for (let i = 0; i < UNITS.length; i++)
    if (m[i + 1] !== undefined) ms += Number(m[i + 1]) * UNIT_MS[UNITS[i]!]!;
  return ms;
}

/** Formats milliseconds the way Prometheus prints durations (`1h30m`, `0s`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const u of UNITS) {
    const n = Math.floor(rest / UNIT_MS[u]!);
    if (n > 0) {
      out += `${n}${u}`;
      rest -= n * UNIT_MS[u]!;
    }
  }
  return out;
}
