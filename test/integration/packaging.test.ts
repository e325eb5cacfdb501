// The Debian packages of `npm run package`, installed on this machine with dpkg: files, users, conffiles and
// modes; the units pass `systemd-analyze verify`; the executables run with no node and no node_modules;
// each server runs from its installed unit's ExecStart line as its system user, with exactly the unit's
// capabilities, bounding set and no_new_privs (setpriv; systemd is not PID 1 here), on 127.0.0.1 against
// the SLURM testbed and a testbed Prometheus: exporter (deb) → Prometheus → API server (deb, sacct through
// its capabilities) → load balancer (deb) answering usr1 on their own job only. The packaged exporter started
// as root (its FFI addon loaded from the executable, node_modules hidden) switches to its user keeping its
// collectors' capabilities. Then everything is stopped by pid and purged, and nothing of the packages may be
// left running or installed.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { type Built, LAZY_PACKAGES, PROGRAMS, packageAll, ROOT } from '../../scripts/package.js';
import { STATIC_ASSETS } from '../../src/web/assets.js';
import { awaitListening, runCommand } from '../helpers/process.js';
import { startTestbedPrometheus, type TestbedPrometheus } from '../helpers/prometheus.js';
import { submitJob, testbedEnv } from '../helpers/slurm.js';
import { waitFor } from '../helpers/wait.js';

const PROM_PORT = 9299;
const CLUSTER = 'slurm-0'; // the cluster id of the shipped example configs
const SERVERS = PROGRAMS.filter((p) => p.user);

function sh(cmd: string, args: string[], env = process.env): string {
  return execFileSync(cmd, args, {
    encoding: 'utf8',
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 120_000,
  });
}

/** `${field}` in dpkg-query's format language. */
const dpkgField = (field: string) => `-f=\${${field}}`;

const installed = (pkg: string) => {
  try {
    return sh('dpkg-query', ['-W', dpkgField('db:Status-Status'), pkg]) === 'installed';
  } catch {
    return false;
  }
};
const userExists = (name: string) => runCommand('getent', ['passwd', name]).then((r) => r.code === 0);
const groupExists = (name: string) => runCommand('getent', ['group', name]).then((r) => r.code === 0);

/** [Service] settings of an installed unit file, by key (repeated keys joined with spaces). */
function unitSettings(name: string): Record<string, string> {
  const text = readFileSync(`/lib/systemd/system/${name}.service`, 'utf8').replace(/\\\n/g, ' ');
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/^(\w+)=(.*)$/gm)) out[m[1]!] = out[m[1]!] ? `${out[m[1]!]} ${m[2]}` : m[2]!;
  return out;
}

/** ExecStart as argv, `$VAR` replaced by the words of `vars[VAR]` (systemd's unquoted expansion). */
function execStart(unit: Record<string, string>, vars: Record<string, string>): string[] {
  return unit
    .ExecStart!.trim()
    .split(/\s+/)
    .flatMap((w) => {
      const m = /^\$(\w+)$/.exec(w);
      if (!m) return [w];
      assert.ok(m[1]! in vars, `ExecStart uses $${m[1]}, which the test does not set`);
      return vars[m[1]!]!.split(/\s+/).filter(Boolean);
    });
}

/** setpriv arguments giving a process what the unit gives it: user, capabilities, bounding set, no_new_privs. */
function asUnit(unit: Record<string, string>): string[] {
  const caps = (unit.AmbientCapabilities ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map((c) => c.replace(/^CAP_/, '').toLowerCase());
  const bounding = (unit.CapabilityBoundingSet ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map((c) => c.replace(/^CAP_/, '').toLowerCase());
  assert.deepEqual(
    caps.filter((c) => !bounding.includes(c)),
    [],
    'ambient capabilities outside the bounding set',
  );
  const set = (l: string[]) => ['-all', ...l.map((c) => `+${c}`)].join(',');
  return [
    `--reuid=${unit.User}`,
    `--regid=${unit.Group}`,
    '--init-groups',
    ...(unit.NoNewPrivileges === 'yes' ? ['--no-new-privs'] : []),
    `--inh-caps=${set(caps)}`,
    `--ambient-caps=${set(caps)}`,
    `--bounding-set=${set(bounding)}`,
  ];
}

interface Server {
  name: string;
  pid: number;
  url: string;
  log(): string;
  stop(): Promise<void>;
}

/** Runs the unit of `name` as its user; resolves once the program logs its (first) listening address. */
async function startUnit(name: string, vars: Record<string, string>, cwd = '/'): Promise<Server> {
  const unit = unitSettings(name);
  const argv = execStart(unit, vars);
  const proc = spawn('setpriv', [...asUnit(unit), '--', ...argv], {
    cwd,
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const started = await awaitListening(proc, name, { timeoutMs: 20_000 });
  return {
    name,
    pid: started.pid, // setpriv execs the program: same pid
    url: started.url,
    log: started.stderr,
    async stop() {
      await started.stop();
    },
  };
}

/** User, effective capabilities and no_new_privs of a running process. */
function processCreds(pid: number): { uid: number; capEff: bigint; noNewPrivs: boolean } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (k: string) => new RegExp(`^${k}:\\s*(\\S+)`, 'm').exec(status)![1]!;
  return {
    uid: Number(field('Uid')),
    capEff: BigInt(`0x${field('CapEff')}`),
    noNewPrivs: field('NoNewPrivs') === '1',
  };
}
const CAP_BIT: Record<string, bigint> = {
  CAP_SETGID: 6n,
  CAP_SETUID: 7n,
  CAP_DAC_READ_SEARCH: 2n,
  CAP_SYS_PTRACE: 19n,
};
const capMask = (caps: string | undefined) =>
  (caps ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .reduce((m, c) => m | (1n << CAP_BIT[c]!), 0n);

/** Pids whose executable is one of the packaged programs (also when the file was deleted). */
function packagedProcesses(): string[] {
  const exes = new Set(PROGRAMS.map((p) => `/usr/bin/${p.name}`));
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const exe = readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '');
      if (exes.has(exe)) found.push(`${pid} ${exe}`);
    } catch {
      // gone, or a kernel thread
    }
  }
  return found;
}

/**
 * dpkg, waiting for its lock while another test's testbed script installs Debian packages (Prometheus on a
 * fresh machine) instead of failing at once.
 */
async function dpkg(args: string[]): Promise<void> {
  const r = await waitFor(
    'the dpkg lock',
    300_000,
    async () => {
      const run = await runCommand('dpkg', args, { timeoutMs: 120_000 });
      return run.code !== 0 && /lock/i.test(run.stderr) ? undefined : run;
    },
    1000,
  );
  assert.equal(r.code, 0, `dpkg ${args.join(' ')}: ${r.stderr}`);
}

async function purgeAll(): Promise<void> {
  const present = PROGRAMS.map((p) => p.pkg).filter(installed);
  if (present.length > 0) await dpkg(['--purge', ...present]);
}

describe('Debian packages installed, run from their units and purged', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ceems-packaging-'));
  const servers: Server[] = [];
  const jobs: string[] = [];
  let built: Built[] = [];
  let prometheus: TestbedPrometheus | undefined;
  const env = testbedEnv();

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'installing packages needs root');
    chmodSync(dir, 0o755);
    await purgeAll(); // leftovers of an interrupted run
    built = await packageAll(join(dir, 'out'));
    await dpkg(['-i', ...built.map((b) => b.deb)]);
  });

  after(async () => {
    for (const s of servers) await s.stop().catch(() => undefined);
    if (jobs.length > 0) await runCommand('scancel', jobs, { env });
    prometheus?.stop();
    await purgeAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('each executable starts Node.js with the flags bin/<name> gives it', () => {
    for (const p of PROGRAMS) {
      const exec = readFileSync(join(ROOT, 'bin', p.name), 'utf8').split('\n')[1]!;
      const flags = /exec "\$n" (.*?)"\$0"/.exec(exec)?.[1]?.trim().split(/\s+/).filter(Boolean) ?? [];
      assert.deepEqual(p.execArgv ?? [], flags, `bin/${p.name}: ${exec}`);
    }
  });

  it("the exporter's executable carries no API database code and no dev tools", () => {
    const exporter = built.find((b) => b.exe.program.name === 'ceems_exporter')!;
    const inputs = Object.keys(exporter.exe.metafile.inputs);
    assert.ok(inputs.includes('src/exporter/main.ts'));
    assert.deepEqual(
      inputs.filter((f) =>
        /^src\/(api|lb|cli)\/|^src\/common\/sqlite\.ts$|node_modules\/(esbuild|typescript|tsx|postject)\//.test(
          f,
        ),
      ),
      [],
    );
  });

  it('big packages reached through a feature are embedded apart from the main script, loaded at first use', () => {
    const exporter = built.find((b) => b.exe.program.name === 'ceems_exporter')!.exe;
    for (const pkg of ['undici', 'zod', 'yaml', 'i18n-iso-countries', '@grpc/grpc-js', 'fast-xml-parser'])
      assert.ok(exporter.lazyPackages.includes(pkg), `${pkg} in ${exporter.lazyPackages.join(' ')}`);
    const inMain = exporter.mainInputs.filter((f) =>
      LAZY_PACKAGES.some((p) => f.includes(`node_modules/${p}/`)),
    );
    assert.deepEqual(inMain, []);
    assert.ok(exporter.metafile.inputs['node_modules/yaml/dist/index.js'], 'lazy inputs are listed');
  });

  it('installs each program, its example configs as conffiles and its unit, with users and modes', async () => {
    for (const p of PROGRAMS) {
      assert.ok(installed(p.pkg), p.pkg);
      assert.equal(sh('dpkg-query', ['-W', dpkgField('Recommends'), p.pkg]), (p.recommends ?? []).join(', '));
      const exe = statSync(`/usr/bin/${p.name}`);
      assert.equal(exe.uid, 0);
      const conffiles = sh('dpkg-query', ['-W', dpkgField('Conffiles'), p.pkg])
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => l.trim().split(' ')[0]);
      assert.deepEqual(conffiles.sort(), p.etc.map((f) => `/etc/${f}`).sort(), `${p.pkg} conffiles`);
      for (const f of p.etc)
        assert.equal(readFileSync(`/etc/${f}`, 'utf8'), readFileSync(join(ROOT, 'etc', f), 'utf8'));
      const group = p.user ?? p.setgidGroup;
      for (const f of p.secret) {
        const st = statSync(`/etc/${f}`);
        assert.equal(st.mode & 0o777, 0o640, `/etc/${f}`);
        assert.equal(st.gid, Number(sh('getent', ['group', group!]).split(':')[2]), `/etc/${f} group`);
      }
      assert.equal(existsSync(`/lib/systemd/system/${p.name}.service`), p.user !== undefined);
      if (p.user) {
        const [, , uid, , , home, shell] = sh('getent', ['passwd', p.user]).trim().split(':');
        assert.ok(Number(uid) < 1000, `${p.user} is a system user`);
        assert.equal(shell, '/usr/sbin/nologin');
        assert.equal(home, p.dataDir ?? '/nonexistent');
      }
      if (p.setgidGroup) {
        assert.equal(exe.mode & 0o7777, 0o2755, 'cacct is setgid');
        assert.equal(exe.gid, Number(sh('getent', ['group', p.setgidGroup]).split(':')[2]));
      } else assert.equal(exe.mode & 0o7777, 0o755);
      if (p.dataDir) {
        const st = statSync(p.dataDir);
        assert.equal(st.mode & 0o777, 0o750);
        assert.equal(st.uid, Number(sh('id', ['-u', p.user!]).trim()));
      }
    }
  });

  it('units pass systemd-analyze verify', async () => {
    const units = SERVERS.map((p) => `/lib/systemd/system/${p.name}.service`);
    const r = await runCommand('systemd-analyze', ['verify', '--man=no', ...units], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    for (const p of SERVERS) assert.doesNotMatch(r.stderr, new RegExp(`${p.name}\\.service`), r.stderr);
  });

  it('executables run without node and without node_modules', async () => {
    // a private mount namespace where every node binary is /dev/null and the project folder is empty
    const hide = [
      ...sh('sh', ['-c', 'which -a node || true']).trim().split('\n').filter(Boolean),
      ...['/usr/bin/node', '/usr/local/bin/node', process.execPath].filter(existsSync),
    ];
    const script = [
      ...[...new Set(hide)].map((f) => `mount --bind /dev/null '${f}'`),
      `mount -t tmpfs none '${ROOT}'`,
      ...PROGRAMS.map((p) => `/usr/bin/${p.name} --version 2>&1 | head -1`),
    ].join(' && ');
    const r = await runCommand('unshare', ['--mount', 'sh', '-c', script], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string })
      .version;
    // each executable is stamped with the commit checked out when it was built; others may commit meanwhile
    const branch = sh('git', ['-C', ROOT, 'rev-parse', '--abbrev-ref', 'HEAD']).trim();
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(
      lines.map((l) => l.replace(/revision: [0-9a-f]{40}\)$/, 'revision: <commit>)')),
      PROGRAMS.map((p) => `${p.name}, version ${version} (branch: ${branch}, revision: <commit>)`),
    );
    for (const l of lines) {
      const rev = /revision: ([0-9a-f]{40})\)$/.exec(l)![1]!;
      const ancestor = await runCommand('git', ['-C', ROOT, 'merge-base', '--is-ancestor', rev, 'HEAD']);
      assert.equal(ancestor.code, 0, `${l}: not a commit of this branch`);
    }
  });

  it('the packaged exporter started as root switches to its user keeping exactly its capabilities', async () => {
    // RAPL with energy_uj root-only (Linux ≥ 5.10), read through cap_dac_read_search after the switch
    const sysfs = join(dir, 'sys');
    cpSync(join(ROOT, 'test/fixtures/node/sys'), sysfs, { recursive: true, verbatimSymlinks: true });
    const energy = join(sysfs, 'devices/virtual/powercap/intel-rapl/intel-rapl:0/energy_uj');
    chmodSync(energy, 0o400);
    const koffiCopies = () => readdirSync(tmpdir()).filter((f) => f.startsWith('ceems-koffi-'));
    const before = koffiCopies();
    // koffi (prctl, capset, setuid) must come from the executable: the project folder is hidden
    const args = [
      '--web.listen-address=127.0.0.1:0',
      '--security.run-as-user=ceems-exporter',
      '--collector.disable-defaults',
      '--collector.slurm',
      '--collector.rapl',
      `--path.sysfs=${sysfs}`,
    ];
    const proc = spawn(
      'unshare',
      [
        '--mount',
        'sh',
        '-c',
        `mount -t tmpfs none '${ROOT}' && exec /usr/bin/ceems_exporter "$@"`,
        'sh',
        ...args,
      ],
      {
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    const exp = await awaitListening(proc, 'ceems_exporter as root');
    try {
      await waitFor('the switch to ceems-exporter', 10_000, () =>
        /msg="Dropped root privileges"/.test(exp.stderr()),
      );
      assert.equal(readlinkSync(`/proc/${exp.pid}/exe`), '/usr/bin/ceems_exporter');
      // the V8 flags of bin/ceems_exporter come with the executable (SEA execArgv)
      const started = /msg="Starting ceems_exporter".*/.exec(exp.stderr())?.[0] ?? exp.stderr().slice(0, 500);
      assert.match(started, /node_flags="--max-semi-space-size=1 --heap-growing-percent=50"/, started);
      const status = readFileSync(`/proc/${exp.pid}/status`, 'utf8');
      const field = (k: string) => new RegExp(`^${k}:\\s*(\\S+)`, 'm').exec(status)![1]!;
      const want = (capMask('CAP_DAC_READ_SEARCH CAP_SYS_PTRACE') as bigint).toString(16).padStart(16, '0');
      assert.deepEqual(
        {
          uid: Number(field('Uid')),
          eff: field('CapEff'),
          prm: field('CapPrm'),
          bnd: field('CapBnd'),
          amb: field('CapAmb'),
        },
        {
          uid: Number(sh('id', ['-u', 'ceems-exporter']).trim()),
          eff: want,
          prm: want,
          bnd: want,
          amb: '0'.repeat(16),
        },
        exp.stderr(),
      );
      const joules = Number(readFileSync(energy, 'utf8')) / 1e6;
      const text = await (await fetch(`${exp.url}/metrics`)).text();
      assert.match(
        text,
        new RegExp(`^ceems_rapl_package\\w*_joules_total\\{[^}]*index="0"[^}]*\\} ${joules}$`, 'm'),
      );
      assert.deepEqual(koffiCopies(), before, 'the private copy of the FFI addon is deleted once loaded');
    } finally {
      await exp.stop();
    }
  });

  it('servers run from their units as their users: SLURM job → exporter → Prometheus → API server → LB', async () => {
    // exporter: default collectors plus slurm, reading the testbed's job cgroups, and the emissions collector
    // with the offline OWID factors (lazy package bundles: i18n-iso-countries, @tgwf/co2)
    const exporter = await startUnit('ceems_exporter', {
      CEEMS_EXPORTER_OPTIONS:
        '--web.listen-address=127.0.0.1:0 --collector.slurm --collector.emissions --collector.emissions.provider=owid',
    });
    servers.push(exporter);
    // an idle job: its cgroup and series exist without taking a core from the other tests
    const job = submitJob('usr1', 'acc1', 'sleep 240', { name: 'ceems-packaging' });
    jobs.push(job);
    const scrape = async () => (await fetch(`${exporter.url}/metrics`)).text();
    await waitFor(`job ${job} in the packaged exporter's scrape`, 120_000, async () =>
      (await scrape()).includes(`uuid="${job}"`),
    );
    assert.match(
      await scrape(),
      /^ceems_emissions_gCo2_kWh\{country="France",country_code="FR",provider="owid",/m,
    );

    writeFileSync(
      join(dir, 'scrape.yml'),
      `  - job_name: ceems\n    static_configs:\n      - targets: ['${exporter.url.replace('http://', '')}']\n`,
    );
    prometheus = startTestbedPrometheus(PROM_PORT, ['--scrape-config', join(dir, 'scrape.yml')]);

    // API server: the shipped example config, with the testbed's Prometheus and a short update interval
    const config = YAML.parse(readFileSync('/etc/ceems_api_server/config.yml', 'utf8'));
    Object.assign(config.ceems_api_server.data, {
      update_interval: '3s',
      time_zone: 'UTC',
      update_from: new Date(Date.now() - 600_000).toISOString().slice(0, 19),
    });
    config.clusters[0].cli.environment_variables.SLURM_CONF = env.SLURM_CONF ?? '/etc/slurm/slurm.conf';
    config.updaters[0].web.url = prometheus.url;
    config.updaters[0].extra_config.cutoff_duration = '3s';
    const apiConfig = join(dir, 'api.yml');
    writeFileSync(apiConfig, YAML.stringify(config));
    chownSync(apiConfig, 0, Number(sh('getent', ['group', 'ceems-api']).split(':')[2]));
    chmodSync(apiConfig, 0o640);
    const apiUnit = unitSettings('ceems_api_server');
    const api = await startUnit(
      'ceems_api_server',
      {
        CEEMS_API_SERVER_OPTIONS: `--web.listen-address=127.0.0.1:0 --config.file=${apiConfig} --log.level=debug`,
      },
      apiUnit.WorkingDirectory,
    );
    servers.push(api);
    assert.equal((await fetch(`${api.url}/health`)).status, 200);
    // the SLURM tools run as root through the unit's CAP_SETUID/CAP_SETGID (the testbed shows every job to
    // anyone, so the mode is what tells), and usr1's job is stored in the packaged data directory
    await waitFor('the SLURM manager in root mode', 20_000, () =>
      /msg="SLURM resource manager ready" cluster_id=slurm-0 mode=root /.test(api.log()),
    );
    await waitFor(`job ${job} in the API server's DB`, 60_000, async () => {
      const r = await fetch(`${api.url}/api/v1/units/admin?cluster_id=${CLUSTER}&uuid=${job}`, {
        headers: { 'X-Grafana-User': 'ceems-int-svc' },
      });
      const units = ((await r.json()) as { data: Array<{ uuid: string; username: string }> }).data ?? [];
      return units.some((u) => u.uuid === job && u.username === 'usr1');
    });
    assert.ok(existsSync('/var/lib/ceems/ceems.db'), 'the database is in the packaged data directory');
    // the web view's script, style and uPlot are embedded in the executable (no node_modules here)
    for (const asset of ['app.js', 'app.css', 'uPlot.iife.min.js', 'uPlot.min.css']) {
      const r = await fetch(`${api.url}/ui/assets/${asset}`);
      const body = await r.text();
      assert.equal(r.status, 200, `/ui/assets/${asset}: ${r.status} ${body.slice(0, 200)}`);
      assert.equal(body, readFileSync(join(ROOT, STATIC_ASSETS[asset]!.path), 'utf8'), asset);
    }

    // LB: the shipped example with the testbed's Prometheus and this API server
    const lbConf = YAML.parse(readFileSync('/etc/ceems_lb/config.yml', 'utf8'));
    lbConf.ceems_lb.backends[0].tsdb[0].web.url = prometheus.url;
    lbConf.ceems_api_server.web.url = api.url;
    const lbConfig = join(dir, 'lb.yml');
    writeFileSync(lbConfig, YAML.stringify(lbConf));
    chownSync(lbConfig, 0, Number(sh('getent', ['group', 'ceems-lb']).split(':')[2]));
    chmodSync(lbConfig, 0o640);
    const lb = await startUnit('ceems_lb', {
      CEEMS_LB_OPTIONS: `--web.listen-address=127.0.0.1:0 --config.file=${lbConfig}`,
    });
    servers.push(lb);
    assert.equal((await fetch(`${lb.url}/health`)).status, 200);
    const query = (user: string) =>
      fetch(
        `${lb.url}/api/v1/query?query=${encodeURIComponent(`ceems_compute_unit_cpu_user_seconds_total{uuid="${job}"}`)}`,
        { headers: { 'X-Grafana-User': user, 'X-Ceems-Cluster-Id': CLUSTER } },
      );
    const own = await waitFor('usr1 reading their job through the packaged LB', 30_000, async () => {
      const r = await query('usr1');
      const body = (await r.json()) as { data?: { result: unknown[] } };
      return r.status === 200 && (body.data?.result.length ?? 0) > 0 ? body : undefined;
    });
    assert.equal(own.data!.result.length, 1);
    assert.equal((await query('usr2')).status, 403);
    const tool = await runCommand('/usr/bin/ceems_tool', ['check', 'lb-healthy', `--url=${lb.url}`]);
    assert.equal(tool.code, 0, tool.stderr);

    // redfish_proxy with its shipped example config: refuses what it must refuse, sends nothing anywhere
    const redfish = await startUnit('redfish_proxy', {
      REDFISH_PROXY_OPTIONS: '--web.listen-address=127.0.0.1:0',
    });
    servers.push(redfish);
    const denied = await fetch(`${redfish.url}/redfish/v1/Systems`);
    assert.equal(denied.status, 401);
    const untargeted = await fetch(`${redfish.url}/redfish/v1/Chassis`);
    assert.equal(untargeted.status, 400, await untargeted.text());

    // admission controller with its shipped example web config (plain HTTP: health only until TLS is set)
    const admission = await startUnit('ceems_k8s_admission_controller', {
      CEEMS_K8S_ADMISSION_CONTROLLER_OPTIONS: '--web.listen-address=127.0.0.1:0',
    });
    servers.push(admission);
    const health = await fetch(`${admission.url}/health`);
    assert.equal(await health.text(), 'CEEMS k8s Admission Controller is healthy');

    // every server runs as its user with exactly its unit's capabilities and no_new_privs
    for (const s of servers) {
      const unit = unitSettings(s.name);
      const creds = processCreds(s.pid);
      assert.equal(creds.uid, Number(sh('id', ['-u', unit.User!]).trim()), `${s.name} user`);
      assert.equal(creds.capEff, capMask(unit.AmbientCapabilities), `${s.name} capabilities`);
      assert.equal(creds.noNewPrivs, true, `${s.name} no_new_privs`);
      assert.equal(readlinkSync(`/proc/${s.pid}/exe`), `/usr/bin/${s.name}`);
    }

    // cacct as usr1: setgid, it reads the config usr1 cannot read (its API URL has no server: exit 1)
    const cacct = await runCommand('runuser', ['-u', 'usr1', '--', '/usr/bin/cacct', '--csv'], {
      timeoutMs: 20_000,
    });
    assert.equal(cacct.code, 1);
    assert.doesNotMatch(cacct.stderr, /cannot read config file/);
    const direct = await runCommand('runuser', ['-u', 'usr1', '--', 'cat', '/etc/ceems/config.yml']);
    assert.notEqual(direct.code, 0, 'usr1 reads the cacct config directly');

    for (const s of servers.splice(0)) await s.stop();
    await runCommand('scancel', jobs.splice(0), { env });
  });

  it('purge removes the packages, their users, data and configs; nothing is left running', async () => {
    await purgeAll();
    assert.deepEqual(packagedProcesses(), []);
    for (const p of PROGRAMS) {
      assert.equal(installed(p.pkg), false, p.pkg);
      assert.equal(existsSync(`/usr/bin/${p.name}`), false);
      for (const f of p.etc) assert.equal(existsSync(`/etc/${f}`), false, `/etc/${f}`);
      assert.equal(existsSync(`/lib/systemd/system/${p.name}.service`), false);
      if (p.user) assert.equal(await userExists(p.user), false, p.user);
      const group = p.user ?? p.setgidGroup;
      if (group) assert.equal(await groupExists(group), false, group);
      if (p.dataDir) assert.equal(existsSync(p.dataDir), false, p.dataDir);
    }
    assert.equal(sh('dpkg-statoverride', ['--list']).includes('ceems'), false);
  });
});
