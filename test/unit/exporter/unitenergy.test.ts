import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { encode } from '../../../src/common/exposition.js';
import { createLogger } from '../../../src/common/logger.js';
import { type CgroupVersion, managerLayout } from '../../../src/exporter/cgroup/layout.js';
import { FamilySet } from '../../../src/exporter/collector.js';
import {
  formatReading,
  parseReading,
  readCounters,
  sourceJoules,
} from '../../../src/exporter/unitenergy/counters.js';
import { parseSpoolFile } from '../../../src/exporter/unitenergy/spool.js';
import { UnitEnergyTracker } from '../../../src/exporter/unitenergy/tracker.js';
import { FakeEnergySysfs, RAPL_MAX_UJ } from '../../helpers/energy.js';
import { ROOT } from '../../helpers/process.js';
import { waitFor } from '../../helpers/wait.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'ceems-unitenergy-'));
  dirs.push(d);
  return d;
};

/** A tracker on a fake SLURM cgroup tree of `version` and a fake sysfs; its debug log lines. */
function setUp(
  version: CgroupVersion,
  opts: { retentionMs?: number; spoolDir?: string; now?: () => number } = {},
) {
  const root = tempDir();
  const cgroupfs = join(root, 'cgroup');
  // v2: jobs under system.slice/slurmstepd.scope; v1: slurm/uid_N/job_M in every controller hierarchy
  const jobParent =
    version === 'v2' ? join(cgroupfs, 'system.slice/slurmstepd.scope') : join(cgroupfs, 'cpuacct/slurm');
  mkdirSync(jobParent, { recursive: true });
  if (version === 'v1') mkdirSync(join(cgroupfs, 'cpuset/slurm'), { recursive: true });
  const sysfs = new FakeEnergySysfs(join(root, 'sys'), 4, { rapl: true, cray: true, hwmon: true });
  const logs: string[] = [];
  const logger = createLogger({ level: 'debug', format: 'json', write: (l) => logs.push(JSON.parse(l).msg) });
  const tracker = new UnitEnergyTracker({
    layout: managerLayout('slurm', { cgroupfs, version, activeSubsystem: 'cpuacct' }),
    procfs: join(root, 'proc'),
    sysfs: sysfs.sysfs,
    hostname: 'node1',
    logger,
    retentionMs: opts.retentionMs ?? 1_800_000,
    spoolDir: opts.spoolDir ?? '',
    now: opts.now,
  });
  /** Creates a job directory with a cpuset of `cpus` CPUs, as slurmstepd does. */
  const startJob = (id: string, cpus: string) => {
    if (version === 'v2') {
      mkdirSync(join(jobParent, `job_${id}`));
      writeFileSync(join(jobParent, `job_${id}`, 'cpuset.cpus.effective'), `${cpus}\n`);
    } else {
      mkdirSync(join(cgroupfs, 'cpuset/slurm/uid_1000', `job_${id}`), { recursive: true });
      writeFileSync(join(cgroupfs, 'cpuset/slurm/uid_1000', `job_${id}`, 'cpuset.cpus'), `${cpus}\n`);
      mkdirSync(join(jobParent, 'uid_1000', `job_${id}`), { recursive: true });
    }
  };
  const endJob = (id: string) => {
    const dir = version === 'v2' ? join(jobParent, `job_${id}`) : join(jobParent, 'uid_1000', `job_${id}`);
    for (const f of readdirSync(dir)) rmSync(join(dir, f));
    rmdirSync(dir);
  };
  const scrape = () => {
    const out = new FamilySet();
    tracker.update(out);
    return encode(out.families.values());
  };
  return { tracker, sysfs, logs, startJob, endJob, scrape, root };
}

const lines = (text: string) => text.split('\n').filter((l) => l.startsWith('ceems_'));

describe('node energy counters', () => {
  it('reads RAPL package and DRAM (not core), Cray and hwmon; undoes one RAPL wrap', () => {
    const f = new FakeEnergySysfs(join(tempDir(), 'sys'), 2, { rapl: true, cray: true, hwmon: true });
    f.advance({ packageUj: RAPL_MAX_UJ - 1_000_000, dramUj: 5_000_000, crayJ: 100, hwmonUj: 7_000_000 });
    const a = readCounters(f.sysfs);
    assert.deepEqual(
      [...a.values()].map((v) => v.source).sort(),
      ['cray', 'hwmon', 'rapl', 'rapl'],
      'package-0 and dram, not the core subzone',
    );
    // the package counter passes its range: 3 J after the wrap, 1 J before it
    f.advance({ packageUj: 4_000_000, dramUj: 2_000_000, crayJ: 10.5, hwmonUj: 1_500_000 });
    assert.deepEqual(Object.fromEntries(sourceJoules(a, readCounters(f.sysfs))), {
      rapl: 6,
      cray: 10.5,
      hwmon: 1.5,
    });
    // a reading survives the hook scripts' text form
    assert.deepEqual(parseReading(formatReading(a), 'x'), a);
    assert.throws(() => parseReading('rapl /x notanumber', 'spool/1.start'), /spool\/1.start:1: expected/);
    assert.throws(
      () => parseSpoolFile('rapl /x 1\n', 'spool/2.end'),
      /spool\/2.end: no 'time <unix ms>' line/,
    );
    assert.deepEqual(readCounters(join(tempDir(), 'empty')), new Map(), 'a node without counters');
  });
});

for (const version of ['v2', 'v1'] as const) {
  describe(`unit start and end by inotify on cgroup ${version}`, () => {
    it("exports the node's counter delta over the job's life and its cpuset share", async () => {
      const t = setUp(version);
      try {
        t.sysfs.advance({ packageUj: 1_000_000, crayJ: 1 }); // before the job: not counted
        t.startJob('42', '0-1');
        await waitFor('the job start noticed without a scrape', 5000, () =>
          t.logs.includes('unit energy counter: unit started'),
        );
        // the package counter wraps (1 J → 0.5 J raw) before the scrape's reading: its range − 0.5 J
        t.sysfs.advance({ packageUj: RAPL_MAX_UJ - 500_000, dramUj: 500_000 });
        assert.deepEqual(lines(t.scrape()), [], 'nothing while the job runs');
        t.sysfs.advance({ packageUj: 2_000_000, crayJ: 20, hwmonUj: 3_000_000 });
        t.endJob('42');
        await waitFor(
          'the job end noticed without a scrape',
          5000,
          () => t.tracker.endedUnits().length === 1,
        );
        t.sysfs.advance({ packageUj: 9_000_000, crayJ: 9 }); // after the job: not counted
        assert.deepEqual(lines(t.scrape()), [
          'ceems_compute_unit_energy_counter_cpu_share_ratio{hostname="node1",manager="slurm",uuid="42"} 0.5',
          'ceems_compute_unit_energy_counter_joules{hostname="node1",manager="slurm",source="cray",uuid="42"} 20',
          'ceems_compute_unit_energy_counter_joules{hostname="node1",manager="slurm",source="hwmon",uuid="42"} 3',
          // package: range − 0.5 J + 2 J, DRAM 0.5 J
          `ceems_compute_unit_energy_counter_joules{hostname="node1",manager="slurm",source="rapl",uuid="42"} ${(RAPL_MAX_UJ + 2_000_000) / 1e6}`,
          `ceems_compute_unit_energy_counter_seconds{hostname="node1",manager="slurm",uuid="42"} ${t.tracker.endedUnits()[0]!.seconds}`,
        ]);
      } finally {
        t.tracker.stop();
      }
    });
  });
}

describe('unit energy tracker', () => {
  it('without watches, the walk of each scrape notices start and end; running units at start-up are never exported', async () => {
    let now = 1_000_000;
    const t = setUp('v2', { retentionMs: 60_000, now: () => now });
    t.tracker.stop(); // no inotify from here on, scrapes included
    t.startJob('7', '0');
    t.scrape();
    t.sysfs.advance({ packageUj: 4_000_000 });
    t.endJob('7');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(t.tracker.endedUnits(), [], 'no watch noticed the end');
    now += 10_000;
    const text = t.scrape();
    assert.ok(
      lines(text).includes(
        'ceems_compute_unit_energy_counter_joules{hostname="node1",manager="slurm",source="rapl",uuid="7"} 4',
      ),
      text,
    );
    assert.ok(
      lines(text).includes(
        'ceems_compute_unit_energy_counter_seconds{hostname="node1",manager="slurm",uuid="7"} 10',
      ),
    );
    // a job already running when the tracker starts has no start reading
    t.startJob('8', '0');
    const late = setUp('v2');
    late.tracker.stop();
    assert.deepEqual(late.tracker.endedUnits(), []);
    // retention: gone once ended longer ago than 60 s
    now += 60_001;
    assert.deepEqual(lines(t.scrape()), []);
  });

  it('reads the SLURM hook scripts’ spool (real scripts, fake sysfs); hook readings win', () => {
    const spool = join(tempDir(), 'spool');
    const t = setUp('v2', { spoolDir: spool });
    t.tracker.stop();
    const hook = (script: string, env: Record<string, string>) =>
      execFileSync(join(ROOT, 'etc/slurm', script), {
        env: { PATH: process.env.PATH, CEEMS_ENERGY_SPOOL: spool, CEEMS_ENERGY_SYSFS: t.sysfs.sysfs, ...env },
        encoding: 'utf8',
      });
    // job 50: the hooks only (its cgroup never seen); SLURM_JOB_CPUS_PER_NODE gives 1 of the 4 CPUs
    hook('prolog-energy.sh', { SLURM_JOB_ID: '50', SLURM_JOB_CPUS_PER_NODE: '1(x2)' });
    // job 51: seen by the tracker with 2 CPUs, and by the hooks
    t.startJob('51', '2-3');
    t.scrape();
    hook('prolog-energy.sh', { SLURM_JOB_ID: '51' });
    t.sysfs.advance({ packageUj: 8_000_000, crayJ: 4 });
    hook('epilog-energy.sh', { SLURM_JOB_ID: '50' });
    hook('epilog-energy.sh', { SLURM_JOB_ID: '51' });
    t.sysfs.advance({ packageUj: 1_000_000 }); // the tracker's own end reading sees 1 J more
    t.endJob('51');
    // a bad job id is refused without failing the job (a failing prolog drains the node)
    assert.equal(hook('prolog-energy.sh', { SLURM_JOB_ID: 'x; rm' }), '');
    const out = lines(t.scrape());
    assert.deepEqual(
      out.filter((l) => !l.includes('_seconds')),
      [
        'ceems_compute_unit_energy_counter_cpu_share_ratio{hostname="node1",manager="slurm",uuid="50"} 0.25',
        'ceems_compute_unit_energy_counter_cpu_share_ratio{hostname="node1",manager="slurm",uuid="51"} 0.5',
        'ceems_compute_unit_energy_counter_joules{hostname="node1",manager="slurm",source="cray",uuid="50"} 4',
        'ceems_compute_unit_energy_counter_joules{hostname="node1",manager="slurm",source="cray",uuid="51"} 4',
        'ceems_compute_unit_energy_counter_joules{hostname="node1",manager="slurm",source="hwmon",uuid="50"} 0',
        'ceems_compute_unit_energy_counter_joules{hostname="node1",manager="slurm",source="hwmon",uuid="51"} 0',
        'ceems_compute_unit_energy_counter_joules{hostname="node1",manager="slurm",source="rapl",uuid="50"} 8',
        'ceems_compute_unit_energy_counter_joules{hostname="node1",manager="slurm",source="rapl",uuid="51"} 8',
      ],
    );
    assert.deepEqual(readdirSync(spool), [], 'read readings are removed');
  });
});
