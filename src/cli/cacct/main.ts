// cacct: sacct-like accounting for end users — their units in a time window with CPU/GPU usage, energy and
// emissions, read from the CEEMS API server (cli.md §1).

import { userInfo } from 'node:os';
import { dirname, resolve } from 'node:path';
import { buildInfo, versionText } from '../../common/buildinfo.js';
import { FlagError, type FlagSpec, helpText, type ParsedFlags, parseFlags } from '../../common/flags.js';
import { createHttpClient, type HttpClient } from '../../common/httpclient.js';
import { CliError } from '../http.js';
import { type ApiRow, fetchFootprints, fetchUnits, fetchUsage, type Query } from './api.js';
import { configDirs, findConfigFile, loadConfig } from './config.js';
import { DEFAULT_FORMAT, FIELDS, type Field, helpFormat, parseFormat } from './fields.js';
import { FOOTPRINT_FORMATS, isFootprintFormat, renderFootprint } from './footprint.js';
import { dropEmptyColumns, renderBox, renderCsv, renderHtml, renderMarkdown } from './render.js';
import { buildTable, sortByJobId } from './report.js';
import { summariseUnits } from './summary.js';
import { dumpTimeSeries } from './timeseries.js';
import { resolveWindow } from './window.js';

export interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** Login name of the caller [DIFF D-CLI-1]. */
  user: string;
  now: () => Date;
  /** Directories searched for the config file, in order. */
  configDirs: string[];
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
  };
}

const DESCRIPTION = "Show the caller's jobs with their usage, energy and emissions (CEEMS).";

const EXAMPLES = `
Examples:
  cacct                                        my jobs since today 00:00, running ones included
  cacct --starttime=2024-05-01 --endtime=2024-05-31T23:59
  cacct --account=acc1,acc2 --format=jobid,name,elapsed,hostenergy,hostemissions
  cacct --long --csv > units.csv               every field, CSV for scripts
  cacct --json                                 units and totals as JSON
  cacct --user=alice,bob                       other users (admins only)
  cacct --job=4242,4250                        two jobs; the Summary totals these two only
  cacct --job=4242 --ts --ts.out-dir=ts4242    dump the time series of job 4242

Times are local wall time (like sacct): YYYY-MM-DD, YYYY-MM-DDTHH:MM or YYYY-MM-DDTHH:MM:SS.
Energy is in kWh, emissions in g CO2-equivalent (--human-units: g or kg), usages in %.
The configuration is read from the first of config.yml, config.yaml, cacct.yml, cacct.yaml
found in /etc/ceems, then $XDG_CONFIG_HOME/ceems (~/.config/ceems).

Exit status:
  0  success (also when no job matches)
  1  invalid flags or time window, missing/invalid configuration, API server unreachable,
     access refused (e.g. --user without admin rights), or a server/TSDB error
`;

const splitList = (v: string | undefined) =>
  (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

// kingpin syntax like the original (cli.md: all tools): `--flag=value`, `--flag value`, `--[no-]bool`,
// `--bool=true|false`, `-h`.
const FLAGS: readonly FlagSpec[] = [
  {
    name: 'account',
    type: 'string',
    placeholder: 'ACCOUNT',
    help: 'Comma-separated accounts (projects) to show.',
  },
  {
    name: 'starttime',
    type: 'string',
    placeholder: 'STARTTIME',
    help: 'Start of the window, YYYY-MM-DD[THH:MM[:SS]] local time (default: today 00:00:00).',
  },
  {
    name: 'endtime',
    type: 'string',
    placeholder: 'ENDTIME',
    help: 'End of the window, YYYY-MM-DD[THH:MM[:SS]] local time (default: now).',
  },
  {
    name: 'job',
    type: 'string',
    placeholder: 'JOB',
    help: 'Comma-separated job IDs (the window is then ignored).',
  },
  {
    name: 'user',
    type: 'string',
    placeholder: 'USER',
    help: "Comma-separated users whose jobs to show (admins only, except one's own name).",
  },
  {
    name: 'format',
    type: 'string',
    placeholder: 'FORMAT',
    help: `Comma-separated field keys (see --helpformat; default: ${DEFAULT_FORMAT}), or ${FOOTPRINT_FORMATS.join(' or ')}: the footprint record of each unit (energy with its source and PUE, emissions with their factor).`,
  },
  { name: 'helpformat', type: 'bool', help: 'Print the field keys for --format and exit.' },
  {
    name: 'long',
    type: 'bool',
    help: `Show the original's ${FIELDS.length} fields (the provenance keys only through --format).`,
  },
  { name: 'ts', type: 'bool', help: 'Also save the time series of the jobs as CSV files (requires --job).' },
  {
    name: 'ts.out-dir',
    type: 'string',
    default: 'out',
    placeholder: 'DIR',
    help: 'Directory for --ts output.',
  },
  { name: 'csv', type: 'bool', help: 'CSV output (stable column order, for scripts).' },
  { name: 'html', type: 'bool', help: 'HTML table output.' },
  { name: 'markdown', type: 'bool', help: 'Markdown table output.' },
  { name: 'json', type: 'bool', help: 'JSON output: {"units": [...], "summary": [...]}.' },
  {
    name: 'human-units',
    type: 'bool',
    help: 'Box table numbers in human units (emissions in g or kg CO2e, adaptive decimals).',
  },
];

const RENDERERS = ['csv', 'html', 'markdown', 'json'] as const;

function renderer(flags: ParsedFlags): (typeof RENDERERS)[number] | undefined {
  const chosen = RENDERERS.filter((r) => flags.bool(r));
  if (chosen.length > 1) throw new FlagError(`--${chosen[0]} cannot be used with --${chosen[1]}`);
  return chosen[0];
}

async function run(flags: ParsedFlags, io: Io): Promise<number> {
  if (flags.bool('helpformat')) {
    io.stdout(helpFormat());
    return 0;
  }
  const format = flags.string('format');
  const footprint = isFootprintFormat(format) ? format : undefined;
  const fields =
    flags.bool('long') || footprint ? [...FIELDS] : parseFormat(format === '' ? DEFAULT_FORMAT : format);
  const output = renderer(flags);
  if (footprint) {
    const other = [...RENDERERS, 'long', 'ts'].find((f) => flags.bool(f));
    if (other) throw new FlagError(`--format=${footprint} cannot be used with --${other}`);
  }
  const jobs = splitList(flags.string('job'));
  if (flags.bool('ts') && jobs.length === 0) {
    throw new CliError('cacct: error: explicit job IDs must be passed using --job when --ts is enabled', {
      verbatim: true,
    });
  }
  const now = io.now();
  const window = resolveWindow(
    flags.string('starttime') || undefined,
    flags.string('endtime') || undefined,
    now,
  );
  const configPath = findConfigFile(io.configDirs);
  const cfg = loadConfig(configPath);
  const baseDir = dirname(resolve(configPath));
  // Asking for oneself alone needs no admin rights: the normal endpoints are used (kept quirk).
  let users = splitList(flags.string('user'));
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
      accounts: splitList(flags.string('account')),
      jobs,
      users,
    };
    if (footprint) {
      io.stdout(renderFootprint(footprint, await fetchFootprints(q)));
      return 0;
    }
    // With --job the totals are those of the listed jobs, not of the whole window [DIFF D-CLI-21].
    const [units, usage] = await Promise.all([
      fetchUnits(q).then(sortByJobId),
      jobs.length > 0 ? Promise.resolve(undefined) : fetchUsage(q),
    ]);
    const shown = new Set([io.user, ...users]);
    const totals = (usage ?? summariseUnits(units)).filter((u) => shown.has(String(u.username ?? '')));
    io.stdout(render(output, flags.bool('human-units'), fields, units, totals));

    if (flags.bool('ts')) {
      const queries = cfg.tsdb?.queries ?? {};
      const tsdbWeb = cfg.tsdb?.web;
      if (Object.keys(queries).length === 0 || !tsdbWeb) {
        io.stderr('time series data not available\n');
        return 0;
      }
      const { url: tsdbUrl, ...tsdbClientCfg } = tsdbWeb;
      const tsdbClient = createHttpClient(tsdbClientCfg, baseDir);
      clients.push(tsdbClient);
      const outDir = flags.string('ts.out-dir');
      await dumpTimeSeries(units, {
        url: tsdbUrl,
        client: tsdbClient,
        user: io.user,
        userHeader: cfg.ceems_api_server.user_header_name,
        clusterId: cfg.ceems_api_server.cluster_id,
        queries,
        outDir,
        now,
      });
      io.stderr(`time series data saved to directory ${outDir}\n`);
    }
    return 0;
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

function render(
  output: ReturnType<typeof renderer>,
  humanUnits: boolean,
  fields: readonly Field[],
  units: ApiRow[],
  totals: ApiRow[],
): string {
  switch (output) {
    case 'json':
      return `${JSON.stringify({ units, summary: totals }, null, 2)}\n`;
    case 'csv':
      return renderCsv(buildTable(fields, units, totals, 'original'));
    case 'html':
      return renderHtml(dropEmptyColumns(buildTable(fields, units, totals, 'original')));
    case 'markdown':
      return renderMarkdown(dropEmptyColumns(buildTable(fields, units, totals, 'original')));
    default:
      return renderBox(buildTable(fields, units, totals, humanUnits ? 'human' : 'original'));
  }
}

export async function main(argv: string[], overrides: Partial<Io> = {}): Promise<number> {
  const io = { ...defaultIo(), ...overrides };
  try {
    const parsed = parseFlags(FLAGS, argv);
    if (parsed.help) {
      const text = helpText(parsed.helpFormat, 'cacct', DESCRIPTION, buildInfo.version, FLAGS);
      io.stdout(parsed.helpFormat === 'man' ? text : text + EXAMPLES);
      return 0;
    }
    if (parsed.version) {
      io.stdout(versionText('cacct'));
      return 0;
    }
    return await run(parsed.flags, io);
  } catch (e) {
    const msg = (e as Error).message;
    // the original's kingpin.Fatalf line
    if (e instanceof FlagError) io.stderr(`cacct: error: failed to parse CLI flags: ${msg}\n`);
    else io.stderr(e instanceof CliError && e.verbatim ? `${msg}\n` : `cacct: error: ${msg}\n`);
    return 1;
  }
}
