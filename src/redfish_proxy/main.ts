// redfish_proxy entry point (spec cli.md §3): flags, config, web server, graceful shutdown.

import { logConfigNotices } from '../common/config.js';
import type { FlagSpec, ParsedFlags } from '../common/flags.js';
import type { Logger } from '../common/logger.js';
import { listenThenDrop, resolveRunAsUser } from '../common/privileges.js';
import {
  DEBUG_SERVER_FLAG,
  PRIVILEGE_FLAGS,
  RUN_AS_USER_FLAG,
  runServerProgram,
  SERVER_FLAGS,
  type Stoppable,
} from '../common/program.js';
import { webConfigFiles } from '../common/webconfig.js';
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
  RUN_AS_USER_FLAG,
  ...SERVER_FLAGS,
  DEBUG_SERVER_FLAG,
  ...PRIVILEGE_FLAGS,
];

async function startProxy(flags: ParsedFlags, log: Logger): Promise<Stoppable> {
  const runAs = resolveRunAsUser(flags.string('security.run-as-user'));
  const cfg = loadProxyConfig(flags.string('config.file'), flags.bool('config.file.expand-env-vars'));
  logConfigNotices(log, cfg.notices);
  const proxy = new RedfishProxy(cfg, log);
  const server = createWebServer({
    listenAddresses: flags.strings('web.listen-address'),
    webConfigFile: flags.string('web.config.file') || undefined,
    logger: log,
  });
  proxy.register(server.app);
  const webConfigFile = flags.string('web.config.file');
  // bound and configured: it only relays HTTP from here on, with no capability
  return listenThenDrop({
    listen: () => server.listen(),
    close: () => Promise.allSettled([server.close(), proxy.close()]),
    runAs,
    readFiles: webConfigFile ? webConfigFiles(webConfigFile) : [],
    dropEnabled: flags.bool('security.drop-privileges'),
    log,
  });
}

export async function main(argv: string[]): Promise<number> {
  return runServerProgram({ name: PROGRAM, description: DESCRIPTION, flags: FLAGS, start: startProxy }, argv);
}
