import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { expandHostlist } from '../../../../src/api/resource/hostlist.js';
import {
  parseAllocTres,
  parseAssociations,
  parseSacct,
  parseSlurmMemory,
  SlurmManager,
  sacctArgs,
  slurmElapsedInWindow,
} from '../../../../src/api/resource/slurm.js';
import { createLogger } from '../../../../src/common/logger.js';

const FIXTURE = join(import.meta.dirname, '../../../fixtures/api-data/sacct.txt');
const ms = (s: string) => Date.parse(s);

describe('SLURM sacct parsing', () => {
  const start = ms('2024-05-06T10:15:00+02:00');
  const end = ms('2024-05-06T11:15:00+02:00');
  const units = parseSacct(readFileSync(FIXTURE, 'utf8'), {
    clusterId: 'hpc',
    timeZone: 'Europe/Paris',
    start,
    end,
  });

  it('skips steps, short lines and jobs without nodes', () => {
    assert.deepEqual(
      units.map((u) => u.uuid),
      ['4242', '4243', '4245'],
    );
  });

  it('maps every field of a completed job', () => {
    const u = units[0]!;
    assert.equal(u.cluster_id, 'hpc');
    assert.equal(u.resource_manager, 'slurm');
    assert.equal(u.name, 'sim');
    assert.equal(u.project, 'acct1');
    assert.equal(u.groupname, 'grp1');
    assert.equal(u.username, 'bob');
    assert.equal(u.created_at, '2024-05-06T09:59:12+0200');
    assert.equal(u.started_at_ts, ms('2024-05-06T10:00:00+02:00'));
    assert.equal(u.ended_at, '2024-05-06T11:00:00+0200');
    assert.equal(u.elapsed, '01:00:00');
    assert.equal(u.state, 'COMPLETED');
    assert.deepEqual(u.allocation, { nodes: 1, cpus: 4, mem: 8 * 1024 ** 3, gpus: 0, billing: 4 });
    assert.deepEqual(u.tags, {
      uid: 1001,
      gid: 1001,
      partition: 'cpu',
      qos: 'normal',
      exit_code: '0:0',
      nodelist: 'cn01',
      nodelistexp: 'cn01',
      workdir: '/projects/acct1/bob',
    });
    // 10:15 → 11:00 inside the window = 2700 s.
    assert.deepEqual(u.total_time_seconds, {
      walltime: 2700,
      alloc_cputime: 4 * 2700,
      alloc_cpumemtime: 8192 * 2700,
      alloc_gputime: 0,
      alloc_gpumemtime: 0,
    });
  });

  it('keeps Unknown end of running jobs and counts GPUs of typed gres', () => {
    const u = units[1]!;
    assert.equal(u.ended_at, 'Unknown');
    assert.equal(u.ended_at_ts, 0);
    assert.equal(u.allocation!.gpus, 2);
    assert.equal(u.allocation!.mem, Math.trunc(320.5 * 1024 ** 3));
    assert.equal(u.tags!.nodelistexp, 'gpu01|gpu02');
    // started 10:30:05, still running: 10:30:05 → 11:15:00 = 2695 s.
    assert.equal(u.total_time_seconds!.walltime, 2695);
    assert.equal(u.total_time_seconds!.alloc_gputime, 2 * 2695);
    assert.equal(u.total_time_seconds!.alloc_gpumemtime, 2695);
  });

  it('counts the full duration of a job that ended before the window', () => {
    const u = units[2]!;
    assert.equal(u.total_time_seconds!.walltime, 3600);
    assert.equal(u.state, 'FAILED');
    assert.equal(u.tags!.exit_code, '3:0');
    assert.equal(u.tags!.nodelistexp, 'cn01|cn02|cn05|login1');
  });

  it('garbage output gives no units instead of partial rows', () => {
    const junk = 'sacct: error: slurmdbd: Connection refused\n\u0000\u00ff||||\n<html>502</html>\n';
    assert.deepEqual(parseSacct(junk, { clusterId: 'c', timeZone: 'UTC', start, end }), []);
  });

  it('renders times in the configured zone', () => {
    const [u] = parseSacct(readFileSync(FIXTURE, 'utf8'), { clusterId: 'c', timeZone: 'UTC', start, end });
    assert.equal(u!.created_at, '2024-05-06T07:59:12+0000');
  });
});

describe('SLURM value parsers', () => {
  it('memory: multiplies before truncating; no unit means MiB', () => {
    assert.equal(parseSlurmMemory('320.5G'), Math.trunc(320.5 * 1024 ** 3));
    assert.equal(parseSlurmMemory('64M'), 64 * 1024 ** 2);
    assert.equal(parseSlurmMemory('2048'), 2048 * 1024 ** 2);
    assert.equal(parseSlurmMemory('1T'), 1024 ** 4);
    assert.equal(parseSlurmMemory('512K'), 512 * 1024);
    assert.equal(parseSlurmMemory('junk'), 0);
  });

  it('alloctres: untyped gres and missing keys', () => {
    assert.deepEqual(parseAllocTres('cpu=2,gres/gpu=1,node=1'), {
      nodes: 1,
      cpus: 2,
      mem: 0,
      gpus: 1,
      billing: 0,
    });
    assert.deepEqual(parseAllocTres(''), { nodes: 0, cpus: 0, mem: 0, gpus: 0, billing: 0 });
  });

  it('elapsed in window', () => {
    assert.equal(slurmElapsedInWindow(0, 0, 1000, 5000), 0);
    assert.equal(slurmElapsedInWindow(2000, 0, 1000, 5000), 3);
    assert.equal(slurmElapsedInWindow(0 + 500, 4000, 1000, 5000), 3);
  });

  it('host lists', () => {
    assert.deepEqual(expandHostlist('r[1-2]n[01-02],x'), ['r1n01', 'r1n02', 'r2n01', 'r2n02', 'x']);
    assert.deepEqual(expandHostlist('vm'), ['vm']);
    assert.deepEqual(expandHostlist('bad[a-b]'), ['bad[a-b]']);
  });

  it('sacct argv is the exact command of the spec', () => {
    assert.equal(
      sacctArgs('2024-05-06T10:00:00', '2024-05-06T11:00:00').join(' '),
      '-D -X --noheader --allusers --parsable2 --format jobidraw,partition,qos,account,group,gid,user,uid,submit,start,end,elapsed,elapsedraw,exitcode,state,alloctres,nodelist,jobname,workdir --state CANCELLED,COMPLETED,FAILED,NODE_FAIL,PREEMPTED,TIMEOUT,RUNNING --starttime 2024-05-06T10:00:00 --endtime 2024-05-06T11:00:00',
    );
  });
});

describe('SLURM associations', () => {
  it('builds flat users and projects, skipping root and empty entries', () => {
    const r = parseAssociations(
      'root|\nroot|root\nacc1|\nacc1|usr1\nacc1|usr3\nacc2|usr3\nacc2|usr2\nacc2|usr2\nx\n',
      'c1',
    );
    assert.deepEqual(
      r.projects.map((p) => [p.name, p.users]),
      [
        ['acc1', ['usr1', 'usr3']],
        ['acc2', ['usr2', 'usr3']],
      ],
    );
    assert.deepEqual(
      r.users.map((u) => [u.name, u.projects]),
      [
        ['usr1', ['acc1']],
        ['usr2', ['acc2']],
        ['usr3', ['acc1', 'acc2']],
      ],
    );
    assert.equal(r.users[0]!.cluster_id, 'c1');
    assert.equal(r.users[0]!.resource_manager, 'slurm');
  });
});

describe('SLURM command execution', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ceems-slurm-'));
  const script = (name: string, body: string) => {
    const p = join(dir, name);
    writeFileSync(p, `#!/bin/sh\n${body}\n`);
    chmodSync(p, 0o755);
    return p;
  };

  const ctx = () => ({
    logger: createLogger({ level: 'error' }),
    timeZone: 'UTC',
    configDir: dir,
    updateIntervalMs: 1,
  });
  const slurmBin = (sacct: string) => {
    const bin = mkdtempSync(join(tmpdir(), 'ceems-slurm-bin-'));
    writeFileSync(join(bin, 'sacct'), `#!/bin/sh\n${sacct}\n`);
    chmodSync(join(bin, 'sacct'), 0o755);
    return bin;
  };

  it('kills a sacct that hangs and names the timeout', async () => {
    const m = await SlurmManager.create({ id: 'c', cli: { path: slurmBin('sleep 30') } }, ctx(), {
      commandTimeoutMs: 300,
    });
    const t0 = Date.now();
    await assert.rejects(m.fetchUnits(0, 1000), /sacct .* timed out after 300 ms/);
    assert.ok(Date.now() - t0 < 5000);
  });

  it('reports the exit status and error output of a failing sacct', async () => {
    const m = await SlurmManager.create(
      {
        id: 'c',
        cli: { path: slurmBin('echo "sacct: error: Problem talking to the database" >&2; exit 1') },
      },
      ctx(),
    );
    await assert.rejects(m.fetchUnits(0, 1000), /exited with status 1: sacct: error: Problem talking/);
  });

  it('uses sudo -E when unprivileged and sudo works, with the spec environment', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'ceems-slurm-bin-'));
    writeFileSync(join(bin, 'sacct'), '#!/bin/sh\necho "ARGS $* TF=$SLURM_TIME_FORMAT X=$X"\n');
    writeFileSync(join(bin, 'sacctmgr'), '#!/bin/sh\necho "acc9|u9"; echo "HOME=$HOME" >&2\n');
    chmodSync(join(bin, 'sacct'), 0o755);
    chmodSync(join(bin, 'sacctmgr'), 0o755);
    const log = join(dir, 'sudo.log');
    const sudo = script('sudo', `echo "$@" >> ${log}; [ "$1" = "-E" ] && shift; exec "$@"`);
    const logger = createLogger({ level: 'error' });
    const ctx = { logger, timeZone: 'UTC', configDir: dir, updateIntervalMs: 60_000 };
    const m = await SlurmManager.create(
      { id: 'c', cli: { path: bin, environment_variables: { X: 'y' } } },
      ctx,
      { sudo, privileged: false },
    );
    assert.equal(m.mode, 'sudo');
    const up = await m.fetchUsersProjects(Date.now());
    assert.deepEqual(
      up.projects.map((p) => p.name),
      ['acc9'],
    );
    const units = await m.fetchUnits(0, 1000);
    assert.deepEqual(units, []);
    const calls = readFileSync(log, 'utf8').trim().split('\n');
    assert.equal(calls[0], `${bin}/sacct --help`);
    assert.match(calls[1]!, new RegExp(`^-E ${bin}/sacctmgr --parsable2 --noheader list associations`));
    assert.match(calls[2]!, new RegExp(`^-E ${bin}/sacct -D -X`));
  });

  it('falls back to the current user when sudo fails', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'ceems-slurm-bin-'));
    writeFileSync(join(bin, 'sacct'), '#!/bin/sh\nexit 0\n');
    chmodSync(join(bin, 'sacct'), 0o755);
    const nosudo = script('nosudo', 'echo "a password is required" >&2; exit 1');
    const ctx = {
      logger: createLogger({ level: 'error' }),
      timeZone: 'UTC',
      configDir: dir,
      updateIntervalMs: 1,
    };
    const m = await SlurmManager.create({ id: 'c', cli: { path: bin } }, ctx, {
      sudo: nosudo,
      privileged: false,
    });
    assert.equal(m.mode, 'user');
  });

  it('as an unprivileged user with cap_setuid/cap_setgid, runs the SLURM tools as uid 0', () => {
    const bin = mkdtempSync(join(tmpdir(), 'ceems-slurm-caps-'));
    chmodSync(bin, 0o755);
    writeFileSync(join(bin, 'sacct'), '#!/bin/sh\nexit 0\n');
    writeFileSync(join(bin, 'sacctmgr'), '#!/bin/sh\necho "acc|u$(id -u)"\n');
    chmodSync(join(bin, 'sacct'), 0o755);
    chmodSync(join(bin, 'sacctmgr'), 0o755);
    const child = join(import.meta.dirname, '../../../fixtures/api-data/slurm-mode-child.ts');
    const run = (caps: string[]) =>
      JSON.parse(
        execFileSync(
          'setpriv',
          [
            '--reuid=65534',
            '--regid=65534',
            '--clear-groups',
            ...caps,
            process.execPath,
            '--import',
            'tsx',
            child,
            bin,
          ],
          { encoding: 'utf8', cwd: join(import.meta.dirname, '../../../..') },
        ),
      );
    assert.deepEqual(run(['--inh-caps=+setuid,+setgid', '--ambient-caps=+setuid,+setgid']), {
      uid: 65534,
      mode: 'root',
      sacctmgrUid: ['u0'],
    });
    // Without the capabilities and without sudo: own user, own view.
    assert.deepEqual(run([]), { uid: 65534, mode: 'user', sacctmgrUid: ['u65534'] });
  });

  it('rejects a cli.path that does not exist', async () => {
    const ctx = {
      logger: createLogger({ level: 'error' }),
      timeZone: 'UTC',
      configDir: dir,
      updateIntervalMs: 1,
    };
    await assert.rejects(
      SlurmManager.create({ id: 'c', cli: { path: '/nonexistent/slurm' } }, ctx),
      /cli.path '\/nonexistent\/slurm' does not exist/,
    );
  });
});
