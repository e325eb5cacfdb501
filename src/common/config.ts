// YAML configuration files shared by the stack: optional `$VAR`/`${VAR}` expansion (`$$` = literal `$`)
// and zod validation errors that name the bad key and value.

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
export function formatZodError(err: z.ZodError, input?: unknown): string {
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
