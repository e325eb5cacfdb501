// Grafana's template variables in a query, replaced the way Grafana replaces them, so that the tests can
// parse, access-check and run each query as a dashboard would send it.

export interface Substitution {
  /** Dashboard variables by name (multi-value ones as lists). */
  vars: Record<string, string | string[]>;
  /** Dashboard time range (Unix s). */
  from: number;
  to: number;
  /** `$__interval` in seconds (Grafana derives it from the range and the panel width). */
  intervalS: number;
  /** `$__rate_interval` in seconds (at least four scrape intervals). */
  rateIntervalS: number;
}

const dur = (s: number) => `${Math.max(1, Math.round(s))}s`;

/** `text` with `$__…` globals and `$name` / `${name}` / `${name:pipe}` / `${name:date:seconds}` replaced. */
export function substitute(text: string, s: Substitution): string {
  const globals: Record<string, string> = {
    __interval: dur(s.intervalS),
    __interval_ms: String(Math.round(s.intervalS * 1000)),
    __rate_interval: dur(s.rateIntervalS),
    __range: dur(s.to - s.from),
    __range_s: String(Math.round(s.to - s.from)),
  };
  const value = (name: string, format: string | undefined): string => {
    if (name === '__from' || name === '__to') {
      const t = name === '__from' ? s.from : s.to;
      if (format === 'date:seconds') return String(Math.floor(t));
      return String(Math.floor(t * 1000));
    }
    if (name in globals) return globals[name]!;
    const v = s.vars[name];
    if (v === undefined) throw new Error(`no value for variable ${name}`);
    const list = Array.isArray(v) ? v : [v];
    if (format === 'pipe' || format === undefined) return list.join('|');
    if (format === 'csv') return list.join(',');
    throw new Error(`variable format ${format} not handled`);
  };
  return text
    .replace(/\$\{(\w+)(?::([\w:]+))?\}/g, (_m, name: string, format?: string) => value(name, format))
    .replace(/\$(\w+)/g, (_m, name: string) => value(name, undefined));
}
