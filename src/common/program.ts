// The life cycle every server binary of the stack shares: kingpin-style flags with --help/--version,
// the logger, start-up errors on one line, graceful shutdown on SIGINT/SIGTERM with a bounded grace period.

import { buildInfo, versionText } from './buildinfo.js';
import { FlagError, type FlagSpec, helpText, type ParsedFlags, parseFlags } from './flags.js';
import { createLogger, LOG_FORMATS, LOG_LEVELS, type Logger } from './logger.js';

/** `--log.level` and `--log.format`, identical on every server. */
export const LOG_FLAGS: readonly FlagSpec[] = [
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

/** Flags every server accepts: systemd sockets are refused at start, GOMAXPROCS has no Node.js meaning. */
export const SERVER_FLAGS: readonly FlagSpec[] = [
  {
    name: 'web.systemd-socket',
    type: 'bool',
    default: false,
    help: 'Use systemd socket activation listeners instead of port listeners (Linux only; not supported by this build).',
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

/** `--web.debug-server`: Go pprof endpoints, accepted and warned about. */
export const DEBUG_SERVER_FLAG: FlagSpec = {
  name: 'web.debug-server',
  type: 'bool',
  default: false,
  help: 'Accepted for compatibility; profiling endpoints are not served (Go specific).',
};

/** `--security.run-as-user` of the servers that keep no capability once bound (LB, redfish_proxy, admission controller). */
export const RUN_AS_USER_FLAG: FlagSpec = {
  name: 'security.run-as-user',
  type: 'string',
  default: '',
  help: 'User to switch to after start-up when started as root (default: nobody).',
};

/** Hidden privilege flags of the servers that may start as root. */
export const PRIVILEGE_FLAGS: readonly FlagSpec[] = [
  {
    name: 'security.drop-privileges',
    type: 'bool',
    default: true,
    hidden: true,
    help: 'Drop privileges after start-up.',
  },
  {
    name: 'security.disable-cap-awareness',
    type: 'bool',
    default: false,
    hidden: true,
    help: 'Accepted for compatibility.',
  },
];

export interface Stoppable {
  stop(): Promise<void>;
}

export interface ServerProgram<R extends Stoppable> {
  name: string;
  description: string;
  flags: readonly FlagSpec[];
  start(flags: ParsedFlags, log: Logger): Promise<R>;
  /** Longest wait for `stop()` before the process exits anyway. */
  shutdownGraceMs?: number;
}

/** Runs a server until SIGINT/SIGTERM; resolves to the process exit code. */
export async function runServerProgram<R extends Stoppable>(
  program: ServerProgram<R>,
  argv: string[],
): Promise<number> {
  const { name } = program;
  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags(program.flags, argv);
  } catch (e) {
    if (e instanceof FlagError) {
      process.stderr.write(`${name}: error: ${e.message}, try --help\n`);
      return 1;
    }
    throw e;
  }
  if (parsed.help) {
    process.stdout.write(
      helpText(parsed.helpFormat, name, program.description, buildInfo.version, program.flags),
    );
    return 0;
  }
  if (parsed.version) {
    process.stdout.write(versionText(name));
    return 0;
  }
  const flags = parsed.flags;
  const log = createLogger({ level: flags.string('log.level'), format: flags.string('log.format') });
  for (const a of flags.usedAliases) log.warn({ flag: `--${a}` }, 'flag is deprecated; use its new name');
  log.info(
    {
      version: buildInfo.version,
      revision: buildInfo.revision,
      node: process.versions.node,
      ...(process.execArgv.length > 0 ? { node_flags: process.execArgv.join(' ') } : {}),
    },
    `Starting ${name}`,
  );
  if (program.flags.includes(DEBUG_SERVER_FLAG) && flags.bool('web.debug-server')) {
    log.warn('--web.debug-server: Go pprof endpoints are not available in this implementation');
  }
  // Signal handlers go in before start-up: a SIGTERM that arrives while the server is starting (it may
  // already answer requests while the rest of start-up runs) must stop it cleanly, not kill it by the
  // signal's default action.
  let signalled: ((signal: NodeJS.Signals) => void) | undefined;
  let pendingSignal: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) signalled(signal);
    else pendingSignal ??= signal;
  };
  const onSigint = () => onSignal('SIGINT');
  const onSigterm = () => onSignal('SIGTERM');
  process.once('SIGINT', onSigint);
  process.once('SIGTERM', onSigterm);
  let running: R;
  try {
    if (flags.bool('web.systemd-socket')) {
      throw new Error('--web.systemd-socket is not supported by this build; use --web.listen-address');
    }
    running = await program.start(flags, log);
  } catch (e) {
    process.removeListener('SIGINT', onSigint);
    process.removeListener('SIGTERM', onSigterm);
    const msg = (e as Error).message;
    log.error({ err: msg }, 'Failed to start');
    process.stderr.write(`${name}: error: ${msg}\n`);
    return 1;
  }
  await new Promise<void>((done) => {
    signalled = (signal: NodeJS.Signals) => {
      log.info({ signal }, 'Shutting down');
      // A stop that outlives its grace period may be stuck in a thread blocked in the kernel (a worker or
      // libuv's pool reading a hung file), which process.exit would wait for forever: die by the signal's
      // default action instead, which no thread holds back.
      const force = setTimeout(() => {
        log.error(
          { signal, graceMs: program.shutdownGraceMs ?? 5000 },
          'Shutdown did not finish in time; exiting',
        );
        process.removeAllListeners(signal);
        process.kill(process.pid, signal);
      }, program.shutdownGraceMs ?? 5000);
      force.unref();
      running
        .stop()
        .catch((e) => log.error({ err: (e as Error).message }, 'Shutdown failed'))
        .finally(() => {
          clearTimeout(force);
          done();
        });
    };
    if (pendingSignal) signalled(pendingSignal);
  });
  return 0;
}
