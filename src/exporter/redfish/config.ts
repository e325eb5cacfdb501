// Redfish collector configuration file (spec exporter.md §5.7): root `redfish_collector` (deprecated
// `redfish_web_config`), BMC address and credentials, session-token or basic auth, inline HTTP client config.
// Read leniently (common/config.ts): unknown keys and the older names are warnings, not errors.

import { dirname } from 'node:path';
import { z } from 'zod';
import { ConfigError, type ConfigNotice, loadConfigFile, type RenamedKey } from '../../common/config.js';
import { type HttpClientConfig, httpClientConfigShape } from '../../common/httpclient.js';

const redfishShape = z.strictObject({
  protocol: z.enum(['http', 'https']),
  hostname: z.string().default(''),
  port: z.number().int().min(1).max(65535).optional(),
  username: z.string().default(''),
  password: z.string().default(''),
  use_session_token: z.boolean().default(true),
  timeout: z.number().int().positive().default(5000),
  external_url: z.url({ protocol: /^https?$/ }).optional(),
  ...httpClientConfigShape,
});

export const redfishConfigSchema = z
  .strictObject({ redfish_collector: redfishShape.optional() })
  .refine((o) => o.redfish_collector !== undefined, { message: "root key 'redfish_collector' is missing" });

/** Names of older releases: the root key, `host` of the first layout, the TLS switch before `tls_config`. */
export const REDFISH_RENAMED_KEYS: readonly RenamedKey[] = [
  { in: '', from: 'redfish_web_config', to: 'redfish_collector' },
  { in: 'redfish_collector', from: 'host', to: 'hostname' },
  { in: 'redfish_collector', from: 'insecure_skip_verify', to: 'tls_config.insecure_skip_verify' },
];

export interface RedfishConfig {
  /** BMC base URL, e.g. `https://bmc-node1:443`; also the `X-Redfish-Url` header value. */
  bmcUrl: string;
  /** Where requests are sent: the BMC itself or a redfish_proxy. */
  requestUrl: string;
  username: string;
  password: string;
  useSessionToken: boolean;
  timeoutMs: number;
  http: HttpClientConfig;
  /** Directory that relative file names of the client config resolve against. */
  baseDir: string;
  /** Ignored unknown keys and deprecated names, to be logged. */
  notices: ConfigNotice[];
}

/** Reads and validates the config; `{hostname}` in `hostname` becomes the node name. */
export function loadRedfishConfig(
  path: string,
  opts: { expandEnv: boolean; nodeName: string; env?: NodeJS.ProcessEnv },
): RedfishConfig {
  const env = opts.env ?? process.env;
  const { config: doc, notices } = loadConfigFile(path, redfishConfigSchema, {
    what: `redfish config file '${path}'`,
    renamed: REDFISH_RENAMED_KEYS,
    expandEnv: opts.expandEnv,
    env,
  });
  const c = doc.redfish_collector!;
  const host = c.hostname.replaceAll('{hostname}', opts.nodeName);
  if (host === '')
    throw new ConfigError(
      `redfish config file '${path}': redfish_collector.hostname is empty; discovering the BMC address needs native IPMI (Get LAN Configuration Parameters), which this build does not support: set hostname`,
    );
  const {
    protocol,
    port,
    username,
    password,
    use_session_token,
    timeout,
    external_url,
    hostname: _h,
    ...http
  } = c;
  const bmcPort = port ?? (protocol === 'https' ? 443 : 80);
  const bracketed = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const bmcUrl = `${protocol}://${bracketed}:${bmcPort}`;
  return {
    bmcUrl,
    requestUrl: (external_url ?? bmcUrl).replace(/\/+$/, ''),
    username: env.REDFISH_WEB_USERNAME || username,
    password: env.REDFISH_WEB_PASSWORD || password,
    useSessionToken: use_session_token,
    timeoutMs: timeout,
    http,
    baseDir: dirname(path),
    notices,
  };
}
