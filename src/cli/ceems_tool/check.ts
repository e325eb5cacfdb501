// `check api-healthy`, `check lb-healthy`, `check web-config` (cli.md §2.2).

import type { HttpClient } from '../../common/httpclient.js';
import { loadWebConfig } from '../../common/webconfig.js';
import { buildUrl, CliError, httpGet } from '../http.js';

/** GET <url>/health; success → `  SUCCESS:  <body>`, anything else is an error naming the status and body. */
export async function checkHealth(url: string, client: HttpClient, what: string): Promise<string> {
  const full = buildUrl(url, '/health');
  const res = await httpGet(client, full, what, { timeoutMs: 10_000 });
  const body = res.body.trim();
  if (res.status !== 200)
    throw new CliError(`${what} at ${full} is not healthy: HTTP ${res.status}: ${body}`);
  return `  SUCCESS:  ${body}`;
}

/** One line per file: `<file> SUCCESS` or `<file> FAILED: <error>`. */
export function checkWebConfigs(files: string[]): { lines: string[]; ok: boolean } {
  const lines: string[] = [];
  let ok = true;
  for (const f of files) {
    try {
      const cfg = loadWebConfig(f);
      if (cfg.invalidHashUsers.length > 0) {
        throw new Error(
          `basic_auth_users: not a bcrypt hash for user(s) ${cfg.invalidHashUsers.map((u) => `'${u}'`).join(', ')}`,
        );
      }
      lines.push(`${f} SUCCESS`);
    } catch (e) {
      ok = false;
      lines.push(`${f} FAILED: ${(e as Error).message}`);
    }
  }
  return { lines, ok };
}
