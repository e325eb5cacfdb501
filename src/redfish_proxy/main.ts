// redfish_proxy entry point (spec cli.md §3): flags, config, web server, graceful shutdown.

import type { FlagSpec, ParsedFlags } from '../common/flags.js';
import type { Logger } from '../common/logger.js';
import { LOG_FLAGS, runServerProgram, type Stoppable } from '../common/program.js';
import { createWebServer } from '../common/webserver.js';
import { loadProxyConfig, RedfishProxy } from './proxy.js';

const PROGRAM = 'redfish_proxy';
const DESCRIPTION = 'Redfish Proxy to proxy requests from compute nodes to their BMC Redfish API.';

export const FLAGS: readonly FlagSpec[] = [
  {
    name: 'config.file',
    type: 'string',
    default: '',
    env: 'REDFISH_PROXY_CONFIG_FILE',
    help: 'Configuration file path.',
  },
  {
    name: 'config.file.expand-env-vars',
    type: 'bool',
    default: false,
    help: 'Any environment variables that are referenced in config file will be expanded. To escape $ use $$',
  },
  {
    name: 'web.listen-address',
    type: 'string',
    repeatable: true,
    default: [':5000'],
    help: 'Addresses on which to expose proxy server and web interface. Repeatable for multiple addresses.',
  },
  {
    name: 'web.config.file',
    type: 'string',
    default: '',
    help: 'Path to configuration file that can enable TLS or authentication.',
  },
  {
    name: 'web.debug-server',
    type: 'bool',
    default: false,
    help: 'Accepted for compatibility; profiling endpoints are not served (Go specific).',
  },
  {
    name: 'web.systemd-socket',
    type: 'bool',
    default: false,
    help: 'Use systemd socket activation listeners instead of port listeners (Linux only).',
  },
  {
    name: 'runtime.gomaxprocs',
    type: 'int',
    default: '1',
    env: 'GOMAXPROCS',
    help: 'Accepted for compatibility; no effect in Node.js.',
  },
  ...LOG_FLAGS,
];

async function startProxy(flags: ParsedFlags, log: Logger): Promise<Stoppable> {
  if (flags.bool('web.debug-server'))
    log.warn('--web.debug-server: Go pprof endpoints are not available in this implementation');
  if (flags.bool('web.systemd-socket'))
    throw new Error('--web.systemd-socket is not supported by this build; use --web.listen-address');
  const cfg = loadProxyConfig(flags.string('config.file'), flags.bool('config.file.expand-env-vars'));
  if (cfg.deprecatedRoot) log.warn("config root key 'redfish_config' is deprecated; use 'redfish_proxy'");
  const proxy = new RedfishProxy(cfg, log);
  const server = createWebServer({
    listenAddresses: flags.strings('web.listen-address'),
    webConfigFile: flags.string('web.config.file') || undefined,
    logger: log,
  });
  proxy.register(server.app);
  try {
    await server.listen();
  } catch (e) {
    await Promise.allSettled([server.close(), proxy.close()]);
    throw e;
  }
  return {
    async stop() {
      await Promise.allSettled([server.close(), proxy.close()]);
    },
  };
}

export async function main(argv: string[]): Promise<number> {
  return runServerProgram({ name: PROGRAM, description: DESCRIPTION, flags: FLAGS, start: startProxy }, argv);
}
