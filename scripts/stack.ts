// `npm start`: the whole CEEMS stack on this machine, on loopback, with embedded defaults:
// exporter → Prometheus (with generated recording rules) → API server (SQLite) → load balancer.
// When no SLURM runs here, it first brings up the real SLURM testbed of ../shared/testbed and submits demo
// jobs, so that units with energy and emissions show up within minutes (`--no-testbed`: node metrics
// only). Ctrl-C stops everything it started, the testbed included.

import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const noTestbed = args.includes('--no-testbed');
for (const a of args)
  if (a !== '--no-testbed' && a !== '--with-testbed') {
    process.stderr.write(`[stack] error: unknown argument ${a} (known: --no-testbed)\n`);
    process.exit(2);
  }
const DATA = resolve(ROOT, process.env.CEEMS_STACK_DIR ?? '.stack');
const TESTBED = resolve(process.env.CEEMS_TESTBED_DIR ?? join(ROOT, '..', 'shared', 'testbed'));
const PORTS = { exporter: 9010, api: 9020, lb: 9030, prometheus: 9090, web: 9021 };
// Grid whose emission factor (static OWID/Ember data) turns energy into emissions.
const COUNTRY = process.env.CEEMS_STACK_COUNTRY_CODE ?? 'FR';
const children: { name: string; proc: ChildProcess }[] = [];
const demoJobs: string[] = [];
/** Set when this run brought the SLURM testbed up: Ctrl-C takes it down again. */
let testbedStarted = false;

function say(msg: string): void {
  process.stdout.write(`[stack] ${msg}\n`);
}

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Takes the `export NAME=value` lines of a testbed script's output (or its env.sh) into our environment. */
function applyExports(text: string): void {
  for (const m of text.matchAll(/^export ([A-Z0-9_]+)=(.*)$/gm))
    process.env[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1');
}

function start(name: string, cmd: string, cmdArgs: string[], logFile: string): ChildProcess {
  const proc = spawn(cmd, cmdArgs, { stdio: ['ignore', 'ignore', 'pipe'], env: process.env });
  const chunks: string[] = [];
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (d: string) => {
    chunks.push(d);
    writeFileSync(logFile, chunks.join(''));
  });
  proc.once('exit', (code, signal) => {
    if (!stopping) say(`${name} exited (${signal ?? code}); see ${logFile}`);
  });
  children.push({ name, proc });
  return proc;
}

async function waitHttp(url: string, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.status < 500) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`${what} did not answer at ${url} within ${timeoutMs / 1000} s`);
}

let stopping = false;
async function stopAll(code: number): Promise<never> {
  stopping = true;
  if (demoJobs.length > 0) spawnSync('scancel', demoJobs, { stdio: 'ignore', timeout: 10_000 });
  for (const { proc } of [...children].reverse()) if (proc.exitCode === null) proc.kill('SIGTERM');
  await Promise.all(
    children.map(({ proc }) =>
      proc.exitCode !== null ? undefined : new Promise((r) => proc.once('exit', r)),
    ),
  );
  if (testbedStarted) {
    say('stopping the SLURM testbed this run started');
    const down = spawnSync('bash', [join(TESTBED, 'slurm', 'down.sh')], {
      stdio: 'inherit',
      timeout: 120_000,
    });
    if (down.status !== 0)
      say(`the SLURM testbed did not stop cleanly: run 'bash ${join(TESTBED, 'slurm', 'down.sh')}'`);
  }
  say('stopped');
  process.exit(code);
}

function slurmPresent(): boolean {
  if (!has('sacct') || !has('sinfo')) return false;
  return spawnSync('sinfo', ['-h'], { stdio: 'ignore', timeout: 5000 }).status === 0;
}

function slurmCgroupsPresent(): boolean {
  for (const ctrl of ['cpuacct', 'cpu,cpuacct', '']) {
    const dir = join('/sys/fs/cgroup', ctrl);
    try {
      if (readdirSync(dir).some((d) => d === 'slurm' || d.startsWith('slurm_') || d === 'system.slice'))
        return true;
    } catch {
      // controller not mounted
    }
  }
  return false;
}

function submitDemoJobs(): void {
  const jobdir = process.env.CEEMS_TESTBED_SLURM_JOBDIR ?? '/tmp';
  const jobs: [string, string, string][] = [
    ['usr1', 'acc1', 'stress-ng --cpu 1 --timeout 600s'],
    ['usr2', 'acc2', "python3 -c 'import time; b = bytearray(200 * 1024 * 1024); time.sleep(600)'"],
  ];
  for (const [user, account, cmd] of jobs) {
    const out = execFileSync(
      'runuser',
      [
        '-u',
        user,
        '--',
        'sbatch',
        '-A',
        account,
        '-p',
        'debug',
        '--mem=512M',
        '--chdir',
        jobdir, // stress-ng needs a writable working directory
        '-o',
        `${jobdir}/%j.out`,
        '--parsable',
        '--wrap',
        cmd,
      ],
      { encoding: 'utf8' },
    );
    demoJobs.push(out.trim());
    say(`submitted demo job ${out.trim()} as ${user} (${account})`);
  }
}

function ensurePrometheus(): string {
  if (!has('prometheus')) {
    if (userInfo().uid !== 0 || !has('apt-get'))
      throw new Error('prometheus is not installed; install the Debian/Ubuntu package "prometheus"');
    say('installing Prometheus from the OS packages (apt-get install prometheus)');
    // policy-rc.d 101: the package must not start its own system service on :9090
    const policy = '/usr/sbin/policy-rc.d';
    const ownPolicy = !existsSync(policy);
    if (ownPolicy) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
    // wait for another apt/dpkg run (unattended upgrades, a testbed script) instead of failing at once
    const lock = ['-o', 'DPkg::Lock::Timeout=300'];
    try {
      execFileSync('apt-get', [...lock, 'update', '-qq'], { stdio: 'inherit' });
      execFileSync('apt-get', [...lock, 'install', '-y', '-qq', '--no-install-recommends', 'prometheus'], {
        stdio: 'inherit',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    } finally {
      if (ownPolicy) execFileSync('rm', ['-f', policy]);
    }
  }
  return 'prometheus';
}

async function main(): Promise<void> {
  process.once('SIGINT', () => void stopAll(0));
  process.once('SIGTERM', () => void stopAll(0));
  mkdirSync(join(DATA, 'logs'), { recursive: true });
  if (!existsSync(join(ROOT, 'dist', 'exporter', 'main.js')))
    execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });

  // The testbed's demo jobs are submitted only on the testbed, never on a site's real SLURM cluster.
  let onTestbed = false;
  const testbedEnv = join(process.env.CEEMS_TESTBED_ROOT ?? '/tmp/ceems-testbed', 'slurm', 'env.sh');
  if (noTestbed) {
    say('--no-testbed: the SLURM testbed is not started');
  } else if (slurmPresent()) {
    if (existsSync(testbedEnv)) {
      applyExports(readFileSync(testbedEnv, 'utf8'));
      onTestbed = true;
      say('the SLURM testbed already runs here: using it (left running when this stops)');
    }
  } else if (!existsSync(join(TESTBED, 'slurm', 'up.sh'))) {
    say(`no SLURM here and no testbed at ${TESTBED} (set CEEMS_TESTBED_DIR): node metrics only`);
  } else if (userInfo().uid !== 0) {
    say('no SLURM here; the SLURM testbed needs root (sudo npm start) or --no-testbed: node metrics only');
  } else {
    say('no SLURM on this machine: bringing up the SLURM testbed (real slurmctld, slurmd, slurmdbd; about');
    say('a minute on a fresh machine; --no-testbed skips it). Ctrl-C takes it down again.');
    testbedStarted = true;
    applyExports(
      execFileSync('bash', [join(TESTBED, 'slurm', 'up.sh')], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    );
    onTestbed = true;
  }
  if (onTestbed) submitDemoJobs();
  const slurm = slurmPresent() && slurmCgroupsPresent();
  say(
    slurm
      ? 'SLURM found: the exporter watches jobs and the API server fetches them'
      : 'no SLURM on this machine: node metrics only',
  );
  say(`emissions use the grid of ${COUNTRY} (set CEEMS_STACK_COUNTRY_CODE to change it)`);

  // exporter
  const collectors = [
    '--collector.cpu',
    '--collector.meminfo',
    '--collector.emissions',
    '--collector.emissions.provider=owid',
  ];
  // Only collectors whose source exists: a missing one would fail every scrape.
  const rapl = existsSync('/sys/class/powercap/intel-rapl');
  if (rapl) collectors.push('--collector.rapl');
  else if (!existsSync('/sys/class/hwmon'))
    collectors.push('--collector.estimated_power', '--collector.estimated_power.coefficients=aws');
  say(
    rapl
      ? 'power from RAPL (/sys/class/powercap)'
      : 'no RAPL here: the rapl collector is off and power is estimated from CPU usage (source="estimated")',
  );
  if (slurm) collectors.push('--collector.slurm');
  start(
    'exporter',
    process.execPath,
    [join(ROOT, 'bin', 'ceems_exporter'), `--web.listen-address=127.0.0.1:${PORTS.exporter}`, ...collectors],
    join(DATA, 'logs', 'exporter.log'),
  );
  await waitHttp(`http://127.0.0.1:${PORTS.exporter}/health`, 'ceems_exporter');

  // Prometheus, then recording rules generated from what it actually scrapes
  const prom = ensurePrometheus();
  const rulesDir = join(DATA, 'rules');
  mkdirSync(rulesDir, { recursive: true });
  const promConfig = join(DATA, 'prometheus.yml');
  writeFileSync(
    promConfig,
    `global:\n  scrape_interval: 5s\n  evaluation_interval: 5s\nrule_files:\n  - ${rulesDir}/*.rules\nscrape_configs:\n  - job_name: ceems\n    static_configs:\n      - targets: ['127.0.0.1:${PORTS.exporter}']\n`,
  );
  start(
    prom,
    prom,
    [
      `--config.file=${promConfig}`,
      `--storage.tsdb.path=${join(DATA, 'prometheus')}`,
      `--web.listen-address=127.0.0.1:${PORTS.prometheus}`,
      '--web.enable-lifecycle',
    ],
    join(DATA, 'logs', 'prometheus.log'),
  );
  await waitHttp(`http://127.0.0.1:${PORTS.prometheus}/-/ready`, 'Prometheus');
  // Rules need per-unit series: until a first job runs there are none, so retry in the background for a
  // while; without a resource manager there never will be, so say so once and do not try.
  const rulesDeadline = Date.now() + 15 * 60_000;
  const generateRules = async (): Promise<void> => {
    const r = spawnSync(
      process.execPath,
      [
        join(ROOT, 'bin', 'ceems_tool'),
        'tsdb',
        'create-recording-rules',
        `--url=http://127.0.0.1:${PORTS.prometheus}`,
        `--output-dir=${rulesDir}`,
        '--eval-interval=5s',
        `--country-code=${COUNTRY}`,
      ],
      { encoding: 'utf8' },
    );
    if (r.status === 0) {
      await fetch(`http://127.0.0.1:${PORTS.prometheus}/-/reload`, { method: 'POST' });
      say(`recording rules generated in ${rulesDir} and loaded by Prometheus`);
      return;
    }
    const why = r.stderr.trim().split('\n').pop();
    if (Date.now() > rulesDeadline) {
      say(`recording rules still not generated after 15 min, giving up (${why}); run ceems_tool by hand`);
      return;
    }
    if (!rulesPending) say(`recording rules not generated yet (retrying every 30 s): ${why}`);
    rulesPending = true;
    setTimeout(() => void generateRules(), 30_000).unref();
  };
  let rulesPending = false;
  if (slurm) {
    // The rule generator needs per-unit series: wait for a job in the exporter's scrape (the demo jobs start
    // within seconds on the testbed), then for one Prometheus scrape of it.
    if (onTestbed) await waitUnitSeries(90_000);
    await new Promise((r) => setTimeout(r, 6000));
    await generateRules();
  } else {
    say('no resource manager, hence no per-unit series: recording rules are not generated');
  }

  // API server and load balancer share one config file
  const cluster = slurm ? (process.env.CEEMS_TESTBED_SLURM_CLUSTER ?? 'slurm-0') : 'default';
  const admin = userInfo().username;
  const config = join(DATA, 'ceems.yml');
  writeFileSync(
    config,
    [
      'ceems_api_server:',
      '  data:',
      `    path: ${join(DATA, 'data')}`,
      '    update_interval: 30s', // first energy figures within the demo's first minutes
      '    retention_period: 30d',
      '  admin:',
      `    users: [${admin}]`,
      '  web:',
      `    url: http://127.0.0.1:${PORTS.api}`,
      ...(slurm
        ? [
            'clusters:',
            `  - id: ${cluster}`,
            '    manager: slurm',
            '    updaters: [tsdb-0]',
            '    cli:',
            `      path: ${dirnameOf('sacct')}`,
            ...(process.env.SLURM_CONF
              ? ['      environment_variables:', `        SLURM_CONF: ${process.env.SLURM_CONF}`]
              : []),
            'updaters:',
            '  - id: tsdb-0',
            '    updater: tsdb',
            '    web:',
            `      url: http://127.0.0.1:${PORTS.prometheus}`,
          ]
        : []),
      'ceems_lb:',
      '  backends:',
      `    - id: ${cluster}`,
      '      tsdb:',
      `        - web: {url: 'http://127.0.0.1:${PORTS.prometheus}'}`,
      '',
    ].join('\n'),
  );
  start(
    'api',
    process.execPath,
    [
      join(ROOT, 'bin', 'ceems_api_server'),
      `--config.file=${config}`,
      `--web.listen-address=127.0.0.1:${PORTS.api}`,
      `--web.ui.lb-url=http://127.0.0.1:${PORTS.lb}`, // the web view's charts
      '--security.run-as-user=root',
    ],
    join(DATA, 'logs', 'api.log'),
  );
  await waitHttp(`http://127.0.0.1:${PORTS.api}/health`, 'ceems_api_server');
  // With SLURM the LB checks ownership in the API server's DB, and refuses cluster ids that have no units
  // yet: wait for the first collection. Without a resource manager there are no units to protect, so it
  // only routes (its own config without the API server section).
  let lbConfig = config;
  if (!slurm) {
    lbConfig = join(DATA, 'lb.yml');
    writeFileSync(
      lbConfig,
      `ceems_lb:\n  backends:\n    - id: ${cluster}\n      tsdb:\n        - web: {url: 'http://127.0.0.1:${PORTS.prometheus}'}\n`,
    );
  }
  const lbUp = !slurm || (await waitCluster(cluster, admin));
  if (lbUp) {
    start(
      'lb',
      process.execPath,
      [
        join(ROOT, 'bin', 'ceems_lb'),
        `--config.file=${lbConfig}`,
        `--web.listen-address=127.0.0.1:${PORTS.lb}`,
      ],
      join(DATA, 'logs', 'lb.log'),
    );
    await waitHttp(`http://127.0.0.1:${PORTS.lb}/health`, 'ceems_lb');
  } else {
    say(
      `the API server has no units of cluster '${cluster}' yet: load balancer not started (run a job, then restart)`,
    );
  }
  // cacct reads <XDG_CONFIG_HOME>/ceems/config.yml
  mkdirSync(join(DATA, 'cacct', 'ceems'), { recursive: true });
  writeFileSync(
    join(DATA, 'cacct', 'ceems', 'config.yml'),
    `ceems_api_server:\n  cluster_id: ${cluster}\n  web: {url: 'http://127.0.0.1:${PORTS.api}'}\ntsdb:\n  web: {url: 'http://127.0.0.1:${PORTS.lb}'}\n`,
  );

  const u = (p: number) => `http://127.0.0.1:${p}`;
  const graph = `${u(PORTS.prometheus)}/graph?g0.expr=${encodeURIComponent('uuid:ceems_host_power_watts:pue')}&g0.tab=0&g0.range_input=15m`;
  const asUser = onTestbed ? 'usr1' : admin;
  say('the stack is up (logs and data in .stack/; Ctrl-C stops everything):');
  say(`  exporter    ${u(PORTS.exporter)}/metrics`);
  say(`              curl -s ${u(PORTS.exporter)}/metrics | grep ceems_compute_unit_cpu_user_seconds_total`);
  say(`  Prometheus  per-unit power: ${graph}`);
  say(`  API server  Swagger UI: ${u(PORTS.api)}/swagger/`);
  say(
    `              running units: curl -s -H 'X-Grafana-User: ${admin}' '${u(PORTS.api)}/api/v1/units/admin?running=true'`,
  );
  say(
    `              one user's units: curl -s -H 'X-Grafana-User: ${asUser}' '${u(PORTS.api)}/api/v1/units?running=true'`,
  );
  if (lbUp)
    say(
      `  LB          curl -s -H 'X-Grafana-User: ${admin}' -H 'X-Ceems-Cluster-Id: ${cluster}' '${u(PORTS.lb)}/api/v1/query?query=up'`,
    );
  // The web view identifies users as the API does (user header or basic auth): a local proxy per demo user
  // plays the part of the login proxy, so that a browser here can open it as that user.
  const viewers = [asUser, ...(onTestbed ? ['usr2'] : []), admin].filter((x, i, a) => a.indexOf(x) === i);
  for (const [i, user] of viewers.entries()) identityProxy(PORTS.web + i, user);
  say(`  web view    ${viewers.map((v, i) => `as ${v}: ${u(PORTS.web + i)}/ui/`).join('  ')}`);
  say(`              (behind your own login proxy: ${u(PORTS.api)}/ui/ with the X-Grafana-User header)`);
  say(`  Grafana     import dashboards/*.json (Dashboards > New > Import) or copy dashboards/provisioning/;`);
  say(
    '              needs the Infinity plugin, [dataproxy] send_user_header = true; see dashboards/README.md',
  );
  const cacct = `XDG_CONFIG_HOME=${join(DATA, 'cacct')} ${process.execPath} ${join(ROOT, 'bin', 'cacct')} --starttime=$(date +%F)`;
  say(`  cacct       ${onTestbed ? `runuser -u usr1 -- env ${cacct}` : cacct}`);
  if (onTestbed)
    say('  (energy and emissions appear at the API server updates, every 30 s, once a job has run a minute)');
  await new Promise(() => {}); // until Ctrl-C
}

/** Forwards 127.0.0.1:`port` to the API server as `user` (the X-Grafana-User header a login proxy sets). */
function identityProxy(port: number, user: string): void {
  createServer((req, res) => {
    const headers = { ...req.headers, 'x-grafana-user': user, host: `127.0.0.1:${PORTS.api}` };
    const up = request(
      { host: '127.0.0.1', port: PORTS.api, path: req.url, method: req.method, headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  })
    .on('error', (e) => say(`web view proxy for ${user} on port ${port}: ${e.message}`))
    .listen(port, '127.0.0.1')
    .unref();
}

/** Waits until the exporter reports at least one compute unit; says so when none shows up in time. */
async function waitUnitSeries(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const text = await (await fetch(`http://127.0.0.1:${PORTS.exporter}/metrics`)).text();
      if (text.includes('ceems_compute_unit_cpu_user_seconds_total{')) return;
    } catch {
      // exporter busy
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  say(`no job in the exporter's scrape after ${timeoutMs / 1000} s (squeue shows whether the demo jobs run)`);
}

async function waitCluster(cluster: string, admin: string, timeoutMs = 120_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${PORTS.api}/api/v1/clusters/admin`, {
        headers: { 'X-Grafana-User': admin },
      });
      const body = (await res.json()) as { data?: { id: string }[] };
      if (body.data?.some((c) => c.id === cluster)) return true;
    } catch {
      // first collection still running
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  return false;
}

function dirnameOf(cmd: string): string {
  return execFileSync('sh', ['-c', `dirname "$(command -v ${cmd})"`], { encoding: 'utf8' }).trim();
}

main().catch(async (e) => {
  process.stderr.write(`[stack] error: ${(e as Error).message}\n`);
  await stopAll(1);
});
