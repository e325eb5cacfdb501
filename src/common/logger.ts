// The logger of every program, in the two formats of the original's promslog (Go slog): logfmt (default)
// and JSON, one line per record: time, level, msg, then the record's fields. Lines go to stderr
// synchronously so that a crash never loses the last ones. Hand-written rather than pino: importing pino
// costs every exporter 9 MiB of RSS (pino and its seven dependencies, measured next to bare node), for
// four levels and child fields, and its JSON lines (numeric levels, epoch times) are not promslog's.

import { writeSync } from 'node:fs';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export const LOG_FORMATS = ['logfmt', 'json'] as const;

export type LogFields = Record<string, unknown>;

export interface LogFn {
  (msg: string): void;
  (fields: LogFields, msg?: string): void;
}

export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  /** A logger that adds `bindings` to every record (before the record's own fields). */
  child(bindings: LogFields): Logger;
}

export interface LoggerOptions {
  /** One of LOG_LEVELS, or `silent` for a logger that writes nothing. */
  level?: string;
  format?: string;
  /** Where each line goes (stderr by default). */
  write?: (line: string) => void;
}

type Level = (typeof LOG_LEVELS)[number];

/** An error is logged as its message, as slog prints a Go error. */
function plain(v: unknown): unknown {
  return v instanceof Error ? v.message : v;
}

function logfmtValue(v: unknown): string {
  const p = plain(v);
  const s = typeof p === 'object' && p !== null ? JSON.stringify(p) : String(p);
  return s === '' || /[\s"=\\]/.test(s) || /[^\x20-\x7e]/.test(s) ? JSON.stringify(s) : s;
}

function formatLogfmt(time: string, level: string, msg: string, fields: LogFields): string {
  let out = `time=${time} level=${level} msg=${logfmtValue(msg)}`;
  for (const k in fields) if (fields[k] !== undefined) out += ` ${k}=${logfmtValue(fields[k])}`;
  return `${out}\n`;
}

function formatJson(time: string, level: string, msg: string, fields: LogFields): string {
  const rec: LogFields = { time, level, msg };
  for (const k in fields) if (!(k in rec)) rec[k] = plain(fields[k]);
  return `${JSON.stringify(rec)}\n`;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'info';
  const min = level === 'silent' ? LOG_LEVELS.length : LOG_LEVELS.indexOf(level as Level);
  if (min < 0) throw new Error(`unknown log level ${JSON.stringify(opts.level)}`);
  const format = opts.format === 'json' ? formatJson : formatLogfmt;
  const write = opts.write ?? ((line: string) => writeSync(2, line));
  const make = (bindings: LogFields): Logger => {
    const at = (level: Level): LogFn => {
      if (LOG_LEVELS.indexOf(level) < min) return () => {};
      const name = level.toUpperCase();
      return (a: string | LogFields, b?: string) => {
        const own = typeof a === 'string' ? undefined : a;
        const msg = typeof a === 'string' ? a : (b ?? '');
        write(format(new Date().toISOString(), name, msg, own ? { ...bindings, ...own } : bindings));
      };
    };
    return {
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      child: (more) => make({ ...bindings, ...more }),
    };
  };
  return make({});
}
