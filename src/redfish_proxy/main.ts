// redfish_proxy entry point (spec cli.md §3): flags, config, web server, graceful shutdown.

import { buildInfo, versionText } from '../common/buildinfo.js';
import { FlagError, type FlagSpec, parseFlags, usage } from '../common/flags.js';
import { createLogger, LOG_FORMATS, LOG_LEVELS } from '../common/logger.js';
import { createWebServer, type WebServer } from '../common/webserver.js';
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
  {
    name: 'log.level',
    type: 'enum',
    values: LOG_LEVELS,
    default: 'info',
    help: 'Only log messages with the given severity or above.',
  },
  {
    name: 'log.format',
    type: 'enum',
    values: LOG_FORMATS,
    default: 'logfmt',
    help: 'Output format of log messages.',
  },
];

export async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags(FLAGS, argv);
  } catch (e) {
    if (e instanceof FlagError) {
      process.stderr.write(`${PROGRAM}: error: ${e.message}, try --help\n`);
      return 1;
    }
    throw e;
  }
  if (parsed.help) {
    process.stdout.write(usage(PROGRAM, DESCRIPTION, FLAGS));
    return 0;
  }
  if (parsed.version) {
    process.stdout.write(versionText(PROGRAM));
    return 0;
  }
  const flags = parsed.flags;
  const log = createLogger({ level: flags.string('log.level'), format: flags.string('log.format') });
  log.info(
    { version: buildInfo.version, revision: buildInfo.revision, node: process.versions.node },
    `Starting ${PROGRAM}`,
  );
  if (flags.bool('web.debug-server'))
    log.warn('--web.debug-server: Go pprof endpoints are not available in this implementation');

  let server: WebServer;
  let proxy: RedfishProxy;
  try {
    if (flags.bool('web.systemd-socket'))
      throw new Error('--web.systemd-socket is not supported by this build; use --web.listen-address');
    const cfg = loadProxyConfig(flags.string('config.file'), flags.bool('config.file.expand-env-vars'));
    if (cfg.deprecatedRoot) log.warn("config root key 'redfish_config' is deprecated; use 'redfish_proxy'");
    proxy = new RedfishProxy(cfg, log);
    server = createWebServer({
      listenAddresses: flags.strings('web.listen-address'),
      webConfigFile: flags.string('web.config.file') || undefined,
      logger: log,
    });
    proxy.register(server.app);
    await server.listen();
  } catch (e) {
    log.error({ err: (e as Error).message }, 'Failed to start');
    process.stderr.write(`${PROGRAM}: error: ${(e as Error).message}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'Shutting down');
      const force = setTimeout(resolve, 5000);
      force.unref();
      Promise.allSettled([server.close(), proxy.close()]).finally(() => {
        clearTimeout(force);
        resolve();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}
