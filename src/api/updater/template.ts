// The subset of Go text/template used by the TSDB updater's queries (spec §12.2, D-API-18): field
// references `{{.Name}}` with optional spaces and `{{-` / `-}}` whitespace trimming. Anything else is
// rejected when the configuration is loaded, so a query can never fail at run time on its template.

export class TemplateError extends Error {}

export const TEMPLATE_VARIABLES = [
  'UUIDs',
  'Range',
  'ScrapeInterval',
  'EvaluationInterval',
  'RateInterval',
  'ScrapeIntervalMilli',
  'EvaluationIntervalMilli',
] as const;
export type TemplateVariable = (typeof TEMPLATE_VARIABLES)[number];
export type TemplateValues = Record<TemplateVariable, string>;

export interface QueryTemplate {
  readonly source: string;
  render(values: TemplateValues): string;
}

const ACTION = /\{\{(-\s)?\s*([\s\S]*?)\s*(\s-)?\}\}/g;

/** Compiles a template; throws TemplateError naming the offending action. */
export function compileTemplate(source: string, what: string): QueryTemplate {
  const parts: Array<string | TemplateVariable> = [];
  let text = '';
  let last = 0;
  let trimNext = false;
  for (const m of source.matchAll(ACTION)) {
    let chunk = source.slice(last, m.index);
    if (trimNext) chunk = chunk.trimStart();
    if (m[1]) chunk = chunk.trimEnd();
    text += chunk;
    const field = /^\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(m[2]!);
    if (!field)
      throw new TemplateError(`${what}: unsupported template action '${m[0]}' (only {{.Field}} is allowed)`);
    if (!(TEMPLATE_VARIABLES as readonly string[]).includes(field[1]!))
      throw new TemplateError(
        `${what}: unknown template field '.${field[1]}' (known: ${TEMPLATE_VARIABLES.map((v) => `.${v}`).join(', ')})`,
      );
    parts.push(text, field[1] as TemplateVariable);
    text = '';
    trimNext = m[3] !== undefined;
    last = m.index + m[0].length;
  }
  let tail = source.slice(last);
  if (trimNext) tail = tail.trimStart();
  if (tail.includes('{{')) throw new TemplateError(`${what}: unclosed template action in '${source}'`);
  parts.push(text + tail);
  return {
    source,
    render(values) {
      let out = '';
      for (let i = 0; i < parts.length; i++)
        out += i % 2 === 0 ? parts[i] : values[parts[i] as TemplateVariable];
      return out;
    },
  };
}

/** Go `time.Duration.String()` of a millisecond duration: `0s`, `500ms`, `15s`, `1m0s`, `1h30m0s`. */
export function goDuration(ms: number): string {
  if (ms === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  let rest = Math.abs(ms);
  if (rest < 1000) return `${sign}${rest}ms`;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = rest / 1000;
  return `${sign}${h > 0 ? `${h}h` : ''}${h > 0 || m > 0 ? `${m}m` : ''}${s}s`;
}
