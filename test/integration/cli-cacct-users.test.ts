// cacct as users of a login node run it: the testbed's local users (usr1, usr3 of shared/testbed/slurm), each
// with a config of their own in $XDG_CONFIG_HOME/ceems readable by them alone, against the real API server
// on a DB written through its write path. What they see is compared with golden files written from the
// spec (cli.md §1.7, the original's table layout) and checked by hand.

import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CeemsDb, type UnitRecord } from '../../src/api/db/index.js';
import { type ApiServer, createApiServer } from '../../src/api/server.js';
import { formatDatetimezone } from '../../src/api/timefmt.js';
import { apiServerOptions } from '../fixtures/api/server.js';
import { ROOT, runCommand } from '../helpers/process.js';
import { assertGolden } from '../unit/cli/golden.js';

const TZ = 'UTC';
const NOW = Date.UTC(2024, 4, 6, 12, 0, 0);
const H = 3600_000;
const CLUSTER = 'ceems';
const WINDOW = ['--starttime=2024-05-06', '--endtime=2024-05-06T23:00'];

/** A SLURM unit of the window; `endH` undefined = still running. */
function unit(uuid: string, user: string, account: string, startH: number, endH?: number): UnitRecord {
  const started = NOW + startH * H;
  const ended = endH === undefined ? 0 : NOW + endH * H;
  const wall = ((ended || NOW) - started) / 1000;
  const cpus = Number(uuid) % 4 === 0 ? 4 : 2;
  return {
    cluster_id: CLUSTER,
    resource_manager: 'slurm',
    uuid,
    name: `job-${uuid}`,
    project: account,
    groupname: user,
    username: user,
    created_at: formatDatetimezone(started - 60_000, TZ),
    started_at: formatDatetimezone(started, TZ),
    ended_at: ended ? formatDatetimezone(ended, TZ) : 'Unknown',
    created_at_ts: started - 60_000,
    started_at_ts: started,
    ended_at_ts: ended,
    elapsed: `${String(Math.floor(wall / 3600)).padStart(2, '0')}:00:00`,
    state: ended ? 'COMPLETED' : 'RUNNING',
    allocation: { cpus },
    tags: {},
    total_time_seconds: { walltime: wall, alloc_cputime: cpus * wall, alloc_cpumemtime: wall },
    avg_cpu_usage: { global: 10 * Number(uuid) },
    avg_cpu_mem_usage: { global: 12.5 },
    total_cpu_energy_usage_kwh: { total: 0.0125 * Number(uuid) },
    total_cpu_emissions_gms: { emaps_total: 0.5 * Number(uuid), rte_total: 0.25 * Number(uuid) },
  };
}

// Job ids chosen so that text order (1, 10, 13, 3) differs from numeric order; 13 is still running.
const UNITS = [
  unit('1', 'usr1', 'acc1', -6, -5),
  unit('3', 'usr1', 'acc1', -5, -3),
  unit('10', 'usr1', 'acc1', -4, -2),
  unit('13', 'usr1', 'acc1', -2),
  unit('37', 'usr3', 'acc1', -3, -1),
  unit('38', 'usr3', 'acc2', -3, -2),
];

describe('cacct run by local users, config in $XDG_CONFIG_HOME/ceems, real API server', () => {
  let dir: string;
  let api: ApiServer;
  let url: string;

  before(async () => {
    for (const u of ['usr1', 'usr3']) {
      assert.ok((await runCommand('id', ['-u', u])).code === 0, `testbed user ${u} missing`);
    }
    dir = mkdtempSync(join(tmpdir(), 'cacct-users-'));
    chmodSync(dir, 0o755);
    const dataDir = join(dir, 'data');
    const db = CeemsDb.open(dataDir);
    db.storeCollection({
      start: NOW - 24 * H,
      end: NOW - H / 2,
      timeZone: TZ,
      units: UNITS,
      users: [
        { cluster_id: CLUSTER, resource_manager: 'slurm', name: 'usr1', projects: ['acc1'] },
        { cluster_id: CLUSTER, resource_manager: 'slurm', name: 'usr3', projects: ['acc1', 'acc2'] },
      ],
      projects: [
        { cluster_id: CLUSTER, resource_manager: 'slurm', name: 'acc1', users: ['usr1', 'usr3'] },
        { cluster_id: CLUSTER, resource_manager: 'slurm', name: 'acc2', users: ['usr3'] },
      ],
    });
    db.close();
    api = await createApiServer(
      apiServerOptions(dataDir, { listenAddresses: ['127.0.0.1:0'], timeZone: TZ, now: () => NOW }),
    );
    url = `http://${(await api.server.listen())[0]}`;
    // each user's own config, as a user on a login node keeps it: ~/.config/ceems/config.yml, mode 0600
    for (const user of ['usr1', 'usr3']) {
      const uid = Number((await runCommand('id', ['-u', user])).stdout);
      const gid = Number((await runCommand('id', ['-g', user])).stdout);
      const ceems = join(dir, user, 'ceems');
      mkdirSync(ceems, { recursive: true });
      const file = join(ceems, 'config.yml');
      writeFileSync(file, `ceems_api_server:\n  cluster_id: ${CLUSTER}\n  web:\n    url: ${url}\n`);
      for (const p of [join(dir, user), ceems, file]) chownSync(p, uid, gid);
      chmodSync(join(dir, user), 0o700);
      chmodSync(file, 0o600);
    }
  });

  after(async () => {
    await api?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // async: the API server runs in this process and must keep answering
  const cacctAs = (user: string, args: string[]) =>
    runCommand(
      'runuser',
      [
        '-u',
        user,
        '--',
        'env',
        `XDG_CONFIG_HOME=${join(dir, user)}`,
        'TZ=UTC',
        join(ROOT, 'bin', 'cacct'),
        ...args,
      ],
      { timeoutMs: 30_000 },
    );

  it('the test runs as root and the users are not: the config is found through XDG_CONFIG_HOME', async () => {
    assert.equal(userInfo().uid, 0);
    const r = await runCommand('runuser', [
      '-u',
      'usr3',
      '--',
      'cat',
      join(dir, 'usr1', 'ceems', 'config.yml'),
    ]);
    assert.notEqual(r.code, 0, 'usr3 can read the config of usr1');
  });

  it('usr1, default format: numeric job order, the running job listed as RUNNING, totals of the account (golden)', async () => {
    const r = await cacctAs('usr1', WINDOW);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assertGolden(r.stdout, 'cacct/golden/users-usr1-default.txt');
    const ids = [...r.stdout.matchAll(/^│ (\d+) +│/gm)].map((m) => m[1]);
    assert.deepEqual(ids, ['1', '3', '10', '13']);
    assert.match(r.stdout, /^│ 13 +│ acc1 +│ 02:00:00 │ RUNNI │/m);
    assert.match(r.stdout, /^│ 4 jobs +│ acc1 +│/m);
  });

  it('usr1 with a state column: the running job shows RUNNING (golden)', async () => {
    const r = await cacctAs('usr1', [
      ...WINDOW,
      '--format=jobid,name,elapsed,state,hostenergy,hostemissions',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assertGolden(r.stdout, 'cacct/golden/users-usr1-state.txt');
    assert.match(r.stdout, /│ 13 +│ job-13 +│ 02:00:00 +│ RUNNI │/);
  });

  it('usr1 --job=1,10: the Summary totals those two jobs only', async () => {
    const r = await cacctAs('usr1', [
      '--job=1,10',
      '--csv',
      '--format=jobid,account,elapsed,cpuusage,hostenergy',
    ]);
    assert.equal(r.code, 0, r.stderr);
    // cpu weighted by allocated cpu time: (10·2·3600 + 100·2·7200) / (2·3600 + 2·7200) = 70
    assert.equal(
      r.stdout,
      [
        'Job ID,Account,Elapsed,CPU Usage(%),Host Energy(kWh)',
        '1,acc1,01:00:00,10.00,0.012500',
        '10,acc1,02:00:00,100.00,0.125000',
        'Summary,,,,',
        '2 jobs,acc1,03:00:00,70.00,0.137500',
        '',
      ].join('\n'),
    );
  });

  it('usr3 sees their jobs of both accounts and only their own totals, not those of usr1 in acc1; kingpin flags', async () => {
    const r = await cacctAs('usr3', [
      ...WINDOW,
      '--csv',
      '--no-csv',
      '--format',
      'jobid,account,user,hostenergy',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assertGolden(r.stdout, 'cacct/golden/users-usr3-accounts.txt');
    assert.doesNotMatch(r.stdout, /usr1/);
  });

  it('usr3 asking for the jobs of usr1 without admin rights is refused as the original says', async () => {
    const r = await cacctAs('usr3', [...WINDOW, '--user=usr1']);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      'forbidden. It is likely that the user is attempting to view statistics of others\n',
    );
  });
});
