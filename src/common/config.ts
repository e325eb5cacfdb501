// YAML configuration files shared by the stack: optional `$VAR`/`${VAR}` expansion (`$$` = literal `$`),
// zod validation errors that name the bad key and value, and the lenient rule every program's own
// configuration file is read by (`parseLenient`: unknown and renamed keys are notices, not errors).

import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import type { z } from 'zod';

export class ConfigError extends Error {}

/** Expands `$VAR` and `${VAR}` from `env`; `$$` is a literal `$`; unset variables expand to ''. */
export function expandEnvVars(text: string, env: NodeJS.ProcessEnv = process.env): string {
  return text.replace(
    /\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g,
    (_m, all, braced, bare) => (all === '$' ? '$' : (env[braced ?? bare] ?? '')),
  );
}

/** Reads and parses a YAML file; throws ConfigError naming the file and the problem. */
export function readYamlFile(
  path: string,
  opts: { expandEnv?: boolean; env?: NodeJS.ProcessEnv } = {},
): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(
      `cannot read config file '${path}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  if (opts.expandEnv) text = expandEnvVars(text, opts.env);
  try {
    return YAML.parse(text) ?? {};
  } catch (e) {
    throw new ConfigError(`config file '${path}': invalid YAML: ${(e as Error).message}`);
  }
}

/** One line per problem: `<dotted.key>: <message> (got <value>)`. */
export function formatZodError(err: { issues: z.ZodError['issues'] }, input?: unknown): string {
  return err.issues
    .map((i) => {
      const path = i.path.map(String).join('.');
      if (i.code === 'unrecognized_keys') {
        return `${path ? `${path}: ` : ''}unknown key(s) ${i.keys.map((k) => `'${k}'`).join(', ')}`;
      }
      let got = '';
      if (input !== undefined) {
        let v: unknown = input;
        for (const p of i.path)
          v = v && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[p as PropertyKey] : undefined;
        if (v !== undefined) got = ` (got ${JSON.stringify(v)})`;
      }
      return `${path || '<root>'}: ${i.message}${got}`;
    })
    .join('; ');
}

/** Validates `input` with `schema`; throws ConfigError with every problem named. */
export function validate<T extends z.ZodType>(schema: T, input: unknown, what: string): z.infer<T> {
  const r = schema.safeParse(input);
  if (!r.success) throw new ConfigError(`${what}: ${formatZodError(r.error, input)}`);
  return r.data;
}

/** What a lenient load noticed: an ignored unknown key, or an old key name read as its new name. */
export type ConfigNotice =
  | { kind: 'unknown'; file: string; key: string }
  | { kind: 'deprecated'; file: string; key: string; use: string };

/**
 * A key renamed since an older release, read under its new name. `in` is the dotted path of the object
 * holding it ('' = the document root; `*` = every item of a list or every value of a map); `to` is dotted
 * when the new key moved into a sub-object.
 */
export interface RenamedKey {
  in: string;
  from: string;
  to: string;
  /** The old value in the new key's shape, when that changed too. */
  convert?: (old: unknown) => unknown;
}

export interface LenientOptions {
  /** File name the notices and errors name. */
  file: string;
  /** Error prefix, e.g. `config file '<file>'`. */
  what: string;
  renamed?: readonly RenamedKey[];
  /** Dotted path of `input` in its file, prefixed to the keys of the notices. */
  at?: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null;

/** Objects of `doc` at the dotted `path` (`*` fans out over lists and maps), with their concrete paths. */
function objectsAt(doc: unknown, path: string): Array<{ obj: Obj; at: string[] }> {
  let found: Array<{ obj: unknown; at: string[] }> = [{ obj: doc, at: [] }];
  for (const seg of path === '' ? [] : path.split('.')) {
    found = found.flatMap(({ obj, at }) => {
      if (!isObj(obj)) return [];
      if (seg !== '*') return [{ obj: obj[seg], at: [...at, seg] }];
      return Object.entries(obj).map(([k, v]) => ({ obj: v, at: [...at, k] }));
    });
  }
  return found.filter((f): f is { obj: Obj; at: string[] } => isObj(f.obj));
}

/** Moves renamed keys to their new names in place; the new name wins when both are set. */
function applyRenames(
  doc: unknown,
  renamed: readonly RenamedKey[],
  file: string,
  base: readonly string[],
): ConfigNotice[] {
  const notices: ConfigNotice[] = [];
  for (const r of renamed) {
    for (const { obj, at } of objectsAt(doc, r.in)) {
      if (!(r.from in obj)) continue;
      const key = [...base, ...at, r.from].join('.');
      notices.push({ kind: 'deprecated', file, key, use: [...base, ...at, r.to].join('.') });
      const to = r.to.split('.');
      const last = to.pop()!;
      let target: unknown = obj;
      for (const seg of to) {
        if (!isObj(target)) break;
        target[seg] ??= {};
        target = target[seg];
      }
      // a sub-object of the wrong type is reported by the schema; the old value is dropped then
      if (isObj(target) && !(last in target)) target[last] = r.convert ? r.convert(obj[r.from]) : obj[r.from];
      delete obj[r.from];
    }
  }
  return notices;
}

function deleteAt(doc: unknown, path: readonly PropertyKey[], key: string): void {
  let v: unknown = doc;
  for (const p of path) v = isObj(v) ? v[p as string] : undefined;
  if (isObj(v)) delete v[key];
}

/**
 * The one rule of every configuration file of the stack: keys no schema knows are ignored with a notice
 * (the original's YAML decoding ignores them too, so files written for it or for another release keep
 * working), renamed keys of older releases are read under their new names with a notice, and wrong types or
 * missing required keys stay fatal. Schemas use `z.strictObject` where unknown keys are to be reported
 * and `z.looseObject` where a section belongs to another program sharing the file.
 */
export function parseLenient<T extends z.ZodType>(
  schema: T,
  input: unknown,
  opts: LenientOptions,
): { config: z.infer<T>; notices: ConfigNotice[]; cleaned: unknown } {
  const doc = structuredClone(input);
  const base = opts.at ? [opts.at] : [];
  const notices = applyRenames(doc, opts.renamed ?? [], opts.file, base);
  let r = schema.safeParse(doc);
  if (!r.success) {
    const fatal = r.error.issues.filter((i) => i.code !== 'unrecognized_keys');
    if (fatal.length > 0) {
      throw new ConfigError(`${opts.what}: ${formatZodError({ issues: fatal }, doc)}`);
    }
    for (const i of r.error.issues) {
      if (i.code !== 'unrecognized_keys') continue;
      for (const k of i.keys) {
        const key = [...base, ...i.path.map(String), k].join('.');
        notices.push({ kind: 'unknown', file: opts.file, key });
        deleteAt(doc, i.path, k);
      }
    }
    r = schema.safeParse(doc);
    if (!r.success) throw new ConfigError(`${opts.what}: ${formatZodError(r.error, doc)}`);
  }
  // `cleaned`: the input under its new key names and without the unknown keys, defaults not applied
  return { config: r.data, notices, cleaned: doc };
}

/** Reads a YAML file and applies `parseLenient` to it. */
export function loadConfigFile<T extends z.ZodType>(
  path: string,
  schema: T,
  opts: { what?: string; renamed?: readonly RenamedKey[]; expandEnv?: boolean; env?: NodeJS.ProcessEnv },
): { config: z.infer<T>; notices: ConfigNotice[] } {
  const raw = readYamlFile(path, { expandEnv: opts.expandEnv, env: opts.env });
  return parseLenient(schema, raw, {
    file: path,
    what: opts.what ?? `config file '${path}'`,
    renamed: opts.renamed,
  });
}

/** One line for a command-line tool's stderr. */
export function noticeText(n: ConfigNotice): string {
  return n.kind === 'unknown'
    ? `config file '${n.file}': unknown key '${n.key}' ignored`
    : `config file '${n.file}': key '${n.key}' is deprecated, use '${n.use}'`;
}

/** Logs each notice as a warning naming the file and the key. */
export function logConfigNotices(
  log: { warn(fields: Record<string, unknown>, msg: string): void },
  notices: readonly ConfigNotice[],
): void {
  for (const n of notices) {
    if (n.kind === 'unknown') log.warn({ key: n.key, file: n.file }, 'Unknown configuration key ignored');
    else log.warn({ key: n.key, use: n.use, file: n.file }, 'Deprecated configuration key; use the new name');
  }
}
