// The SLURM resource manager and the collection cycle against the real SLURM of the testbed
// (shared/testbed/slurm): jobs of several users/accounts in every state, stored units compared field by
// field with sacct's own view, then a second cycle turning running into completed without duplicates.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Collector } from '../../src/api/cycle/index.js';
import { CeemsDb } from '../../src/api/db/index.js';
import { SlurmManager } from '../../src/api/resource/slurm.js';
import { formatDatetime, formatDatetimezone } from '../../src/api/timefmt.js';
import { createLogger } from '../../src/common/logger.js';
import { plain } from '../helpers/rows.js';
import { submitJob } from '../helpers/slurm.js';
import { waitFor } from '../helpers/wait.js';

const JOBDIR = process.env.CEEMS_TESTBED_SLURM_JOBDIR;
const TZ = 'Europe/Paris';

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', env: process.env, timeout: 30_000 });
}

function submit(user: string, account: string, script: string, extra: string[] = []): string {
  return submitJob(user, account, script, { name: `ceems-api-${user}`, extra });
}

interface SacctJob {
  jobid: string;
  account: string;
  user: string;
  group: string;
  uid: number;
  gid: number;
  state: string;
  submit: number;
  start: number;
  end: number;
  elapsed: string;
  elapsedRaw: number;
  ncpus: number;
  nnodes: number;
  mem: string;
  nodelist: string;
  partition: string;
  qos: string;
  exitcode: string;
  jobname: string;
  workdir: string;
}

/** Our independent view of the jobs: sacct with epoch times and other columns than the manager uses. */
function sacctView(ids: string[]): Map<string, SacctJob> {
  const out = execFileSync(
    'sacct',
    [
      '-a',
      '-X',
      '-P',
      '-n',
      '-j',
      ids.join(','),
      '--format',
      'jobidraw,account,user,group,uid,gid,state,submit,start,end,elapsed,elapsedraw,ncpus,nnodes,alloctres,nodelist,partition,qos,exitcode,jobname,workdir',
    ],
    { encoding: 'utf8', env: { ...process.env, SLURM_TIME_FORMAT: '%s' } },
  );
  const jobs = new Map<string, SacctJob>();
  for (const line of out.trim().split('\n')) {
    const f = line.split('|');
    const epoch = (s: string) => (/^\d+$/.test(s) ? Number(s) * 1000 : 0);
    jobs.set(f[0]!, {
      jobid: f[0]!,
      account: f[1]!,
      user: f[2]!,
      group: f[3]!,
      uid: Number(f[4]),
      gid: Number(f[5]),
      state: f[6]!,
      submit: epoch(f[7]!),
      start: epoch(f[8]!),
      end: epoch(f[9]!),
      elapsed: f[10]!,
      elapsedRaw: Number(f[11]),
      ncpus: Number(f[12]),
      nnodes: Number(f[13]),
      mem: /mem=([^,]+)/.exec(f[14]!)?.[1] ?? '',
      nodelist: f[15]!,
      partition: f[16]!,
      qos: f[17]!,
      exitcode: f[18]!,
      jobname: f[19]!,
      workdir: f[20]!,
    });
  }
  return jobs;
}

// Waits are long because other tests share the testbed's two CPUs (their jobs can hold both for a while).
const FINAL = /^(COMPLETED|FAILED|CANCELLED|TIMEOUT)/;

describe('SLURM manager and collection cycle on the real testbed', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ceems-api-slurm-'));
  const submitted: string[] = [];
  /** The job that runs during the first cycle and has completed by the second. */
  let runningJob = '';
  let db: CeemsDb;
  let collector: Collector;
  let t0: number;

  before(async () => {
    assert.ok(JOBDIR, 'SLURM testbed env missing: eval "$(cat /tmp/ceems-testbed/slurm/env.sh)" first');
    t0 = Date.now();
    db = CeemsDb.open(dir);
    const logger = createLogger({ level: 'error' });
    const manager = await SlurmManager.create(
      {
        id: 'testbed',
        cli: { path: '/usr/bin', environment_variables: { SLURM_CONF: process.env.SLURM_CONF! } },
      },
      { logger, timeZone: TZ, configDir: dir, updateIntervalMs: 60_000 },
    );
    collector = new Collector({
      db,
      logger,
      clusters: [{ manager, updaters: [] }],
      timeZone: TZ,
      updateIntervalMs: 60_000,
      maxUpdateIntervalMs: 3_600_000,
      updateFrom: formatDatetime(t0 - 60_000, TZ),
      windowPauseMs: 0,
    });
  });

  after(() => {
    if (submitted.length > 0) sh('scancel', submitted);
    db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores completed, failed, cancelled, array and running jobs as sacct sees them; pending jobs are not units', async () => {
    const completed = submit('usr1', 'acc1', 'sleep 1');
    const failed = submit('usr2', 'acc2', 'exit 3');
    const cancelled = submit('usr3', 'acc1', 'sleep 120');
    const array = submit('usr2', 'acc2', 'true', ['--array=1-2']);
    submitted.push(completed, failed, cancelled, array);
    await waitFor(
      'job to run',
      150_000,
      () => sh('squeue', ['-h', '-j', cancelled, '-o', '%T']).trim() === 'RUNNING',
      500,
    );
    sh('scancel', [cancelled]);
    // Array tasks have their own raw job ids (the uuids), listed under the array id.
    const tasks = await waitFor(
      'array tasks in accounting',
      150_000,
      () => {
        const ids = sh('sacct', ['-n', '-X', '-P', '-j', array, '--format', 'jobidraw']).trim().split('\n');
        return ids.length === 2 && ids.every((id) => /^\d+$/.test(id)) ? ids : undefined;
      },
      500,
    );
    await waitFor(
      'jobs to be accounted as finished',
      150_000,
      () => {
        const v = sacctView([completed, failed, cancelled, ...tasks]);
        return [...v.values()].every((j) => FINAL.test(j.state)) && v.size === 5;
      },
      500,
    );
    // Other tests share the 2-CPU testbed: the pending job waits for its begin time, which no other job
    // can take away, and the running job gets time to be scheduled.
    const running = submit('usr3', 'acc2', 'sleep 8');
    const pending = submit('usr1', 'acc1', 'sleep 1', ['--begin=now+1hour']);
    submitted.push(running, pending);
    runningJob = running;
    await waitFor(
      'job running and job pending',
      150_000,
      () => {
        const st = sh('squeue', ['-h', '-j', [running, pending].join(','), '-o', '%i %T']);
        return st.includes(`${running} RUNNING`) && st.includes(`${pending} PENDING`);
      },
      500,
    );
    await waitFor(
      'running job in accounting',
      150_000,
      () => sacctView([running]).get(running)?.state === 'RUNNING',
      500,
    );

    const results = await collector.runOnce();
    assert.deepEqual(
      results.map((r) => r.error),
      [undefined],
    );
    const ours = [completed, failed, cancelled, running, ...tasks];
    const view = sacctView(ours);
    const rows = db.db
      .prepare(`SELECT * FROM units WHERE uuid IN (${ours.map(() => '?').join(',')}) ORDER BY uuid`)
      .all(...ours) as Array<Record<string, unknown>>;
    assert.deepEqual(rows.map((r) => r.uuid).sort(), [...ours].sort());
    assert.equal(
      (db.db.prepare('SELECT COUNT(*) AS n FROM units WHERE uuid = ?').get(pending) as { n: number }).n,
      0,
    );

    const windowEnd = results[0]!.end;
    for (const r of rows) {
      const j = view.get(r.uuid as string)!;
      const when = (ms: number, unknown: string) => (ms === 0 ? unknown : formatDatetimezone(ms, TZ));
      assert.equal(r.cluster_id, 'testbed');
      assert.equal(r.resource_manager, 'slurm');
      assert.equal(r.name, j.jobname);
      assert.equal(r.project, j.account);
      assert.equal(r.username, j.user);
      assert.equal(r.groupname, j.group);
      assert.equal(r.state, j.state, `state of ${j.jobid}`);
      assert.equal(r.created_at_ts, j.submit);
      assert.equal(r.started_at_ts, j.start);
      assert.equal(r.ended_at_ts, j.end);
      assert.equal(r.created_at, when(j.submit, 'Unknown'));
      assert.equal(r.started_at, when(j.start, 'Unknown'));
      assert.equal(r.ended_at, when(j.end, 'Unknown'));
      if (j.end > 0) assert.equal(r.elapsed, j.elapsed);
      const alloc = JSON.parse(r.allocation as string);
      assert.equal(alloc.cpus, j.ncpus);
      assert.equal(alloc.nodes, j.nnodes);
      assert.equal(alloc.mem, 64 * 1024 * 1024);
      assert.equal(j.mem, '64M');
      assert.equal(alloc.gpus, 0);
      assert.deepEqual(JSON.parse(r.tags as string), {
        uid: j.uid,
        gid: j.gid,
        partition: j.partition,
        qos: j.qos,
        exit_code: j.exitcode,
        nodelist: j.nodelist,
        nodelistexp: j.nodelist,
        workdir: j.workdir,
      });
      const tts = JSON.parse(r.total_time_seconds as string);
      const walltime = j.end > 0 ? j.elapsedRaw : (windowEnd - j.start) / 1000;
      assert.equal(tts.walltime, walltime, `walltime of ${j.jobid}`);
      assert.equal(tts.alloc_cputime, walltime * j.ncpus);
      assert.equal(tts.alloc_cpumemtime, walltime * 64);
      assert.equal(r.num_updates, 1);
      assert.equal(r.ignore, 0);
    }
    assert.match(view.get(cancelled)!.state, /^CANCELLED by \d+$/);
    assert.equal(view.get(failed)!.state, 'FAILED');
    assert.equal(view.get(failed)!.exitcode, '3:0');

    // Users and projects: the associations the testbed created.
    const projects = plain(
      db.db.prepare("SELECT name, users FROM projects WHERE cluster_id = 'testbed' ORDER BY name").all(),
    );
    assert.deepEqual(projects, [
      { name: 'acc1', users: '["usr1","usr3"]' },
      { name: 'acc2', users: '["usr2","usr3"]' },
    ]);
    const users = plain(
      db.db.prepare("SELECT name, projects FROM users WHERE cluster_id = 'testbed' ORDER BY name").all(),
    );
    assert.deepEqual(users, [
      { name: 'usr1', projects: '["acc1"]' },
      { name: 'usr2', projects: '["acc2"]' },
      { name: 'usr3', projects: '["acc1","acc2"]' },
    ]);
  });

  it('a second cycle turns the running job into completed without duplicates; usage stays consistent', async () => {
    const running = runningJob;
    await waitFor(
      'running job to complete',
      150_000,
      () => sacctView([running]).get(running)!.state === 'COMPLETED',
      500,
    );
    await new Promise((r) => setTimeout(r, 1000));
    const results = await collector.runOnce();
    assert.deepEqual(
      results.map((r) => r.error),
      [undefined],
    );
    const j = sacctView([running]).get(running)!;
    const rows = db.db.prepare('SELECT * FROM units WHERE uuid = ?').all(running) as Array<
      Record<string, unknown>
    >;
    assert.equal(rows.length, 1);
    const r = rows[0]!;
    assert.equal(r.state, 'COMPLETED');
    assert.equal(r.ended_at_ts, j.end);
    assert.equal(r.ended_at, formatDatetimezone(j.end, TZ));
    assert.equal(r.elapsed, j.elapsed);
    assert.equal(r.num_updates, 2);
    // The two windows' parts add up to the job's whole run time.
    assert.equal(JSON.parse(r.total_time_seconds as string).walltime, j.elapsedRaw);

    // No (cluster, uuid, started_at) appears twice, and every usage row is the sum of its units.
    const dup = db.db
      .prepare('SELECT uuid, COUNT(*) AS n FROM units GROUP BY cluster_id, uuid HAVING n > 1')
      .all();
    assert.deepEqual(dup, []);
    const usage = db.db.prepare('SELECT * FROM usage').all();
    assert.ok(usage.length >= 3);
    for (const u of usage) {
      const units = db.db
        .prepare('SELECT total_time_seconds FROM units WHERE cluster_id = ? AND username = ? AND project = ?')
        .all(u.cluster_id, u.username, u.project) as Array<{ total_time_seconds: string }>;
      const sum = units.reduce((s, x) => s + JSON.parse(x.total_time_seconds).walltime, 0);
      assert.equal(
        JSON.parse(u.total_time_seconds as string).walltime,
        sum,
        `usage of ${u.username}/${u.project}`,
      );
      assert.equal(u.num_units, units.length, `num_units of ${u.username}/${u.project}`);
    }
  });
});
