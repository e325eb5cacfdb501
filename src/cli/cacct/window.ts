// `--starttime`/`--endtime`: local wall time like sacct [DIFF D-CLI-2], in three layouts.

const LAYOUT = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?)?$/;

/** Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS` as local time. */
export function parseLocalTime(text: string, flag: string): Date {
  const m = LAYOUT.exec(text.trim());
  const bad = () =>
    new Error(
      `invalid --${flag} '${text}': expected YYYY-MM-DD, YYYY-MM-DDTHH:MM or YYYY-MM-DDTHH:MM:SS (local time)`,
    );
  if (!m) throw bad();
  const [y, mo, d, h, mi, s] = m.slice(1).map((v) => Number(v ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const date = new Date(y, mo - 1, d, h, mi, s);
  // Date rolls over out-of-range parts (month 13, Feb 30, 25:00); reject instead of guessing.
  if (
    date.getFullYear() !== y ||
    date.getMonth() !== mo - 1 ||
    date.getDate() !== d ||
    date.getHours() !== h ||
    date.getMinutes() !== mi ||
    date.getSeconds() !== s
  ) {
    throw bad();
  }
  return date;
}

export interface Window {
  start: Date;
  end: Date;
}

/** Resolves the window: start defaults to today 00:00:00 local, end to now; start must precede end. */
export function resolveWindow(starttime: string | undefined, endtime: string | undefined, now: Date): Window {
  const start = starttime
    ? parseLocalTime(starttime, 'starttime')
    : new Date(now.getFullYear(), now.getMonth(), now.getDate());
  const end = endtime ? parseLocalTime(endtime, 'endtime') : now;
  if (start.getTime() >= end.getTime()) {
    throw new Error(`--starttime (${formatLocal(start)}) must be before --endtime (${formatLocal(end)})`);
  }
  return { start, end };
}

export function formatLocal(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Seconds as `[D-]HH:MM:SS` (the unit elapsed layout). */
export function formatElapsed(seconds: number): string {
  const total = Math.max(0, Math.round(seconds));
  const days = Math.floor(total / 86400);
  const p = (n: number) => String(n).padStart(2, '0');
  const hms = `${p(Math.floor((total % 86400) / 3600))}:${p(Math.floor((total % 3600) / 60))}:${p(total % 60)}`;
  return days > 0 ? `${days}-${hms}` : hms;
}
