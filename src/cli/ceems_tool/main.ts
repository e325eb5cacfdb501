// ceems_tool: operator tool — health checks, web-config generation, and Prometheus recording rules,
// relabel configs and TSDB updater queries generated from what a running Prometheus scrapes (cli.md §2).
// Generated YAML and messages go to stderr (kept quirk: existing scripts redirect stderr).

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Command, CommanderError, Option } from 'commander';
import { versionText } from '../../common/buildinfo.js';
import { readYamlFile, validate } from '../../common/config.js';
import { parseDuration } from '../../common/duration.js';
import {
  createHttpClient,
  type HttpClient,
  type HttpClientConfig,
  httpClientConfigSchema,
} from '../../common/httpclient.js';
import { CliError } from '../http.js';
import { checkHealth, checkWebConfigs } from './check.js';
import { discoverPlans } from './discover.js';
import { kingpinBooleans } from './kingpin.js';
import { createPrometheus } from './prometheus.js';
import { relabelConfigs } from './relabel.js';
import { gpuRules, hostRules } from './rules.js';
import { updaterQueries } from './updater.js';
import { createWebConfig } from './webconfig.js';

export interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** Reads one answer line (Redfish chassis question); null at end of input. */
  readLine: () => Promise<string | null>;
  now: () => Date;
}

function defaultIo(): Io {
  return {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    readLine: () =>
      new Promise((res) => {
        const rl = createInterface({ input: process.stdin });
        let answered = false;
        rl.once('line', (l) => {
          answered = true;
          rl.close();
          res(l);
        });
        rl.once('close', () => {
          if (!answered) res(null);
        });
      }),
    now: () => new Date(),
  };
}

/** `--url` may carry credentials, `--http.config.file` a full client config; not both. */
function httpClient(url: string, configFile: string | undefined): { url: string; client: HttpClient } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`invalid --url '${url}'`);
  }
  let cfg: HttpClientConfig = {};
  let baseDir = process.cwd();
  if (parsed.username || parsed.password) {
    if (configFile) throw new CliError('--url with credentials cannot be combined with --http.config.file');
    cfg = {
      basic_auth: {
        username: decodeURIComponent(parsed.username),
        password: decodeURIComponent(parsed.password),
      },
    };
    parsed.username = '';
    parsed.password = '';
  } else if (configFile) {
    cfg = validate(httpClientConfigSchema, readYamlFile(configFile), `HTTP config file '${configFile}'`);
    baseDir = dirname(resolve(configFile));
  }
  return { url: parsed.toString(), client: createHttpClient(cfg, baseDir) };
}

/** RFC 3339 or Unix seconds. */
export function parseTime(text: string, flag: string): Date {
  const d = /^-?\d+(\.\d+)?$/.test(text) ? new Date(Number(text) * 1000) : new Date(text);
  if (Number.isNaN(d.getTime()) || (!/^-?\d/.test(text) && !/^\d{4}-\d{2}-\d{2}T/.test(text))) {
    throw new CliError(
      `invalid --${flag} '${text}': expected RFC 3339 (2024-05-06T10:00:00Z) or Unix seconds`,
    );
  }
  return d;
}

const positiveNumber = (flag: string, min: number) => (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min) {
    throw new CliError(`invalid --${flag} '${v}': expected a number ≥ ${min}`);
  }
  return n;
};

const durationArg = (flag: string) => (v: string) => {
  try {
    return parseDuration(v);
  } catch (e) {
    throw new CliError(`invalid --${flag} '${v}': ${(e as Error).message}`);
  }
};

const safeFileName = (job: string) => job.replace(/[^A-Za-z0-9_.-]/g, '_');

interface TsdbOpts {
  start?: string;
  end?: string;
}

/** The global `--url` (or the command's default) and `--http.config.file`, wherever they were given. */
function target(cmd: Command, defaultUrl: string): { url: string; configFile?: string } {
  const g = cmd.optsWithGlobals<{ url?: string; 'http.config.file'?: string }>();
  return { url: g.url ?? defaultUrl, configFile: g['http.config.file'] };
}

function tsdbCommand(name: string, description: string, examples: string): Command {
  return new Command(name)
    .description(`${description} (--url default: ${PROMETHEUS_URL})`)
    .option('--start <time>', 'start of the window to inspect: RFC 3339 or Unix seconds (default: now - 3h)')
    .option('--end <time>', 'end of the window: RFC 3339 or Unix seconds (default: now)')
    .addHelpText('after', `\nExamples:\n${examples}`);
}

const PROMETHEUS_URL = 'http://localhost:9090';

function promFor(o: TsdbOpts, cmd: Command, io: Io) {
  const now = io.now();
  const end = o.end ? parseTime(o.end, 'end') : now;
  const start = o.start ? parseTime(o.start, 'start') : new Date(end.getTime() - 3 * 3600_000);
  if (start.getTime() >= end.getTime()) throw new CliError('--start must be before --end');
  const t = target(cmd, PROMETHEUS_URL);
  const { url, client } = httpClient(t.url, t.configFile);
  return { prom: createPrometheus(url, client, { start, end }), client };
}

function program(io: Io, setCode: (c: number) => void): Command {
  const root = new Command('ceems_tool')
    .description('CEEMS operator tool: health checks, web configs, Prometheus rules and updater queries.')
    .version(versionText('ceems_tool').trimEnd(), '--version', 'show application version')
    .helpOption('-h, --help', 'show help')
    .option('--url <url>', 'target URL (default: per command, see its help)')
    .option(
      '--http.config.file <file>',
      'HTTP client config file (basic_auth, tls_config, ...); not with credentials in --url',
    )
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride()
    .showHelpAfterError()
    .addHelpText(
      'after',
      `
Examples:
  ceems_tool check api-healthy --url=http://ceems-api:9020
  ceems_tool check web-config /etc/ceems_exporter/web-config.yml
  ceems_tool config create-web-config --tls --tls.host=node01 --output-dir=/etc/ceems_exporter
  ceems_tool tsdb create-recording-rules --url=http://prometheus:9090 --country-code=FR --pue=1.3
  ceems_tool tsdb create-relabel-configs --url=http://prometheus:9090 2> relabel.yml

Generated YAML and messages are written to stderr. Exit status: 0 success, 1 failure.`,
    );

  const check = new Command('check')
    .description('health and configuration checks')
    .addHelpText(
      'after',
      '\nExamples:\n  ceems_tool check api-healthy --url=http://ceems-api:9020\n  ceems_tool check lb-healthy --url=http://ceems-lb:9030\n  ceems_tool check web-config web-config.yml\n',
    );
  const health = (name: string, what: string, port: number) =>
    new Command(name)
      .description(
        `GET <url>/health of the ${what}; exit 1 unless it answers 200 (--url default: http://localhost:${port})`,
      )
      .addHelpText(
        'after',
        `\nExamples:\n  ceems_tool check ${name} --url=https://host:${port} --http.config.file=client.yml\n`,
      )
      .action(async (_o: object, cmd: Command) => {
        const t = target(cmd, `http://localhost:${port}`);
        const { url, client } = httpClient(t.url, t.configFile);
        try {
          io.stderr(`${await checkHealth(url, client, what)}\n`);
        } finally {
          await client.close();
        }
      });
  check.addCommand(health('api-healthy', 'CEEMS API server', 9020));
  check.addCommand(health('lb-healthy', 'CEEMS load balancer', 9030));
  check.addCommand(
    new Command('web-config')
      .description('validate exporter-toolkit web config files (TLS, basic auth)')
      .argument('<file...>', 'web config files')
      .addHelpText(
        'after',
        '\nExamples:\n  ceems_tool check web-config /etc/ceems_api_server/web-config.yml\n',
      )
      .action((files: string[]) => {
        const r = checkWebConfigs(files);
        io.stderr(`${r.lines.join('\n')}\n`);
        if (!r.ok) setCode(1);
      }),
  );

  const config = new Command('config')
    .description('configuration generators')
    .addHelpText(
      'after',
      '\nExamples:\n  ceems_tool config create-web-config --tls --tls.host=node01 --output-dir=/etc/ceems_exporter\n',
    );
  config.addCommand(
    new Command('create-web-config')
      .description(
        'write <output-dir>/web-config.yml with a generated basic-auth password and/or a self-signed certificate',
      )
      .option(
        '--basic-auth',
        'basic auth for user "ceems" with a random 24-character password (bcrypt, cost 10)',
        true,
      )
      .option('--no-basic-auth', 'no basic auth')
      .option(
        '--tls',
        'self-signed ECDSA P-256 certificate (cert.pem, key.pem; needs the openssl command)',
        false,
      )
      .option('--no-tls', 'no TLS')
      .option(
        '--tls.host <host>',
        'host name or IP for the certificate (repeatable; required with --tls)',
        (v, acc: string[]) => [...acc, v],
        [],
      )
      .option('--tls.validity <duration>', 'certificate validity (whole days, rounded up)', '8760h')
      .option('--output-dir <dir>', 'output directory', 'config')
      .addHelpText(
        'after',
        '\nExamples:\n  ceems_tool config create-web-config --output-dir=/etc/ceems_exporter\n  ceems_tool config create-web-config --tls --tls.host=node01 --tls.host=10.0.0.1 --tls.validity=17520h\n',
      )
      .action(
        (o: {
          basicAuth: boolean;
          tls: boolean;
          'tls.host': string[];
          'tls.validity': string;
          outputDir: string;
        }) => {
          const r = createWebConfig({
            basicAuth: o.basicAuth,
            tls: o.tls,
            hosts: o['tls.host'],
            validityMs: durationArg('tls.validity')(o['tls.validity']),
            outputDir: o.outputDir,
          });
          // the original's three lines, which scripts parse; no password lines without basic auth [DIFF D-CLI-15]
          io.stderr(`web config file created at ${r.file}\n`);
          if (r.password) {
            io.stderr(
              `plain text password for basic auth is ${r.password}\n` +
                'store the plain text password securely as you will need it to configure Prometheus\n',
            );
          }
        },
      ),
  );

  const tsdb = new Command('tsdb')
    .description('Prometheus recording rules, relabel configs and updater queries')
    .addHelpText(
      'after',
      '\nExamples:\n  ceems_tool tsdb create-recording-rules --url=http://prometheus:9090 --country-code=FR\n' +
        '  ceems_tool tsdb create-relabel-configs --url=http://prometheus:9090\n' +
        '  ceems_tool tsdb create-ceems-tsdb-updater-queries --url=http://prometheus:9090\n',
    );
  tsdb.addCommand(
    tsdbCommand(
      'create-recording-rules',
      'write recording rules for the power sources and GPUs Prometheus scrapes (<output-dir>/<job>.rules, <gpujob>-gpu.rules)',
      '  ceems_tool tsdb create-recording-rules --country-code=FR --pue=1.2 --output-dir=/etc/prometheus/rules\n' +
        '  ceems_tool tsdb create-recording-rules --emission-factor=300 --eval-interval=30s\n',
    )
      .option('--pue <pue>', 'power usage effectiveness of the data centre', positiveNumber('pue', 1), 1)
      .option(
        '--emission-factor <g/kWh>',
        'static emission factor in gCO2e/kWh (provider "custom"); not with --country-code',
        positiveNumber('emission-factor', 0),
        0,
      )
      .option('--country-code <cc>', 'ISO 3166-1 alpha-2 country code for emission factors', '')
      .option(
        '--eval-interval <duration>',
        'rule evaluation interval (default: Prometheus global evaluation_interval)',
      )
      .option('--output-dir <dir>', 'output directory', 'rules')
      .addOption(
        new Option(
          '--disable-providers [providers]',
          'comma-separated emission providers to ignore; all of them without a value (the original is a bool)',
        ).hideHelp(),
      )
      .action(
        async (
          o: TsdbOpts & {
            pue: number;
            emissionFactor: number;
            countryCode: string;
            evalInterval?: string;
            outputDir: string;
            disableProviders?: string | true;
          },
          cmd: Command,
        ) => {
          if (o.countryCode !== '' && o.emissionFactor > 0) {
            throw new CliError(
              '--country-code and --emission-factor cannot be used together. Set atmost one.',
            );
          }
          const { prom, client } = promFor(o, cmd, io);
          try {
            const plans = await discoverPlans(prom, {
              pue: o.pue,
              emissionFactor: o.emissionFactor,
              countryCode: o.countryCode.toUpperCase(),
              evalIntervalMs: o.evalInterval ? durationArg('eval-interval')(o.evalInterval) : undefined,
              disableProviders:
                o.disableProviders === true
                  ? 'all'
                  : (o.disableProviders ?? '').split(',').filter((p) => p !== ''),
              // the original's prompt and 0-based answer (scripts pipe it in); a choice's name also works
              choose: async (question, choices) => {
                const last = choices.length - 1;
                io.stderr(
                  `${question}\n${choices.map((c, i) => `[${i}]: ${c}\n`).join('')}Enter number between 0 and ${last}\n`,
                );
                const a = (await io.readLine())?.trim() ?? '';
                const pick = /^\d+$/.test(a) ? choices[Number(a)] : choices.find((c) => c === a);
                if (!pick) {
                  throw new CliError(
                    `invalid choice '${a}': enter a number between 0 and ${last} (or one of ${choices.join(', ')})`,
                  );
                }
                return pick;
              },
              warn: (m) => io.stderr(`WARNING: ${m}\n`),
              say: (m) => io.stderr(`${m}\n`),
            });
            mkdirSync(o.outputDir, { recursive: true });
            // the original's progress lines (file names relative to the output directory)
            const write = (what: string, name: string, text: string) => {
              writeFileSync(join(o.outputDir, name), text);
              io.stderr(`generating recording rules for ${what} in file ${name}\n`);
            };
            const writeGpu = (p: (typeof plans.gpus)[number]) =>
              write(`GPU for job ${p.gpuJob}`, `${safeFileName(p.gpuJob)}-gpu.rules`, gpuRules(p));
            // each job's GPU files right after its own, as the original orders them
            for (const p of plans.hosts) {
              write(`job ${p.job}`, `${safeFileName(p.job)}.rules`, hostRules(p));
              plans.gpus.filter((g) => g.ceemsJob === p.job).forEach(writeGpu);
            }
            const hostJobs = new Set(plans.hosts.map((p) => p.job));
            plans.gpus.filter((g) => !hostJobs.has(g.ceemsJob)).forEach(writeGpu);
            if (plans.hosts.length === 0) {
              throw new CliError(
                'no recording rules generated: no CEEMS job with a node power source was found',
              );
            }
          } finally {
            await client.close();
          }
        },
      ),
  );
  tsdb.addCommand(
    tsdbCommand(
      'create-relabel-configs',
      'print metric_relabel_configs aligning GPU exporter labels with the CEEMS GPU mapping',
      '  ceems_tool tsdb create-relabel-configs --url=http://prometheus:9090 2> gpu-relabel.yml\n',
    ).action(async (o: TsdbOpts, cmd: Command) => {
      const { prom, client } = promFor(o, cmd, io);
      try {
        const yaml = await relabelConfigs(prom);
        if (yaml === null)
          throw new CliError('no NVIDIA DCGM or AMD GPU exporter series found in the window');
        io.stderr(yaml);
      } finally {
        await client.close();
      }
    }),
  );
  tsdb.addCommand(
    tsdbCommand(
      'create-ceems-tsdb-updater-queries',
      'print the queries: block of the API server TSDB updater for the recording-rule series that exist',
      '  ceems_tool tsdb create-ceems-tsdb-updater-queries --url=http://prometheus:9090 2> queries.yml\n',
    ).action(async (o: TsdbOpts, cmd: Command) => {
      const { prom, client } = promFor(o, cmd, io);
      try {
        const yaml = await updaterQueries(prom);
        if (yaml === null) {
          throw new CliError(
            'no uuid:ceems_* recording-rule series found: load the rules of create-recording-rules first',
          );
        }
        io.stderr(yaml);
      } finally {
        await client.close();
      }
    }),
  );
  const db = new Command('db')
    .description('API server database tools')
    .addHelpText(
      'after',
      '\nExamples:\n  ceems_tool db migrate --from=/var/lib/ceems_api_server --to=postgres://ceems:secret@db:5432/ceems\n',
    );
  db.addCommand(
    new Command('migrate')
      .description(
        'copy an API server SQLite database (ceems.db) into PostgreSQL, then check every table: row count and SHA-256 of its rows on both sides; exit 1 on any mismatch',
      )
      .requiredOption('--from <path>', 'ceems.db, or the data directory (data.path) holding it')
      .requiredOption('--to <url>', 'libpq URL of the PostgreSQL database (the data.url of backend postgres)')
      .option('--force', 'replace the rows of a target database that is not empty', false)
      .option('--batch-rows <n>', 'rows per INSERT', positiveNumber('batch-rows', 1), 5000)
      .addHelpText(
        'after',
        '\nStop the API server first: rows it writes during the copy would be missed. See docs/postgresql.md.\n' +
          '\nExamples:\n  ceems_tool db migrate --from=/var/lib/ceems_api_server/ceems.db --to="postgres://ceems@db/ceems?sslmode=verify-full&sslrootcert=/etc/ceems/ca.pem"\n',
      )
      .action(async (o: { from: string; to: string; force: boolean; batchRows: number }) => {
        // The API server's schemas and both database clients, loaded by this command only
        const [{ openPg, redactedUrl }, { copySqliteToPostgres, formatChecks, tableMatches }] =
          await Promise.all([import('../../api/db/pg/connect.js'), import('../../api/db/pg/copy.js')]);
        const sql = openPg(o.to, { max: 2 });
        try {
          io.stderr(`copying ${o.from} into ${redactedUrl(o.to)}\n`);
          const checks = await copySqliteToPostgres({
            from: o.from,
            sql,
            force: o.force,
            batchRows: Math.floor(o.batchRows),
            progress: (line) => io.stderr(`${line}\n`),
          });
          io.stderr(`${formatChecks(checks)}\n`);
          if (checks.every(tableMatches)) io.stderr('every table matches\n');
          else {
            io.stderr('MISMATCH: the copy differs from the source (see the table above)\n');
            setCode(1);
          }
        } finally {
          await sql.end({ timeout: 5 });
        }
      }),
  );
  for (const c of [check, config, tsdb, db]) {
    c.copyInheritedSettings(root);
    for (const sub of c.commands) sub.copyInheritedSettings(root);
    root.addCommand(c);
  }
  return root;
}

export async function main(argv: string[], overrides: Partial<Io> = {}): Promise<number> {
  const io = { ...defaultIo(), ...overrides };
  let code = 0;
  const cmd = program(io, (c) => {
    code = c;
  });
  if (argv.length === 0) {
    io.stderr(cmd.helpInformation());
    return 1;
  }
  try {
    await cmd.parseAsync(kingpinBooleans(cmd, argv), { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    io.stderr(`ceems_tool: error: ${(e as Error).message}\n`);
    return 1;
  }
}
