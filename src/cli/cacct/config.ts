// cacct configuration file (cli.md §1.2): first existing file of the lookup order wins.

import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { loadConfigFile, noticeText } from '../../common/config.js';
import { httpClientConfigShape } from '../../common/httpclient.js';

const CONFIG_NAMES = ['config.yml', 'config.yaml', 'cacct.yml', 'cacct.yaml'];

// Keys the original ignores are warnings (common/config.ts): existing cacct files keep working.
const webSchema = z.strictObject({ url: z.string().url(), ...httpClientConfigShape });

export const cacctConfigSchema = z.strictObject({
  ceems_api_server: z.strictObject({
    cluster_id: z.string().default(''),
    user_header_name: z.string().min(1).default('X-Grafana-User'),
    web: webSchema,
  }),
  tsdb: z
    .strictObject({
      web: webSchema.optional(),
      queries: z
        .record(
          z.string(),
          z.string().refine((q) => (q.match(/%s/g) ?? []).length === 1, 'must contain exactly one %s'),
        )
        .nullish(),
    })
    .nullish(),
});

export type CacctConfig = z.infer<typeof cacctConfigSchema>;

/** Lookup directories: `/etc/ceems`, then `$XDG_CONFIG_HOME/ceems` (or `~/.config/ceems`). */
export function configDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const xdg =
    env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return ['/etc/ceems', join(xdg, 'ceems')];
}

export function findConfigFile(dirs: readonly string[]): string {
  for (const dir of dirs) {
    for (const name of CONFIG_NAMES) {
      const p = join(dir, name);
      if (existsSync(p)) return p;
    }
  }
  throw new Error(
    `no configuration file found: looked for ${CONFIG_NAMES.join(', ')} in ${dirs.join(', ')}; ` +
      'ask your administrator to install one',
  );
}

/** Reads the config; unknown keys are reported through `warn` (stderr by default) and ignored. */
export function loadConfig(
  path: string,
  warn: (line: string) => void = (line) => process.stderr.write(line),
): CacctConfig {
  const { config, notices } = loadConfigFile(path, cacctConfigSchema, {});
  for (const n of notices) warn(`cacct: warning: ${noticeText(n)}\n`);
  return config;
}
