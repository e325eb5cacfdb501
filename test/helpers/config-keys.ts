// Key paths of a configuration schema (zod) and of an example file, to check that the shipped examples
// mention every key the loaders know. Inline HTTP client configs are counted once per file: their keys
// appear as `<http client>.<key>` wherever the block is.

import type { z } from 'zod';
import { httpClientConfigShape } from '../../src/common/httpclient.js';

const CLIENT_KEYS = Object.keys(httpClientConfigShape);
export const CLIENT = '<http client>';

interface Def {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
}
const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;

/** The schema under optional/nullable/default/prefault/transform wrappers. */
function unwrap(s: z.ZodType): z.ZodType {
  for (;;) {
    const d = defOf(s);
    if (d.innerType) s = d.innerType;
    else if (d.type === 'pipe' && d.in) s = d.in;
    else return s;
  }
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Dotted key paths (`[]` for list items, `*` for map values) of `schema`, or with `doc` only those the
 * document holds. `extra` gives the schema of an `unknown`/record section at a path (e.g. extra_config).
 */
export function keyPaths(
  schema: z.ZodType,
  doc?: unknown,
  extra: (path: string, doc: unknown) => z.ZodType | undefined = () => undefined,
): Set<string> {
  const out = new Set<string>();
  const withDoc = doc !== undefined;
  const walk = (schema: z.ZodType, d: unknown, path: string) => {
    const def = defOf(unwrap(extra(path, d) ?? schema));
    if (def.type === 'object' && def.shape) {
      const client = CLIENT_KEYS.every((k) => k in def.shape!);
      for (const [k, sub] of Object.entries(def.shape)) {
        if (withDoc && !(isObj(d) && k in d)) continue;
        const p = client && CLIENT_KEYS.includes(k) ? `${CLIENT}.${k}` : path ? `${path}.${k}` : k;
        out.add(p);
        walk(sub, withDoc ? (d as Record<string, unknown>)[k] : undefined, p);
      }
    } else if (def.type === 'array' && def.element) {
      if (!withDoc) walk(def.element, undefined, `${path}[]`);
      else if (Array.isArray(d)) for (const item of d) walk(def.element, item, `${path}[]`);
    } else if (def.type === 'record' && def.valueType) {
      if (!withDoc) walk(def.valueType, undefined, `${path}.*`);
      else if (isObj(d)) for (const v of Object.values(d)) walk(def.valueType, v, `${path}.*`);
    }
  };
  walk(schema, doc, '');
  return out;
}

// `# key: value`, `# - item` (also indented inside the comment): a commented-out setting, not prose
const COMMENTED_SETTING = /^(\s*)# ?(\s*(?:- |[A-Za-z_][\w.-]*:(?:\s|$)).*)$/;

/** The example with every commented-out setting made active (prose comments stay comments). */
export function uncomment(text: string): string {
  return text
    .split('\n')
    .map((line) => {
      const m = COMMENTED_SETTING.exec(line);
      return m ? `${m[1]}${m[2]}` : line;
    })
    .join('\n');
}
