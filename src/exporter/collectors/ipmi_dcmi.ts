// BMC power readings through IPMI DCMI command-line tools (spec exporter.md §5.6): FreeIPMI `ipmi-dcmi`,
// `ipmitool`, `ipmiutil` and Cray `capmc`. BMCs fail often, so the last good reading is served again
// when a call fails (kept quirk, §17.2).

import { accessSync, constants } from 'node:fs';
import { basename, delimiter, join } from 'node:path';
import { runCommand } from '../../common/command.js';
import { rootCommandOptions } from '../../common/privileges.js';
import type { Collector, CollectorContext, CollectorDefinition, Emitter } from '../collector.js';
import { NoDataError } from '../collector.js';

/** Tools in the order of preference of the original, with the arguments that print a power reading. */
export const IPMI_TOOLS = [
  { tool: 'ipmi-dcmi', args: ['--get-system-power-statistics'] },
  { tool: 'ipmitool', args: ['dcmi', 'power', 'reading'] },
  { tool: 'ipmiutil', args: ['dcmi', 'power'] },
  { tool: 'capmc', args: ['get_system_power', '-w', '600'] },
] as const;

/** Searched after `$PATH`: the tools usually live in sbin directories that users' PATHs lack. */
export const SBIN_DIRS = ['/sbin', '/usr/sbin', '/usr/local/sbin'];

export const CALL_TIMEOUT_MS = 1000;

export interface PowerReading {
  current: number;
  min: number;
  max: number;
  avg: number;
}

export class ParseError extends Error {}

const WATTS = String.raw`\s*:\s*([0-9]+(?:\.[0-9]+)?)\s*[Ww]atts`;
const READINGS: Record<keyof PowerReading, RegExp> = {
  current: new RegExp(`^(?:Current Power|Instantaneous power reading)${WATTS}`),
  min: new RegExp(
    `^(?:Minimum Power over sampling duration|Minimum during sampling period|Min Power over sample duration)${WATTS}`,
  ),
  max: new RegExp(
    `^(?:Maximum Power over sampling duration|Maximum during sampling period|Max Power over sample duration)${WATTS}`,
  ),
  avg: new RegExp(
    `^(?:Average Power over sampling duration|Average power reading over sample period|Avg Power over sample duration)${WATTS}`,
  ),
};
const STATE = /^(?:Power Measurement|Power reading state is)\s*:\s*(\S.*?)\s*$/;
const ACTIVE = new Set(['Active', 'active', 'activated']);

/** Parses the text output of ipmi-dcmi, ipmitool and ipmiutil. */
export function parseDcmiText(text: string): PowerReading {
  const found: Partial<PowerReading> = {};
  let state: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const s = STATE.exec(line);
    if (s) {
      state = s[1];
      continue;
    }
    for (const key of Object.keys(READINGS) as (keyof PowerReading)[]) {
      const m = READINGS[key].exec(line);
      if (m) found[key] = Number(m[1]);
    }
  }
  if (state === undefined) throw new ParseError('no power measurement state in the output');
  if (!ACTIVE.has(state)) throw new ParseError(`power measurement is not active (state '${state}')`);
  if (found.current === undefined) throw new ParseError('no current power reading in the output');
  return { current: found.current, min: found.min ?? 0, max: found.max ?? 0, avg: found.avg ?? 0 };
}

/** Parses `capmc get_system_power` JSON; capmc has no instantaneous reading, so current := avg. */
export function parseCapmc(text: string): PowerReading {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ParseError(`capmc output is not JSON: ${(e as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null) throw new ParseError('capmc output is not a JSON object');
  const o = doc as Record<string, unknown>;
  if (typeof o.e === 'number' && o.e !== 0)
    throw new ParseError(`capmc error ${o.e}: ${typeof o.err_msg === 'string' ? o.err_msg : ''}`);
  const num = (k: string) => {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new ParseError(`capmc output has no numeric '${k}'`);
    return v;
  };
  const avg = num('avg');
  return { current: avg, min: num('min'), max: num('max'), avg };
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** First tool of IPMI_TOOLS found on `pathEnv` then in `extraDirs`; the full command line, or undefined. */
export function findIpmiCommand(
  pathEnv: string,
  extraDirs: readonly string[] = SBIN_DIRS,
): string[] | undefined {
  const dirs = [...pathEnv.split(delimiter).filter((d) => d !== ''), ...extraDirs];
  for (const { tool, args } of IPMI_TOOLS) {
    for (const dir of dirs) {
      const p = join(dir, tool);
      if (isExecutable(p)) return [p, ...args];
    }
  }
  return undefined;
}

/** A command line and the uid/gid to start it with. */
export interface Invocation {
  argv: string[];
  uid?: number;
  gid?: number;
}

/**
 * How the command is started (spec §5.6): directly in test mode, as uid 0 when this process is root or holds
 * cap_setuid/cap_setgid (`root`: what rootCommandOptions found), else through non-interactive sudo. FreeIPMI
 * refuses in-band access unless its uid is 0, so capabilities alone would not do; the tool then holds the
 * bounding set, which the privilege switch limits to what the exporter and its tools need.
 */
export function invocation(
  cmd: readonly string[],
  opts: { testMode: boolean; root: { uid?: number; gid?: number } | undefined },
): Invocation {
  if (opts.testMode) return { argv: [...cmd] };
  if (opts.root) return { argv: [...cmd], ...opts.root };
  return { argv: ['sudo', '-n', ...cmd] };
}

const HELP = {
  current: 'Current Power consumption in watts',
  min: 'Minimum Power consumption in watts',
  max: 'Maximum Power consumption in watts',
  avg: 'Average Power consumption in watts',
} as const;

export class IpmiDcmiCollector implements Collector {
  private cached: PowerReading | undefined;
  private readonly parse: (text: string) => PowerReading;

  constructor(
    private readonly ctx: CollectorContext,
    private readonly cmd: readonly string[],
    tool: string,
    private readonly testMode: boolean,
    private readonly timeoutMs = CALL_TIMEOUT_MS,
  ) {
    this.parse = tool === 'capmc' ? parseCapmc : parseDcmiText;
  }

  private loggedAs: string | undefined;

  /** Decided per call: the collector is created as root, before the switch to the run-as user. */
  private invocation(): Invocation {
    const root = this.testMode ? undefined : rootCommandOptions();
    const inv = invocation(this.cmd, { testMode: this.testMode, root });
    const as = this.testMode
      ? 'the exporter (test mode)'
      : root === undefined
        ? 'sudo -n'
        : root.uid === 0
          ? 'uid 0 (cap_setuid, cap_setgid)'
          : 'root';
    if (as !== this.loggedAs)
      this.ctx.logger.info({ cmd: this.cmd.join(' '), as }, 'Running IPMI DCMI command');
    this.loggedAs = as;
    return inv;
  }

  private async read(signal: AbortSignal): Promise<PowerReading> {
    const { argv, ...ids } = this.invocation();
    const { stdout } = await runCommand(argv, { timeoutMs: this.timeoutMs, signal, ...ids });
    const r = this.parse(stdout);
    if (r.current <= 0) throw new ParseError('current power reading is 0');
    return r;
  }

  async update(out: Emitter, signal: AbortSignal): Promise<void> {
    let reading: PowerReading;
    try {
      reading = await this.read(signal);
      this.cached = reading;
    } catch (e) {
      if (!this.cached)
        throw new NoDataError(`no power reading from '${this.cmd.join(' ')}' yet: ${(e as Error).message}`);
      this.ctx.logger.error(
        { err: (e as Error).message, cmd: this.cmd.join(' ') },
        'Failed to get power reading from IPMI DCMI; exporting the last good reading',
      );
      reading = this.cached;
    }
    for (const key of ['current', 'min', 'max', 'avg'] as const) {
      if (reading[key] > 0)
        out.emit(
          `ceems_ipmi_dcmi_${key}_watts`,
          'gauge',
          HELP[key],
          { hostname: this.ctx.hostname },
          reading[key],
        );
    }
  }
}

const FLAG = 'collector.ipmi_dcmi';

export function createIpmiDcmiCollector(
  ctx: CollectorContext,
  opts: { pathEnv?: string; sbinDirs?: readonly string[]; timeoutMs?: number } = {},
): IpmiDcmiCollector {
  const f = ctx.flags;
  if (f.bool(`${FLAG}.force-native-mode`))
    throw new Error(
      `--${FLAG}.force-native-mode: native IPMI mode (ioctl on /dev/ipmi${f.number(`${FLAG}.dev-num`)}) is not available in this build; install ipmi-dcmi (FreeIPMI), ipmitool, ipmiutil or capmc instead`,
    );
  const given = f.string(`${FLAG}.cmd`).trim();
  let cmd: string[];
  if (given !== '') {
    cmd = given.split(/\s+/);
  } else {
    const found = findIpmiCommand(opts.pathEnv ?? process.env.PATH ?? '', opts.sbinDirs ?? SBIN_DIRS);
    if (!found)
      throw new Error(
        `no IPMI DCMI tool (${IPMI_TOOLS.map((t) => t.tool).join(', ')}) found on PATH or in ${SBIN_DIRS.join(', ')}, and native IPMI mode is not available in this build; install one of them or set --${FLAG}.cmd`,
      );
    cmd = found;
  }
  const tool = basename(cmd[0]!);
  const testMode = f.bool(`${FLAG}.test-mode`);
  ctx.logger.info({ cmd: cmd.join(' ') }, 'Using IPMI DCMI command');
  return new IpmiDcmiCollector(ctx, cmd, tool, testMode, opts.timeoutMs);
}

export const ipmiDcmi: CollectorDefinition = {
  name: 'ipmi_dcmi',
  defaultEnabled: false,
  flags: [
    {
      name: `${FLAG}.cmd`,
      type: 'string',
      default: '',
      aliases: ['collector.ipmi.dcmi.cmd'],
      help: 'IPMI DCMI command to get system power statistics. Use full path to executables.',
    },
    {
      name: `${FLAG}.dev-num`,
      type: 'int',
      default: '0',
      help: 'IPMI device number (/dev/ipmi<N>) of native mode.',
    },
    {
      name: `${FLAG}.force-native-mode`,
      type: 'bool',
      default: false,
      help: 'Force native IPMI mode (ioctl); not available in this build.',
    },
    {
      name: `${FLAG}.test-mode`,
      type: 'bool',
      default: false,
      hidden: true,
      help: 'Run the IPMI command directly without privilege handling (testing only).',
    },
  ],
  create: (ctx) => createIpmiDcmiCollector(ctx),
};
