// The real exporter started as root with --security.run-as-user=nobody, per collector combination: every
// thread runs as nobody, the main thread holds exactly the capabilities of the enabled collectors (spec §15)
// and the others none; a root-only RAPL file is read through cap_dac_read_search; the IPMI tool runs as uid 0
// with exactly the bounding set; started unprivileged with ambient capabilities (setpriv, as systemd would),
// the exporter keeps the granted ones it needs; the SLURM testbed's jobs are reported by the exporter as
// nobody, perf counters of other users' jobs included. Run `npm run build` first.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { capabilityMask, lookupUser } from '../../src/common/syscall.js';
import { awaitListening, ROOT, type Started, startProgram } from '../helpers/process.js';
import { submitJob, testbedEnv } from '../helpers/slurm.js';
import { waitFor, waitForScrape } from '../helpers/wait.js';

const NOBODY = lookupUser('nobody')!.uid;
const FIX = join(ROOT, 'test/fixtures');
const LOCAL = ['--web.listen-address=127.0.0.1:0', '--collector.disable-defaults'];
/** The counter of RAPL zone intel-rapl:0 (package-0) in a scrape. */
const PACKAGE_0 = /^ceems_rapl_package\w*_joules_total\{[^}]*index="0"[^}]*\} (\S+)$/m;

interface Creds {
  uid: number;
  eff: bigint;
  prm: bigint;
  inh: bigint;
  amb: bigint;
  bnd: bigint;
}

function creds(statusText: string): Creds {
  const f = (k: string) => new RegExp(`^${k}:\\s*(\\S+)`, 'm').exec(statusText)![1]!;
  const mask = (k: string) => BigInt(`0x${f(k)}`);
  return {
    uid: Number(f('Uid')),
    eff: mask('CapEff'),
    prm: mask('CapPrm'),
    inh: mask('CapInh'),
    amb: mask('CapAmb'),
    bnd: mask('CapBnd'),
  };
}

/** The process' main thread and every other thread, read from /proc. */
function processCreds(pid: number): { main: Creds; others: Array<Creds & { tid: string }> } {
  const others = readdirSync(`/proc/${pid}/task`)
    .filter((tid) => tid !== String(pid))
    .map((tid) => ({ tid, ...creds(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8')) }));
  return { main: creds(readFileSync(`/proc/${pid}/status`, 'utf8')), others };
}

const names = (mask: bigint) =>
  Array.from({ length: 64 }, (_, n) => ((mask >> BigInt(n)) & 1n ? n : -1)).filter((n) => n >= 0);

/** Asserts the documented sets: main thread = `caps` (bounding = caps + `bounding`), other threads nothing. */
function assertCreds(pid: number, caps: string[], bounding: string[] = [], log = ''): void {
  const { main, others } = processCreds(pid);
  const want = capabilityMask(caps);
  assert.deepEqual(
    { uid: main.uid, eff: names(main.eff), prm: names(main.prm), inh: main.inh, amb: main.amb },
    { uid: NOBODY, eff: names(want), prm: names(want), inh: 0n, amb: 0n },
    log,
  );
  assert.deepEqual(names(main.bnd), names(want | capabilityMask(bounding)), 'bounding set');
  assert.ok(others.length >= 4, 'V8 and libuv threads');
  for (const t of others)
    assert.deepEqual(
      { tid: t.tid, uid: t.uid, caps: (t.eff | t.prm) & ~want },
      { tid: t.tid, uid: NOBODY, caps: 0n },
      'every thread runs as nobody with no capability beyond the expected set',
    );
}

async function exporterAsNobody(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Started> {
  const exp = await startProgram('ceems_exporter', [...LOCAL, '--security.run-as-user=nobody', ...args], {
    env,
  });
  try {
    await waitFor('the switch to nobody', 10_000, () => /msg="Dropped root privileges"/.test(exp.stderr()));
  } catch (e) {
    await exp.stop('SIGKILL');
    throw new Error(`${(e as Error).message}:\n${exp.stderr()}`);
  }
  return exp;
}

describe('exporter started as root: capabilities per collector combination (spec §15)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ceems-exp-priv-'));
  // the node fixture's powercap tree with energy_uj root-only, as from Linux 5.10
  const sysfs = join(tmp, 'sys');
  before(() => {
    chmodSync(tmp, 0o755);
    cpSync(join(FIX, 'node/sys'), sysfs, { recursive: true, verbatimSymlinks: true });
    const zones = join(sysfs, 'devices/virtual/powercap');
    for (const e of readdirSync(zones, { recursive: true, withFileTypes: true }))
      if (e.name === 'energy_uj') chmodSync(join(e.parentPath, e.name), 0o400);
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  const RAPL = ['--collector.rapl', `--path.sysfs=${sysfs}`];
  const cases: Array<{ name: string; args: string[]; caps: string[]; bounding?: string[] }> = [
    { name: 'none (cpu, meminfo)', args: ['--collector.cpu', '--collector.meminfo'], caps: [] },
    { name: 'rapl', args: RAPL, caps: ['cap_dac_read_search'] },
    { name: 'slurm', args: ['--collector.slurm'], caps: ['cap_dac_read_search', 'cap_sys_ptrace'] },
    {
      name: 'slurm + rapl',
      args: ['--collector.slurm', ...RAPL],
      caps: ['cap_dac_read_search', 'cap_sys_ptrace'],
    },
    {
      name: 'slurm + rdma on a Mellanox node (rdma tool as uid 0 needs cap_net_admin: bounding set only)',
      args: ['--collector.slurm', '--collector.rdma.stats', `--path.sysfs=${join(FIX, 'node/sys')}`],
      caps: ['cap_dac_read_search', 'cap_sys_ptrace', 'cap_setuid', 'cap_setgid'],
      bounding: ['cap_net_admin'],
    },
    {
      name: 'libvirt + perf software events',
      args: ['--collector.libvirt', '--collector.perf.software-events'],
      caps: ['cap_dac_read_search', 'cap_perfmon'],
    },
    {
      name: 'libvirt + perf with its env-var filter',
      args: [
        '--collector.libvirt',
        '--collector.perf.software-events',
        '--collector.perf.env-var=ENABLE_PERF',
      ],
      caps: ['cap_dac_read_search', 'cap_perfmon', 'cap_sys_ptrace'],
    },
    {
      name: 'slurm + perf',
      args: ['--collector.slurm', '--collector.perf.software-events'],
      caps: ['cap_dac_read_search', 'cap_sys_ptrace', 'cap_perfmon'],
    },
    {
      name: 'discoverer with the env-var filter',
      args: ['--collector.slurm', '--discoverer.alloy-targets', '--discoverer.alloy-targets.env-var=ENABLE'],
      caps: ['cap_dac_read_search', 'cap_sys_ptrace'],
    },
  ];
  for (const c of cases)
    it(c.name, async () => {
      const exp = await exporterAsNobody(c.args);
      try {
        assertCreds(exp.pid, c.caps, c.bounding, exp.stderr());
        assert.equal((await fetch(`${exp.url}/metrics`)).status, 200);
      } finally {
        await exp.stop();
      }
    });

  it('reads the root-only RAPL energy_uj (0400 root) as nobody through cap_dac_read_search', async () => {
    const exp = await exporterAsNobody(RAPL);
    try {
      const file = join(sysfs, 'class/powercap/intel-rapl:0/energy_uj');
      // control: the same file is refused to nobody without the capability
      const cat = spawnSync('runuser', ['-u', 'nobody', '--', 'cat', file], { encoding: 'utf8' });
      assert.match(cat.stderr, /Permission denied/, `cat as nobody: status ${cat.status}`);
      const joules = Number(readFileSync(file, 'utf8')) / 1e6;
      const value = await waitForScrape(
        `${exp.url}/metrics`,
        'the RAPL package counter',
        5000,
        (text) => PACKAGE_0.exec(text)?.[1],
      );
      assert.equal(Number(value), joules);
      assert.doesNotMatch(exp.stderr(), /permission denied|EACCES/i);
    } finally {
      await exp.stop();
    }
  });

  it('runs the IPMI tool as uid 0 with exactly the bounding set, instead of sudo', async () => {
    const status = join(tmp, 'ipmi-status');
    const exp = await exporterAsNobody(
      [
        '--collector.ipmi_dcmi',
        `--collector.ipmi_dcmi.cmd=${FIX}/ipmi/bin/ipmi-dcmi --get-system-power-statistics`,
      ],
      { FAKE_IPMI_STATUS_FILE: status },
    );
    try {
      const setId = ['cap_setuid', 'cap_setgid'];
      assertCreds(exp.pid, setId, [], exp.stderr());
      const text = await (await fetch(`${exp.url}/metrics`)).text();
      assert.match(text, /^ceems_ipmi_dcmi_current_watts\{hostname="[^"]*"\} 152$/m, exp.stderr());
      const tool = creds(readFileSync(status, 'utf8'));
      const want = capabilityMask(setId);
      assert.deepEqual(tool, { uid: 0, eff: want, prm: want, inh: 0n, amb: 0n, bnd: want });
      assert.match(
        exp.stderr(),
        /msg="Running IPMI DCMI command" collector=ipmi_dcmi cmd=".*" as="uid 0 \(cap_setuid, cap_setgid\)"/,
      );
    } finally {
      await exp.stop();
    }
  });
});

describe('exporter started unprivileged with ambient capabilities (as systemd AmbientCapabilities=)', () => {
  it('detects the granted capabilities, keeps the needed one and reads the root-only RAPL file', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'ceems-exp-amb-'));
    chmodSync(tmp, 0o755);
    const sysfs = join(tmp, 'sys');
    cpSync(join(FIX, 'node/sys'), sysfs, { recursive: true, verbatimSymlinks: true });
    const energy = join(sysfs, 'devices/virtual/powercap/intel-rapl/intel-rapl:0/energy_uj');
    chmodSync(energy, 0o400);
    const caps = '+dac_read_search,+sys_ptrace';
    const proc = spawn(
      'setpriv',
      [
        '--reuid=nobody',
        '--regid=nogroup',
        '--init-groups',
        `--inh-caps=${caps}`,
        `--ambient-caps=${caps}`,
        '--',
        process.execPath,
        resolve(ROOT, 'bin/ceems_exporter'),
        ...LOCAL,
        '--collector.rapl',
        `--path.sysfs=${sysfs}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exp = await awaitListening(proc, 'ceems_exporter (setpriv)');
    try {
      await waitFor('the capability decision', 10_000, () =>
        /msg="Running with the capabilities the enabled features need"/.test(exp.stderr()),
      );
      const { main } = processCreds(exp.pid);
      const want = capabilityMask(['cap_dac_read_search']);
      assert.deepEqual(
        { uid: main.uid, eff: main.eff, prm: main.prm, inh: main.inh, amb: main.amb },
        { uid: NOBODY, eff: want, prm: want, inh: 0n, amb: 0n },
        exp.stderr(),
      );
      assert.match(
        exp.stderr(),
        /capabilities=cap_dac_read_search dropped=cap_sys_ptrace/,
        'sys_ptrace was granted but no enabled collector needs it',
      );
      // capset(2) acts on the calling thread only: threads Node.js started before the main thread dropped
      // the rest keep what was granted at exec (never more); docs/privileges.md
      const granted = capabilityMask(['cap_dac_read_search', 'cap_sys_ptrace']);
      for (const t of processCreds(exp.pid).others)
        assert.deepEqual(
          { tid: t.tid, uid: t.uid, beyond: (t.eff | t.prm) & ~granted },
          { tid: t.tid, uid: NOBODY, beyond: 0n },
        );
      const joules = Number(readFileSync(energy, 'utf8')) / 1e6;
      await waitForScrape(`${exp.url}/metrics`, `the package counter at ${joules} J`, 5000, (text) =>
        Number(PACKAGE_0.exec(text)?.[1]) === joules ? true : undefined,
      );
    } finally {
      await exp.stop();
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('exporter as nobody on the real SLURM testbed', () => {
  const env = testbedEnv();
  const jobs: string[] = [];
  let exp: Started;
  before(async () => {
    exp = await exporterAsNobody(['--collector.slurm', '--collector.perf.software-events']);
  });
  after(async () => {
    if (jobs.length > 0) spawn('scancel', jobs, { env, stdio: 'ignore' });
    await exp?.stop();
  });

  it('reports the testbed jobs of two users, perf counters included, with cap_sys_ptrace, cap_dac_read_search and cap_perfmon only', async () => {
    // jobs that switch context: perf counts other users' processes through cap_perfmon (main thread)
    const busy = 'for i in $(seq 600); do sleep 0.05; done';
    jobs.push(submitJob('usr1', 'acc1', busy, { name: 'ceems-priv-1' }));
    jobs.push(submitJob('usr2', 'acc2', busy, { name: 'ceems-priv-2' }));
    await waitForScrape(
      `${exp.url}/metrics`,
      `jobs ${jobs.join(', ')} with memory and perf series`,
      60_000,
      (text) =>
        jobs.every(
          (id) =>
            new RegExp(`^ceems_compute_unit_memory_used_bytes\\{[^}]*uuid="${id}"\\} [1-9]`, 'm').test(
              text,
            ) &&
            new RegExp(`^ceems_perf_context_switches_total\\{[^}]*uuid="${id}"\\} [1-9]`, 'm').test(text),
        ),
    );
    assertCreds(exp.pid, ['cap_dac_read_search', 'cap_sys_ptrace', 'cap_perfmon'], [], exp.stderr());
    assert.doesNotMatch(exp.stderr(), /EACCES|EPERM/);
  });
});
