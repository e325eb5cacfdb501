// The privilege switch every server makes (src/common/privileges.ts), for real: a child process started as
// root (or unprivileged through setpriv) settles its privileges and reports what each of its threads runs
// with, whether a root-only file is readable from the main thread and from the libuv pool, and what a tool
// run as uid 0 gets.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { capabilityMask, groupList, lookupUser } from '../../../src/common/syscall.js';
import { ROOT } from '../../helpers/process.js';

const NOBODY = lookupUser('nobody')!;
const FIXTURE = join(ROOT, 'test/fixtures/privileges/switch.ts');

interface Status {
  uid: number;
  eff: string;
  prm: string;
  inh: string;
  amb: string;
  bnd: string;
}
interface Report {
  pid: number;
  koffiLoaded: boolean;
  threads: Array<Status & { tid: number }>;
  syncRead: string;
  asyncRead: string;
  root: { uid?: number; gid?: number } | null;
  child: Status | { error: string };
}

/** A root-only file (0400 root) in a directory anyone may cross. */
function rootOnlyFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ceems-priv-'));
  spawnSync('chmod', ['0755', dir]);
  const file = join(dir, 'energy_uj');
  writeFileSync(file, '12345\n', { mode: 0o400 });
  return file;
}

const hex = (names: string[]) => capabilityMask(names).toString(16).padStart(16, '0');

function run(
  args: { runAs?: string; drop?: boolean; needed: object; children?: object },
  prefix: string[] = [],
): { report?: Report; stderr: string; status: number | null } {
  const argv = [
    ...prefix,
    process.execPath,
    '--import',
    'tsx',
    FIXTURE,
    JSON.stringify({ ...args, file: rootOnlyFile() }),
  ];
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  return {
    report: r.status === 0 ? (JSON.parse(r.stdout) as Report) : undefined,
    stderr: r.stderr,
    status: r.status,
  };
}

function mustRun(...a: Parameters<typeof run>): { report: Report; stderr: string } {
  const r = run(...a);
  assert.ok(r.report, `exit ${r.status}:\n${r.stderr}`);
  return { report: r.report, stderr: r.stderr };
}

const logs = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('dropPrivileges started as root (real switch in a child process)', { timeout: 120_000 }, () => {
  it('switches to nobody keeping exactly the needed capabilities in the main thread, none elsewhere', () => {
    const { report, stderr } = mustRun({ needed: { rapl: ['cap_dac_read_search'], cpu: [] } });
    const [main, ...others] = report.threads;
    assert.equal(main!.tid, report.pid);
    assert.deepEqual(main, {
      tid: report.pid,
      uid: NOBODY.uid,
      eff: hex(['cap_dac_read_search']),
      prm: hex(['cap_dac_read_search']),
      inh: hex([]),
      amb: hex([]),
      bnd: hex(['cap_dac_read_search']),
    });
    assert.ok(others.length >= 4, `V8 and libuv threads: ${JSON.stringify(report.threads)}`);
    for (const t of others) {
      assert.equal(t.uid, NOBODY.uid, `thread ${t.tid}`);
      assert.equal(t.eff, hex([]), `thread ${t.tid} effective`);
      assert.equal(t.prm, hex([]), `thread ${t.tid} permitted`);
    }
    const info = logs(stderr).find((l) => l.msg === 'Dropped root privileges');
    assert.deepEqual(
      { user: info?.user, capabilities: info?.capabilities, bounding: info?.bounding },
      { user: 'nobody', capabilities: 'cap_dac_read_search', bounding: 'cap_dac_read_search' },
    );
  });

  it('a root-only file is read from the main thread (sync) and refused to the libuv pool (async)', () => {
    const { report } = mustRun({ needed: { rapl: ['cap_dac_read_search'] } });
    assert.equal(report.syncRead, 'ok');
    assert.equal(report.asyncRead, 'EACCES', 'privileged reads must stay synchronous, on the main thread');
    const none = mustRun({ needed: {} }).report;
    assert.equal(none.syncRead, 'EACCES');
    assert.deepEqual(
      none.threads.filter((t) => t.uid !== NOBODY.uid || t.eff !== hex([]) || t.prm !== hex([])),
      [],
      'no capability in any thread',
    );
    // the bounding set is per thread too: only the main thread, the one that forks tools, has it limited
    assert.equal(none.threads[0]!.bnd, hex([]));
  });

  it('a tool run as uid 0 holds exactly the bounding set: the exporter set plus its tools needs', () => {
    const { report } = mustRun({
      needed: { ipmi_dcmi: ['cap_setuid', 'cap_setgid'], rdma: ['cap_setuid', 'cap_setgid'] },
      children: { rdma: ['cap_net_admin'] },
    });
    const setId = hex(['cap_setuid', 'cap_setgid']);
    const all = hex(['cap_setuid', 'cap_setgid', 'cap_net_admin']);
    assert.equal(report.threads[0]!.eff, setId);
    assert.equal(report.threads[0]!.bnd, all);
    assert.deepEqual(report.root, { uid: 0, gid: 0 });
    assert.deepEqual(report.child, { uid: 0, eff: all, prm: all, inh: hex([]), amb: hex([]), bnd: all });
  });

  it('takes the run-as user with its NSS groups', () => {
    const { report } = mustRun({ runAs: 'root', needed: {} });
    assert.equal(report.threads[0]!.uid, 0, '--security.run-as-user=root keeps root, warned');
    const { report: r2 } = mustRun({ runAs: String(NOBODY.uid), needed: {} });
    assert.equal(r2.threads[0]!.uid, NOBODY.uid, 'numeric uid');
    assert.deepEqual(groupList('nobody', NOBODY.gid), [NOBODY.gid]);
    assert.deepEqual(
      groupList('root', 0),
      spawnSync('id', ['-G', 'root'], { encoding: 'utf8' }).stdout.trim().split(' ').map(Number),
    );
  });

  it('says so when asked not to drop: --no-security.drop-privileges or run-as root', () => {
    const { report, stderr } = mustRun({ drop: false, needed: { slurm: ['cap_sys_ptrace'] } });
    assert.equal(report.threads[0]!.uid, 0);
    assert.ok(
      logs(stderr).some(
        (l) => l.level === 'WARN' && l.msg === 'Running as root: --no-security.drop-privileges',
      ),
      stderr,
    );
  });

  it('fails start-up naming the call and errno when the switch cannot be made', () => {
    // root without cap_setuid (bounding set of its exec): setuid(2) refuses
    const noSetuid = run({ needed: {} }, ['setpriv', '--bounding-set=-setuid', '--inh-caps=-all', '--']);
    assert.equal(noSetuid.status, 3, noSetuid.stderr);
    assert.match(
      noSetuid.stderr,
      /FAILED: cannot switch to user nobody \(uid 65534\): setuid: EPERM \(errno 1\)/,
    );
    // root without cap_setpcap cannot limit the bounding set: nothing is changed
    const noSetpcap = run({ needed: {} }, ['setpriv', '--bounding-set=-setpcap', '--inh-caps=-all', '--']);
    assert.equal(noSetpcap.status, 3, noSetpcap.stderr);
    assert.match(
      noSetpcap.stderr,
      /FAILED: cannot switch to user nobody \(uid 65534\): prctl\(PR_CAPBSET_DROP, cap_chown\): EPERM/,
    );
  });
});

describe('dropPrivileges started unprivileged with capabilities (systemd AmbientCapabilities)', () => {
  const asNobody = (caps: string[]) => {
    const list = caps.map((c) => `+${c}`).join(',');
    return [
      'setpriv',
      '--reuid=nobody',
      '--regid=nogroup',
      '--init-groups',
      `--inh-caps=${list}`,
      `--ambient-caps=${list}`,
      '--',
    ];
  };

  it('keeps the needed granted capabilities, drops the others and empties the ambient set', () => {
    const { report, stderr } = mustRun(
      { needed: { slurm: ['cap_sys_ptrace', 'cap_dac_read_search'] } },
      asNobody(['dac_read_search', 'sys_ptrace', 'setuid', 'net_admin']),
    );
    const kept = hex(['cap_dac_read_search', 'cap_sys_ptrace']);
    const main = report.threads[0]!;
    assert.deepEqual(
      { uid: main.uid, eff: main.eff, prm: main.prm, inh: main.inh, amb: main.amb },
      { uid: NOBODY.uid, eff: kept, prm: kept, inh: hex([]), amb: hex([]) },
    );
    assert.equal(report.syncRead, 'ok', 'cap_dac_read_search works');
    const info = logs(stderr).find(
      (l) => l.msg === 'Running with the capabilities the enabled features need',
    );
    assert.equal(info?.capabilities, 'cap_dac_read_search,cap_sys_ptrace');
    assert.equal(info?.dropped, 'cap_setuid,cap_net_admin');
    assert.equal(report.root, null, 'no cap_setuid kept: no tool as uid 0');
  });

  it('warns naming each needed capability it lacks and the feature that will fail, and runs', () => {
    const { report, stderr } = mustRun(
      { needed: { rapl: ['cap_dac_read_search'], perf: ['cap_perfmon'], ipmi_dcmi: ['cap_setuid'] } },
      asNobody(['dac_read_search']),
    );
    assert.equal(report.threads[0]!.eff, hex(['cap_dac_read_search']));
    const warned = logs(stderr)
      .filter((l) => l.level === 'WARN')
      .map((l) => `${l.feature}: ${l.missing}`);
    assert.deepEqual(warned, ['perf: cap_perfmon', 'ipmi_dcmi: cap_setuid']);
  });

  it('without any capability: warns for each feature, runs, and never loads the FFI addon', () => {
    const { report, stderr } = mustRun({ needed: { rapl: ['cap_dac_read_search'], cpu: [] } }, [
      'setpriv',
      '--reuid=nobody',
      '--regid=nogroup',
      '--init-groups',
      '--inh-caps=-all',
      '--',
    ]);
    assert.equal(report.koffiLoaded, false);
    assert.equal(report.threads[0]!.eff, hex([]));
    assert.equal(report.syncRead, 'EACCES');
    assert.deepEqual(
      logs(stderr)
        .filter((l) => l.level === 'WARN')
        .map((l) => `${l.feature}: ${l.missing}`),
      ['rapl: cap_dac_read_search'],
    );
  });
});
