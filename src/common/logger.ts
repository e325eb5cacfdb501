// pino logger with the two formats of the original's promslog: logfmt (default) and json.
// Logs go to stderr synchronously so that a crash never loses the last lines.

import { writeSync } from 'node:fs';
import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export const LOG_FORMATS = ['logfmt', 'json'] as const;

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

function logfmtValue(v: unknown): string {
  let s: string;
  if (v instanceof Error) s = v.message;
  else if (typeof v === 'object' && v !== null) s = JSON.stringify(v);
  else s = String(v);
  return s === '' || /[\s"=\\]/.test(s) || /[^\x20-\x7e]/.test(s) ? JSON.stringify(s) : s;
}

/** Turns one pino JSON line into a logfmt line. */
export function toLogfmt(line: string): string {
  const rec = JSON.parse(line) as Record<string, unknown>;
  const { time, level, msg, pid: _pid, hostname: _h, ...rest } = rec;
  let out = `time=${new Date(time as number).toISOString()} level=${LEVEL_NAMES[level as number] ?? level}`;
  if (msg !== undefined) out += ` msg=${logfmtValue(msg)}`;
  for (const [k, v] of Object.entries(rest)) {
    if (k === 'err' && typeof v === 'object' && v !== null)
      out += ` err=${logfmtValue((v as { message?: string }).message)}`;
    else out += ` ${k}=${logfmtValue(v)}`;
  }
  return `${out}\n`;
}

export interface LoggerOptions {
  level?: string;
  format?: string;
  /** File descriptor to write to (stderr by default). */
  fd?: number;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const fd = opts.fd ?? 2;
  const json = opts.format === 'json';
  const destination = {
    write(line: string) {
      writeSync(fd, json ? line : toLogfmt(line));
    },
  };
  return pino({ level: opts.level ?? 'info', base: undefined }, destination);
}
