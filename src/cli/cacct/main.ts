// cacct: sacct-like accounting for end users — their units in a time window with CPU/GPU usage, energy and
// emissions, read from the CEEMS API server (cli.md §1).

import { userInfo } from 'node:os';
import { dirname, resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { versionText } from '../../common/buildinfo.js';
import { createHttpClient, type HttpClient } from '../../common/httpclient.js';
import { CliError } from '../http.js';
import { type ApiRow, fetchUnits, fetchUsage, type Query } from './api.js';
import { configDirs, findConfigFile, loadConfig } from './config.js';
import { DEFAULT_FORMAT, FIELDS, helpFormat, parseFormat } from './fields.js';
import { renderBox, renderCsv, renderHtml, renderMarkdown } from './render.js';
import { buildTable, dropEmptyColumns } from './report.js';
import { dumpTimeSeries } from './timeseries.js';
import { formatLocal, resolveWindow } from './window.js';

export interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** Login name of the caller [DIFF D-CLI-1]. */
  user: string;
  now: () => Date;
  /** Directories searched for the config file, in order. */
  configDirs: string[];
  /** Terminal width for the box table; Infinity when stdout is not a terminal. */
  columns: number;
}

function defaultIo(): Io {
  // `cacct | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  return {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    user: userInfo().username,
    now: () => new Date(),
    configDirs: configDirs(),
    columns: process.stdout.isTTY ? process.stdout.columns : Number.POSITIVE_INFINITY,
  };
}

const EXAMPLES = `
Examples:
  cacct                                        my units since today 00:00
  cacct --starttime=2024-05-01 --endtime=2024-05-31T23:59
  cacct --account=acc1,acc2 --format=jobid,name,elapsed,hostenergy,hostemissions
  cacct --long --csv > units.csv               every field, CSV for scripts
  cacct --json                                 units and totals as JSON
  cacct --user=alice,bob                       other users (admins only)
  cacct --job=4242 --ts --ts.out-dir=ts4242    dump the time series of job 4242

Times are local wall time (like sacct): YYYY-MM-DD, YYYY-MM-DDTHH:MM or YYYY-MM-DDTHH:MM:SS.
Energy is in kWh, emissions in g (or kg) CO2-equivalent, usages in %.
The configuration is read from the first of config.yml, config.yaml, cacct.yml, cacct.yaml
found in /etc/ceems, then $XDG_CONFIG_HOME/ceems (~/.config/ceems).

Exit status:
  0  success (also when no unit matches)
  1  invalid flags or time window, missing/invalid configuration, API server unreachable,
     access refused (e.g. --user without admin rights), or a server/TSDB error
`;

const splitList = (v: string | undefined) =>
  (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

function program(io: Io): Command {
  return new Command('cacct')
    .description("Show the caller's compute units with their usage, energy and emissions (CEEMS).")
    .option('--account <accounts>', 'comma-separated accounts (projects) to show')
    .option('--starttime <time>', 'start of the window (default: today 00:00:00)')
    .option('--endtime <time>', 'end of the window (default: now)')
    .option('--job <ids>', 'comma-separated job IDs (the window is then ignored)')
    .option(
      '--user <users>',
      "comma-separated users whose units to show (admins only, except one's own name)",
    )
    .option('--format <fields>', 'comma-separated field keys (see --helpformat)', DEFAULT_FORMAT)
    .option('--helpformat', 'print the field keys for --format and exit')
    .option('--long', `show all ${FIELDS.length} fields`)
    .option('--ts', 'also save the time series of the units (requires --job)')
    .option('--ts.out-dir <dir>', 'directory for --ts output', 'out')
    .addOption(
      new Option('--csv', 'CSV output (stable column order, for scripts)').conflicts([
        'html',
        'markdown',
        'json',
      ]),
    )
    .addOption(new Option('--html', 'HTML table output').conflicts(['markdown', 'json']))
    .addOption(new Option('--markdown', 'Markdown table output').conflicts(['json']))
    .option('--json', 'JSON output: {"units": [...], "summary": [...]}')
    .version(versionText('cacct').trimEnd(), '--version', 'show application version')
    .helpOption('-h, --help', 'show this help')
    .addHelpText('after', EXAMPLES)
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride();
}

interface Opts {
  account?: string;
  starttime?: string;
  endtime?: string;
  job?: string;
  user?: string;
  format: string;
  helpformat?: boolean;
  long?: boolean;
  ts?: boolean;
  'ts.outDir': string;
  csv?: boolean;
  html?: boolean;
  markdown?: boolean;
  json?: boolean;
}

async function run(o: Opts, io: Io): Promise<number> {
  if (o.helpformat) {
    io.stdout(helpFormat());
    return 0;
  }
  const fields = o.long ? [...FIELDS] : parseFormat(o.format);
  const jobs = splitList(o.job);
  if (o.ts && jobs.length === 0) {
    throw new CliError('cacct: error: explicit job IDs must be passed using --job when --ts is enabled', {
      verbatim: true,
    });
  }
  const now = io.now();
  const window = resolveWindow(o.starttime, o.endtime, now);
  const configPath = findConfigFile(io.configDirs);
  const cfg = loadConfig(configPath);
  const baseDir = dirname(resolve(configPath));
  // Asking for oneself alone needs no admin rights: the normal endpoints are used (kept quirk).
  let users = splitList(o.user);
  if (users.length === 1 && users[0] === io.user) users = [];

  const { url, ...webClient } = cfg.ceems_api_server.web;
  const clients: HttpClient[] = [];
  try {
    const client = createHttpClient(webClient, baseDir);
    clients.push(client);
    const q: Query = {
      url,
      client,
      userHeader: cfg.ceems_api_server.user_header_name,
      user: io.user,
      clusterId: cfg.ceems_api_server.cluster_id,
      start: window.start,
      end: window.end,
      fields,
      accounts: splitList(o.account),
      jobs,
      users,
    };
    const [units, usage] = await Promise.all([fetchUnits(q), fetchUsage(q)]);
    const shown = new Set([io.user, ...users]);
    const totals = usage.filter((u) => shown.has(String(u.username ?? '')));
    output(o, io, fields, units, totals, window);

    if (o.ts) {
      const queries = cfg.tsdb?.queries ?? {};
      const tsdbWeb = cfg.tsdb?.web;
      if (Object.keys(queries).length === 0 || !tsdbWeb) {
        io.stderr('time series data not available\n');
        return 0;
      }
      const { url: tsdbUrl, ...tsdbClientCfg } = tsdbWeb;
      const tsdbClient = createHttpClient(tsdbClientCfg, baseDir);
      clients.push(tsdbClient);
      await dumpTimeSeries(units, {
        url: tsdbUrl,
        client: tsdbClient,
        user: io.user,
        userHeader: cfg.ceems_api_server.user_header_name,
        clusterId: cfg.ceems_api_server.cluster_id,
        queries,
        outDir: o['ts.outDir'],
        now,
      });
      io.stderr(`time series data saved to directory ${o['ts.outDir']}\n`);
    }
    return 0;
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

function output(
  o: Opts,
  io: Io,
  fields: ReturnType<typeof parseFormat>,
  units: ApiRow[],
  totals: ApiRow[],
  window: { start: Date; end: Date },
): void {
  if (o.json) {
    io.stdout(`${JSON.stringify({ units, summary: totals }, null, 2)}\n`);
    return;
  }
  if (o.csv) {
    io.stdout(renderCsv(buildTable(fields, units, totals, 'raw')));
    return;
  }
  if (units.length === 0 && totals.length === 0) {
    io.stderr(`no units found between ${formatLocal(window.start)} and ${formatLocal(window.end)}\n`);
    return;
  }
  const table = dropEmptyColumns(buildTable(fields, units, totals, 'human'));
  if (o.html) io.stdout(renderHtml(table));
  else if (o.markdown) io.stdout(renderMarkdown(table));
  else io.stdout(renderBox(table, io.columns));
}

export async function main(argv: string[], overrides: Partial<Io> = {}): Promise<number> {
  const io = { ...defaultIo(), ...overrides };
  const cmd = program(io);
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    throw e;
  }
  try {
    return await run(cmd.opts<Opts>(), io);
  } catch (e) {
    const msg = (e as Error).message;
    io.stderr(e instanceof CliError && e.verbatim ? `${msg}\n` : `cacct: error: ${msg}\n`);
    return 1;
  }
}
