import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

process.env.TZ = 'UTC';

import { configDirs } from '../../../src/cli/cacct/config.js';
import { main } from '../../../src/cli/cacct/main.js';
import { wrapText } from '../../../src/cli/cacct/prettytable.js';
import { fingerprint, formatTimestamp, plainDecimal, stepFor } from '../../../src/cli/cacct/timeseries.js';
import { formatElapsed, parseLocalTime } from '../../../src/cli/cacct/window.js';
import { runProgram } from '../../helpers/process.js';
import {
  apiConfigDir,
  apiFixtures,
  configDir,
  type FakeServer,
  fixture,
  type Handler,
  runCacct,
  startFake,
  suiteFakeApi,
  unitsOnly,
  withFakeApi,
} from './fake-api.js';
import { assertGolden } from './golden.js';

const WINDOW = ['--starttime=2024-05-06', '--endtime=2024-05-07T12:00'];

/** One test per `[golden file, extra flags]`, cacct run over WINDOW with the config in `dir()`. */
function goldenCases(cases: [string, string[]][], dir: () => string): void {
  for (const [name, args] of cases) {
    it(`${args.join(' ') || 'default format'} → ${name}`, async () => {
      const r = await runCacct(main, [...WINDOW, ...args], { configDirs: [dir()] });
      assert.equal(r.stderr, '');
      assert.equal(r.code, 0);
      assertGolden(r.stdout, `cacct/golden/${name}`);
    });
  }
}

describe('cacct prints what the original prints (its documented examples, byte for byte)', () => {
  // The expected files are the original's own e2e outputs (cmd/cacct/testdata/output/e2e-test-cacct-*.txt)
  // for the unit of original-example-units.json, whose user has no usage row (Summary without totals).
  const fake = suiteFakeApi(
    unitsOnly(JSON.parse(fixture('cacct/original-example-units.json')).data),
    'slurm-0',
  );

  const cases: [string, string[]][] = [
    // the original's default set (ours adds state, D-CLI-28)
    [
      'original-default-format.txt',
      [
        '--format=jobid,account,elapsed,cpuusage,cpumemoryusage,hostenergy,hostemissions,gpuusage,gpumemoryusage,gpuenergy,gpuemissions',
      ],
    ],
    ['original-long-format.txt', ['--long']],
    ['original-custom-format.txt', ['--format=jobid,account,cpuusage']],
  ];
  goldenCases(cases, fake.dir);
});

describe('cacct output formats (golden)', () => {
  const fake = suiteFakeApi(apiFixtures, 'slurm-0');
  const dir = () => fake.dir();

  const cases: [string, string[]][] = [
    ['box-default.txt', []],
    ['box-long.txt', ['--long']],
    ['box-human-units.txt', ['--human-units']],
    ['box-custom-format.txt', ['--format=jobid,name,state,hostenergy,hostemissions']],
    ['csv-default.csv', ['--csv']],
    ['csv-long.csv', ['--csv', '--long']],
    ['markdown-default.md', ['--markdown']],
    ['html-default.html', ['--html']],
    ['json-default.json', ['--json']],
  ];
  goldenCases(cases, dir);

  it('box table: energy and emissions with %f, the original titles, keys named only for multi-key maps', async () => {
    const r = await runCacct(main, [...WINDOW, '--format=jobid,cpuusage,hostenergy,hostemissions'], {
      configDirs: [dir()],
    });
    const lines = r.stdout.split('\n');
    assert.match(lines[1]!, /│ HOST ENE │ +HOST EMISSIO +│/);
    assert.match(lines[2]!, /│ RGY\(KWH\) │ +NS\(GMS\) +│/);
    // the sub-header row: blank under the single-key maps (global, total), the keys of the emission map
    const sub = lines.find((l) => l.includes('EMAPS_TOTAL'))!;
    assert.match(sub, /^│ +│ +│ +│ EMAPS_TOTAL │ OWID_TOTAL +│ RTE_TOTAL +│$/);
    assert.ok(!r.stdout.includes('GLOBAL') && !r.stdout.includes('TOTAL │ EMAPS'));
    // %f: six decimals, wrapped at the column's maximum width (8 for energy) as the original wraps them
    assert.match(r.stdout, /│ 0.123457 │ 7.123456 +│ 6.500000 +│ 4.250000 +│/);
    assert.match(r.stdout, /│ 1450.500000 │ 1300.000000 │ 120.750000 │/);
  });

  it('every line of the box table has the same width and the columns line up', async () => {
    const r = await runCacct(main, [...WINDOW, '--long'], { configDirs: [dir()] });
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(new Set(lines.map((l) => [...l].length)).size, 1, r.stdout);
    const bars = (l: string) => [...l].flatMap((c, i) => ('│├┼┤┬┴'.includes(c) ? [i] : []));
    const body = lines.filter((l) => /^│ \d/.test(l));
    assert.ok(body.length >= 3);
    for (const l of body) assert.deepEqual(bars(l), bars(body[0]!));
  });

  it('wraps long values at the field maximum width without losing characters (golden)', async () => {
    const unit = {
      uuid: '5000',
      name: 'preprocessing of the full climate ensemble_run_with_a_very_long_identifier',
      project: 'acc1',
      state: 'CANCELLED by 1001',
      elapsed: '00:05:00',
      total_cpu_energy_usage_kwh: { total: 0.05 },
    };
    await withFakeApi(unitsOnly([unit]), async (d) => {
      const r = await runCacct(main, [...WINDOW, '--format=jobid,name,state,hostenergy'], {
        configDirs: [d],
      });
      assert.equal(r.code, 0, r.stderr);
      assertGolden(r.stdout, 'cacct/golden/box-long-name.txt');
      const nameColumn = r.stdout
        .split('\n')
        .filter((l) => l.startsWith('│'))
        .slice(3, -1) // two title lines and the sub-header before, the Summary after
        .map((l) => l.split('│')[2]!.trim())
        .join(' ');
      assert.equal(nameColumn.replaceAll(' ', ''), unit.name.replaceAll(' ', ''));
    });
  });

  it('prints the Summary row also when nothing matched', async () => {
    await withFakeApi(unitsOnly([]), async (d) => {
      const r = await runCacct(main, WINDOW, { configDirs: [d] });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      assertGolden(r.stdout, 'cacct/golden/box-empty.txt');
      assert.match(r.stdout, /│ Summary │/);
    });
  });

  it('shows the totals of the current user only, first column = number of jobs', async () => {
    const r = await runCacct(main, [...WINDOW, '--csv', '--format=user,account,elapsed,hostenergy'], {
      configDirs: [dir()],
    });
    const lines = r.stdout.trimEnd().split('\n');
    assert.deepEqual(lines.slice(-3), [
      'Summary,,,',
      '2 jobs,acc1,1-03:00:05,2.623457',
      '1 job,acc2,00:12:00,0.000400',
    ]);
  });
});

describe('cacct as a sacct user reads it', () => {
  const units = (ids: string[]) =>
    ids.map((uuid) => ({ uuid, project: 'acc1', username: 'usr1', state: 'COMPLETED' }));

  it('lists running jobs with their state (asks the API for them)', async () => {
    await withFakeApi(apiFixtures, async (d, api) => {
      const r = await runCacct(main, [...WINDOW, '--format=jobid,state'], { configDirs: [d] });
      assert.equal(r.code, 0, r.stderr);
      const req = api.requests.find((q) => q.path === '/api/v1/units')!;
      assert.ok(
        req.query.some(([k]) => k === 'running'),
        'units request lacks running',
      );
      assert.match(r.stdout, /│ 4250 +│ RUNNI │/);
      // with --job the window (and running) is not sent: uuid disables both on the server
      api.requests.length = 0;
      await runCacct(main, [...WINDOW, '--job=4250'], { configDirs: [d] });
      assert.ok(!api.requests[0]!.query.some(([k]) => k === 'running'));
    });
  });

  it('sorts job ids as numbers: 1, 3, 10, 13 (the API returns them as text: 1, 10, 13, 3)', async () => {
    await withFakeApi(unitsOnly(units(['1', '10', '13', '3', 'a-1'])), async (d) => {
      const r = await runCacct(main, [...WINDOW, '--csv', '--format=jobid'], { configDirs: [d] });
      assert.equal(r.stdout, 'Job ID\n1\n3\n10\n13\na-1\nSummary\n');
    });
  });

  it('--job summarises the listed jobs only, with the API server arithmetic (no usage request)', async () => {
    const job = (uuid: string, cpu: number, kwh: number, walltime: number, alloc_cputime: number) => ({
      uuid,
      project: 'acc1',
      username: 'usr1',
      avg_cpu_usage: { global: cpu },
      total_cpu_energy_usage_kwh: { total: kwh },
      total_time_seconds: { walltime, alloc_cputime },
    });
    const data = [job('1', 50, 1.5, 3600, 3600), job('37', 100, 0.25, 1800, 10800)];
    const handler: Handler = (req) =>
      req.path.endsWith('/units')
        ? { status: 200, body: JSON.stringify({ status: 'success', data }) }
        : { status: 500, body: 'usage must not be asked' };
    await withFakeApi(handler, async (d, api) => {
      const r = await runCacct(
        main,
        [...WINDOW, '--job=1,37', '--csv', '--format=jobid,account,elapsed,cpuusage,hostenergy'],
        { configDirs: [d] },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        api.requests.map((q) => q.path),
        ['/api/v1/units'],
      );
      const fields = api.requests[0]!.query.filter(([k]) => k === 'field').map(([, v]) => v);
      assert.ok(['project', 'username', 'total_time_seconds'].every((f) => fields.includes(f)));
      // cpu: (50·3600 + 100·10800) / 14400 = 87.5; energy 1.75 kWh; elapsed 1 h 30 min of walltime
      assert.equal(r.stdout.trimEnd().split('\n').at(-1), '2 jobs,acc1,01:30:00,87.50,1.750000');
    });
  });
});

describe('cacct flags (kingpin syntax, like the original)', () => {
  const fake = suiteFakeApi(apiFixtures);
  const csvOf = async (args: string[]) => {
    const r = await runCacct(main, [...WINDOW, '--format=jobid', ...args], { configDirs: [fake.dir()] });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.startsWith('Job ID\n');
  };

  it('--flag, --flag=true, --no-flag, --flag=false; the last one wins', async () => {
    assert.equal(await csvOf(['--csv']), true);
    assert.equal(await csvOf(['--csv=true']), true);
    assert.equal(await csvOf(['--csv', '--no-csv']), false);
    assert.equal(await csvOf(['--csv=false']), false);
    assert.equal(await csvOf(['--no-csv', '--csv']), true);
  });

  it('values as --flag=value or --flag value', async () => {
    const a = await runCacct(main, ['--starttime', '2024-05-06', '--endtime', '2024-05-07T12:00', '--csv'], {
      configDirs: [fake.dir()],
    });
    const b = await runCacct(main, [...WINDOW, '--csv'], { configDirs: [fake.dir()] });
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout, b.stdout);
  });

  it('-h is --help, --help-long and --help-man work; a bool flag followed by a value is an unexpected argument (as kingpin)', async () => {
    const h = await runCacct(main, ['-h'], { configDirs: [] });
    assert.equal(h.code, 0);
    assert.match(h.stdout, /^usage: cacct \[<flags>\]/);
    assert.match(h.stdout, /--\[no-\]csv/);
    // the advertised --help-long (same usage) and --help-man (roff) work
    const long = await runCacct(main, ['--help-long'], { configDirs: [] });
    assert.equal(long.stdout, h.stdout);
    const man = await runCacct(main, ['--help-man'], { configDirs: [] });
    assert.equal(man.code, 0);
    assert.match(man.stdout, /^\.TH cacct 1 /m);
    assert.match(man.stdout, /\\-\\-human\\-units/);
    const r = await runCacct(main, [...WINDOW, '--csv', 'false'], { configDirs: [fake.dir()] });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "cacct: error: failed to parse CLI flags: unexpected argument 'false'\n");
  });
});

describe('cacct requests', () => {
  let api: FakeServer;
  let dir: string;
  before(async () => {
    api = await startFake(apiFixtures);
    dir = configDir(
      `ceems_api_server:\n  cluster_id: slurm-0\n  user_header_name: X-Remote-User\n  web:\n    url: ${api.url}/prefix\n    basic_auth:\n      username: cacct\n      password: s3cret\n`,
    );
  });
  after(() => api.close());

  it('sends the window in Unix seconds, the API fields of the format, the login name and basic auth', async () => {
    api.requests.length = 0;
    const r = await runCacct(main, [...WINDOW, '--format=jobid,hostenergy', '--account=acc1,acc2'], {
      configDirs: [dir],
    });
    assert.equal(r.code, 0, r.stderr);
    const units = api.requests.find((q) => q.path === '/prefix/api/v1/units')!;
    assert.deepEqual(units.query, [
      ['cluster_id', 'slurm-0'],
      ['from', '1714953600'],
      ['to', '1715083200'],
      ['field', 'uuid'],
      ['field', 'total_cpu_energy_usage_kwh'],
      ['field', 'started_at_ts'],
      ['field', 'ended_at_ts'],
      ['project', 'acc1'],
      ['project', 'acc2'],
      ['running', 'true'],
    ]);
    assert.equal(units.headers['x-remote-user'], 'usr1');
    assert.equal(units.headers.authorization, `Basic ${Buffer.from('cacct:s3cret').toString('base64')}`);
    assert.equal(units.headers['accept-encoding'], 'gzip');
    const usage = api.requests.find((q) => q.path === '/prefix/api/v1/usage/current')!;
    assert.deepEqual(
      usage.query.filter(([k]) => k !== 'field'),
      units.query.filter(([k]) => k !== 'field' && k !== 'running'),
    );
    const fields = usage.query.filter(([k]) => k === 'field').map(([, v]) => v);
    assert.deepEqual(fields, [
      'uuid',
      'total_cpu_energy_usage_kwh',
      'started_at_ts',
      'ended_at_ts',
      'username',
      'num_units',
    ]);
  });

  it('--job: the uuids and the fields of their Summary, no usage request', async () => {
    api.requests.length = 0;
    const r = await runCacct(main, [...WINDOW, '--format=jobid,account,hostenergy', '--job=1,2'], {
      configDirs: [dir],
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      api.requests.map((q) => q.path),
      ['/prefix/api/v1/units'],
    );
    assert.deepEqual(api.requests[0]!.query.slice(3), [
      ['field', 'uuid'],
      ['field', 'project'],
      ['field', 'total_cpu_energy_usage_kwh'],
      ['field', 'started_at_ts'],
      ['field', 'ended_at_ts'],
      ['field', 'username'],
      ['field', 'total_time_seconds'],
      ['uuid', '1'],
      ['uuid', '2'],
    ]);
  });

  it('asks for total_time_seconds in the usage request only when elapsed is shown', async () => {
    api.requests.length = 0;
    await runCacct(main, [...WINDOW, '--format=jobid,elapsed'], { configDirs: [dir] });
    const usage = api.requests.find((q) => q.path.endsWith('/usage/current'))!;
    assert.ok(usage.query.some(([k, v]) => k === 'field' && v === 'total_time_seconds'));
  });

  it('--user with other users uses the admin endpoints and shows their totals', async () => {
    api.requests.length = 0;
    const r = await runCacct(main, [...WINDOW, '--user=usr3', '--csv', '--format=jobid,user,hostenergy'], {
      configDirs: [dir],
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(api.requests.map((q) => q.path).sort(), [
      '/prefix/api/v1/units/admin',
      '/prefix/api/v1/usage/current/admin',
    ]);
    assert.ok(api.requests.every((q) => q.query.some(([k, v]) => k === 'user' && v === 'usr3')));
    assert.match(r.stdout, /\n5 jobs,usr3,1\.000000\n/);
  });

  it('--user equal to the caller alone keeps the normal endpoints (kept quirk)', async () => {
    api.requests.length = 0;
    await runCacct(main, [...WINDOW, '--user=usr1'], { configDirs: [dir] });
    assert.deepEqual(api.requests.map((q) => q.path).sort(), [
      '/prefix/api/v1/units',
      '/prefix/api/v1/usage/current',
    ]);
    assert.ok(api.requests.every((q) => !q.query.some(([k]) => k === 'user')));
  });
});

describe('cacct errors', () => {
  const withServer = async (
    handler: Parameters<typeof startFake>[0],
    args: string[],
  ): Promise<{ code: number; stdout: string; stderr: string }> => {
    const api = await startFake(handler);
    try {
      const dir = apiConfigDir(api.url);
      return await runCacct(main, [...WINDOW, ...args], { configDirs: [dir] });
    } finally {
      await api.close();
    }
  };

  it('HTTP 403 → the forbidden message, exit 1', async () => {
    const r = await withServer(
      () => ({
        status: 403,
        body: '{"status":"error","data":null,"errorType":"forbidden","error":"current user does not have admin privileges"}',
      }),
      ['--user=usr3'],
    );
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      'forbidden. It is likely that the user is attempting to view statistics of others\n',
    );
  });

  it('status "error" → the unknown-error message with the server detail, exit 1', async () => {
    const r = await withServer(
      () => ({
        status: 400,
        body: '{"status":"error","data":null,"errorType":"bad_data","error":"maximum query window exceeded"}',
      }),
      [],
    );
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      'server did not return any data due to unknown error\n(HTTP 400: bad_data: maximum query window exceeded)\n',
    );
  });

  it('a non-JSON answer names the server and the body', async () => {
    const r = await withServer(() => ({ status: 502, body: '<html>Bad Gateway</html>' }), []);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^cacct: error: the CEEMS API server did not return JSON: "<html>Bad Gateway<\/html>" \(HTTP 502/,
    );
  });

  it('decodes gzip-encoded answers', async () => {
    const r = await withServer((req) => ({ ...apiFixtures(req), gzip: true }), ['--csv', '--format=jobid']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Job ID\n4242\n4243\n4250\nSummary\n2 jobs\n1 job\n$/);
  });

  it('an unreachable API server is named with the connection error', async () => {
    const api = await startFake(apiFixtures);
    const url = api.url;
    await api.close();
    const dir = apiConfigDir(url);
    const r = await runCacct(main, WINDOW, { configDirs: [dir] });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`^cacct: error: cannot reach the CEEMS API server at ${url}/api/v1/\\S+: ECONNREFUSED\\n$`),
    );
  });

  const dir = configDir('ceems_api_server:\n  web:\n    url: http://127.0.0.1:9\n');
  const usageErrors: [string, string[], RegExp][] = [
    [
      'bad start time',
      ['--starttime=2024-13-01'],
      /^cacct: error: invalid --starttime '2024-13-01': expected YYYY-MM-DD/,
    ],
    [
      'bad end time',
      ['--starttime=2024-05-01', '--endtime=yesterday'],
      /^cacct: error: invalid --endtime 'yesterday'/,
    ],
    [
      'start after end',
      ['--starttime=2024-05-02', '--endtime=2024-05-01'],
      /^cacct: error: --starttime \(2024-05-02T00:00:00\) must be before --endtime \(2024-05-01T00:00:00\)/,
    ],
    ['unknown field', ['--format=jobid,power'], /^cacct: error: unknown field key\(s\) in --format: 'power'/],
    [
      '--ts without --job',
      ['--ts'],
      /^cacct: error: explicit job IDs must be passed using --job when --ts is enabled\n$/,
    ],
    [
      'two output formats',
      ['--csv', '--json'],
      /^cacct: error: failed to parse CLI flags: --csv cannot be used with --json\n$/,
    ],
    ['unknown flag', ['--bogus'], /^cacct: error: failed to parse CLI flags: unknown long flag '--bogus'\n$/],
  ];
  for (const [what, args, re] of usageErrors) {
    it(`${what} → clear error, exit 1`, async () => {
      const r = await runCacct(main, args, { configDirs: [dir] });
      assert.equal(r.code, 1);
      assert.match(r.stderr, re);
    });
  }

  it('no config file → error listing where it looked', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'cacct-none-'));
    const r = await runCacct(main, WINDOW, { configDirs: [empty] });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(
        `^cacct: error: no configuration file found: looked for config.yml, config.yaml, cacct.yml, cacct.yaml in ${empty}`,
      ),
    );
  });

  it('invalid config → error naming the key', async () => {
    const bad = configDir(
      'ceems_api_server:\n  web:\n    url: not a url\ntsdb:\n  queries:\n    cpu: "no placeholder"\n',
    );
    const r = await runCacct(main, WINDOW, { configDirs: [bad] });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ceems_api_server\.web\.url: .*\(got "not a url"\)/);
    assert.match(r.stderr, /tsdb\.queries\.cpu: must contain exactly one %s/);
  });
});

describe('cacct --ts', () => {
  let api: FakeServer;
  let tsdb: FakeServer;
  before(async () => {
    api = await startFake(apiFixtures);
    tsdb = await startFake((req) => {
      if (req.path === '/api/v1/status/flags')
        return { status: 200, body: '{"status":"success","data":{"query.max-samples":"50000000"}}' };
      const q = new Map(req.query).get('query')!;
      const uuid = /uuid=~"([^"]+)"/.exec(q)?.[1];
      return {
        status: 200,
        body: JSON.stringify({
          status: 'success',
          data: {
            resultType: 'matrix',
            result: [
              {
                metric: {
                  __name__: 'uuid:ceems_cpu_usage:ratio_irate',
                  uuid,
                  instance: 'cn01:9010',
                  job: 'ceems',
                },
                values: [
                  [1714982400, '12.5'],
                  [1714982410.5, '1e-07'],
                ],
              },
              // a series that does not name its unit: the original does not save it
              { metric: { __name__: 'up', instance: 'cn01:9010' }, values: [[1714982400, '1']] },
            ],
          },
        }),
      };
    });
  });
  after(async () => {
    await api.close();
    await tsdb.close();
  });

  it('saves one CSV per series and metadata.json, through the LB with user and cluster headers', async () => {
    const dir = configDir(
      `ceems_api_server:\n  cluster_id: slurm-0\n  web:\n    url: ${api.url}\ntsdb:\n  web:\n    url: ${tsdb.url}\n  queries:\n    cpu_usage: 'uuid:ceems_cpu_usage:ratio_irate{uuid=~"%s"}'\n`,
    );
    const out = join(mkdtempSync(join(tmpdir(), 'cacct-ts-')), 'out');
    const r = await runCacct(main, [...WINDOW, '--job=4242,4243', '--ts', `--ts.out-dir=${out}`, '--csv'], {
      configDirs: [dir],
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, `time series data saved to directory ${out}\n`);
    const ranges = tsdb.requests.filter((q) => q.path === '/api/v1/query_range');
    // the fixture returns three units; the running one (no end) is queried up to now
    assert.equal(ranges.length, 3);
    const first = new Map(ranges[0]!.query);
    assert.equal(first.get('query'), 'uuid:ceems_cpu_usage:ratio_irate{uuid=~"4242"}');
    assert.equal(first.get('start'), '1714982400');
    assert.equal(first.get('end'), '1714986000');
    assert.equal(first.get('step'), '10s');
    assert.equal(ranges[0]!.headers['x-ceems-cluster-id'], 'slurm-0');
    assert.equal(ranges[0]!.headers['x-grafana-user'], 'usr1');
    const meta = JSON.parse(readFileSync(join(out, 'metadata.json'), 'utf8'));
    assert.equal(meta.length, 3);
    const labels = {
      __name__: 'uuid:ceems_cpu_usage:ratio_irate',
      instance: 'cn01:9010',
      job: 'ceems',
      uuid: '4242',
    };
    assert.deepEqual(meta[0], { fingerprint: fingerprint(labels), labels });
    const metaText = readFileSync(join(out, 'metadata.json'), 'utf8');
    assert.match(
      metaText,
      /^\[\n\t\{\n\t\t"fingerprint": "[0-9a-f]{16}",\n\t\t"labels": \{\n\t\t\t"__name__"/,
    );
    // Go's json.Encoder ends with a newline; files only for the user, as the original creates them
    assert.ok(metaText.endsWith('\n\t}\n]\n'), JSON.stringify(metaText.slice(-10)));
    assert.equal(statSync(join(out, 'metadata.json')).mode & 0o777, 0o600);
    assert.equal(statSync(out).mode & 0o777, 0o700);
    assert.equal(
      readFileSync(join(out, `${meta[0].fingerprint}.csv`), 'utf8'),
      'timestamp,value\n1714982400,12.5\n1714982410.5,0.0000001\n',
    );
    assert.equal(readdirSync(out).length, 4);
  });

  it('without tsdb.queries: "time series data not available", no files', async () => {
    const dir = apiConfigDir(api.url);
    const out = join(mkdtempSync(join(tmpdir(), 'cacct-ts-')), 'out');
    const r = await runCacct(main, [...WINDOW, '--job=4242', '--ts', `--ts.out-dir=${out}`, '--csv'], {
      configDirs: [dir],
    });
    assert.equal(r.code, 0);
    assert.equal(r.stderr, 'time series data not available\n');
    assert.equal(existsSync(out), false);
  });
});

describe('cacct helpers', () => {
  it('fingerprint = Prometheus LabelSet fingerprint (FNV-1a 64)', () => {
    // value from prometheus/common model/signature_test.go
    const fp = fingerprint({ name: 'garland, briggs', fear: 'love is not enough' });
    assert.equal(BigInt(`0x${fp}`), 5799056148416392346n);
    assert.equal(fingerprint({}), 'cbf29ce484222325');
  });

  it('numbers in plain decimal form, timestamps to the millisecond', () => {
    assert.equal(plainDecimal(1e-7), '0.0000001');
    assert.equal(plainDecimal(1.5e22), '15000000000000000000000');
    assert.equal(plainDecimal(-2.5e-9), '-0.0000000025');
    assert.equal(plainDecimal(Number.NaN), 'NaN');
    assert.equal(plainDecimal(Number.POSITIVE_INFINITY), '+Inf');
    // Go strconv.FormatFloat(v, 'f', -1, 64), which the original's CSV values are written with
    assert.equal(plainDecimal(Number.NEGATIVE_INFINITY), '-Inf');
    assert.equal(plainDecimal(-0), '-0');
    assert.equal(plainDecimal(1e21), '1000000000000000000000');
    assert.equal(plainDecimal(123456789.123), '123456789.123');
    assert.equal(plainDecimal(0.1 + 0.2), '0.30000000000000004');
    assert.equal(formatTimestamp(1714982410.12345), '1714982410.123');
  });

  it('step grows beyond 10 s to stay under 11000 points and the sample limit', () => {
    assert.equal(stepFor(3600, 50e6), 10);
    assert.equal(stepFor(30 * 86400, 50e6), Math.ceil((30 * 86400) / 11000));
    assert.equal(stepFor(10_000, 100), 100);
  });

  it('times are local wall time [DIFF D-CLI-2]', () => {
    const tz = process.env.TZ;
    try {
      process.env.TZ = 'Europe/Paris';
      assert.equal(parseLocalTime('2024-05-06T10:00', 'starttime').getTime() / 1000, 1714982400);
      assert.equal(parseLocalTime('2024-05-06', 'starttime').toISOString(), '2024-05-05T22:00:00.000Z');
      assert.throws(() => parseLocalTime('2024-02-30', 'starttime'), /invalid --starttime '2024-02-30'/);
      assert.throws(() => parseLocalTime('2024-05-06T24:00', 'endtime'), /invalid --endtime/);
    } finally {
      process.env.TZ = tz;
    }
  });

  it('wraps text as go-pretty text.WrapText: hard, runes per line, words joined by one space', () => {
    // the original's STATE column (width 5) and a 6-wide header
    assert.equal(wrapText('CANCELLED by 1001', 5), 'CANCE\nLLED \nby 10\n01');
    assert.equal(wrapText('CPU Mem. Usage(%)', 6), 'CPU Me\nm. Usa\nge(%)');
    assert.equal(wrapText('train a model', 7), 'train a\nmodel');
    assert.equal(wrapText('ab  cd', 6), 'ab  cd');
    assert.equal(wrapText('ab   cdefgh', 6), 'ab cde\nfgh');
    assert.equal(wrapText('', 4), '');
  });

  it('elapsed as [D-]HH:MM:SS', () => {
    assert.equal(formatElapsed(97205), '1-03:00:05');
    assert.equal(formatElapsed(59), '00:00:59');
  });

  it('config lookup: /etc/ceems, then $XDG_CONFIG_HOME/ceems or ~/.config/ceems', () => {
    assert.deepEqual(configDirs({ XDG_CONFIG_HOME: '/x' }), ['/etc/ceems', '/x/ceems']);
    assert.match(configDirs({})[1]!, /\/\.config\/ceems$/);
  });

  it('--helpformat lists the 18 field keys of the original and the 4 provenance keys with their titles', async () => {
    const r = await runCacct(main, ['--helpformat'], { configDirs: [] });
    assert.equal(r.code, 0);
    assertGolden(r.stdout, 'cacct/golden/helpformat.txt');
  });
});

describe('bin/cacct', () => {
  it('--help documents flags, examples and exit codes', async () => {
    const r = await runProgram('cacct', ['--help']);
    assert.equal(r.code, 0);
    for (const s of [
      '--starttime=STARTTIME',
      '--ts.out-dir=DIR',
      '--[no-]human-units',
      'Examples:',
      'Exit status:',
      '--helpformat',
    ]) {
      assert.ok(r.stdout.includes(s), `--help lacks ${s}`);
    }
  });

  it('runs as the login name of the calling process [DIFF D-CLI-1]', async () => {
    const api = await startFake(apiFixtures);
    try {
      const xdg = mkdtempSync(join(tmpdir(), 'cacct-xdg-'));
      const cfg = apiConfigDir(api.url);
      cpSync(cfg, join(xdg, 'ceems'), { recursive: true });
      const r = await runProgram('cacct', [...WINDOW, '--csv'], { env: { XDG_CONFIG_HOME: xdg } });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(api.requests[0]!.headers['x-grafana-user'], userInfo().username);
      // the caller is not usr1, so the fixture's totals are not shown: header, 3 unit rows, Summary
      const lines = r.stdout.trimEnd().split('\n');
      assert.equal(lines.length, 1 + JSON.parse(fixture('cacct/units.json')).data.length + 1);
      assert.equal(lines.at(-1), 'Summary,,,,,,,,,,,,,,,');
    } finally {
      await api.close();
    }
  });
});
