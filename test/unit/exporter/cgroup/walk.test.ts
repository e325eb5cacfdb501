// The walker's kept directory structure: every change between two walks (a job or step directory created,
// removed, removed and replaced in the same scrape interval) is seen by the next walk, which always finds
// what a fresh walk of the tree finds. On tmpfs, whose directories count their subdirectories in their link
// count like kernfs (cgroupfs) does.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CgroupLayout, managerLayout } from '../../../../src/exporter/cgroup/layout.js';
import { type CgroupUnit, discoverUnits, UnitWalker } from '../../../../src/exporter/cgroup/walk.js';

const SHM = existsSync('/dev/shm') && statfsSync('/dev/shm').type === 0x01021994 ? '/dev/shm' : tmpdir();

/** A SLURM v2 tree: system.slice/slurmstepd.scope/job_<id>/... with one live PID per directory. */
class Tree {
  readonly root = mkdtempSync(join(SHM, 'ceems-walk-'));
  readonly cgroupfs = join(this.root, 'cgroup');
  readonly procfs = join(this.root, 'proc');
  readonly scope = join(this.cgroupfs, 'system.slice', 'slurmstepd.scope');
  private nextPid = 1000;

  constructor() {
    mkdirSync(this.scope, { recursive: true });
    mkdirSync(this.procfs);
  }

  /** Creates `rel` below the scope (parents included), each new directory with one live PID. */
  add(rel: string): void {
    let dir = this.scope;
    for (const part of rel.split('/')) {
      dir = join(dir, part);
      if (existsSync(dir)) continue;
      mkdirSync(dir);
      const pid = this.nextPid++;
      mkdirSync(join(this.procfs, String(pid)));
      writeFileSync(join(dir, 'cgroup.procs'), `${pid}\n`);
    }
  }

  remove(rel: string): void {
    rmSync(join(this.scope, rel), { recursive: true });
  }

  layout(): CgroupLayout {
    return managerLayout('slurm', { cgroupfs: this.cgroupfs, version: 'v2', activeSubsystem: 'cpuacct' });
  }
}

const view = (units: CgroupUnit[]) =>
  units.map((u) => ({ id: u.id, rel: u.rel, children: u.children, pids: u.pids }));

describe('unit walker with a kept directory structure', () => {
  let t: Tree;
  let walker: UnitWalker;
  let layout: ReturnType<Tree['layout']>;
  before(() => {
    t = new Tree();
    t.add('job_1/step_0/user/task_0');
    t.add('job_2/step_batch');
    layout = t.layout(); // roots are found once, at start-up
    walker = new UnitWalker(layout, t.procfs);
  });
  after(() => rmSync(t.root, { recursive: true, force: true }));

  /** The kept walk must equal a fresh walk of the same tree. */
  const check = (what: string) => {
    const kept = view(walker.walk());
    assert.deepEqual(kept, view(discoverUnits(layout, t.procfs)), what);
    return kept;
  };

  it('finds the units of a fresh walk', () => {
    assert.deepEqual(
      check('first walk').map((u) => u.id),
      ['1', '2'],
    );
  });

  it('sees a job directory created since the last walk', () => {
    t.add('job_3/step_extern');
    assert.deepEqual(
      check('created').map((u) => u.id),
      ['1', '2', '3'],
    );
  });

  it('sees a job directory removed since the last walk', () => {
    t.remove('job_2');
    assert.deepEqual(
      check('removed').map((u) => u.id),
      ['1', '3'],
    );
  });

  it('sees one job replaced by another between two walks (same link count)', () => {
    t.remove('job_3');
    t.add('job_4/step_0');
    assert.deepEqual(
      check('replaced').map((u) => u.id),
      ['1', '4'],
    );
  });

  it('sees a step created, removed and replaced inside a kept job', () => {
    t.add('job_1/step_1/user/task_0');
    assert.equal(check('step created')[0]!.children.length, 6);
    t.remove('job_1/step_0');
    check('step removed');
    t.remove('job_1/step_1');
    t.add('job_1/step_2');
    assert.deepEqual(check('step replaced')[0]!.children, ['/system.slice/slurmstepd.scope/job_1/step_2']);
  });

  it('sees a directory removed and created again under the same name with other subdirectories', () => {
    t.remove('job_4');
    t.add('job_4/step_batch');
    t.add('job_4/step_extern');
    assert.deepEqual(check('recreated')[1]!.children, [
      '/system.slice/slurmstepd.scope/job_4/step_batch',
      '/system.slice/slurmstepd.scope/job_4/step_extern',
    ]);
  });

  it('reads every unit’s PIDs on every walk (they are data, not structure)', () => {
    writeFileSync(join(t.scope, 'job_1', 'cgroup.procs'), '');
    const before = check('pids')[0]!.pids.length;
    writeFileSync(join(t.scope, 'job_1', 'cgroup.procs'), `${1}\n`);
    mkdirSync(join(t.procfs, '1'), { recursive: true });
    assert.equal(check('pid added')[0]!.pids.length, before + 1);
  });

  it('sees the scope directory itself removed and created again', () => {
    rmSync(t.scope, { recursive: true });
    assert.deepEqual(check('scope gone'), []);
    mkdirSync(t.scope);
    t.add('job_5');
    assert.deepEqual(
      check('scope back').map((u) => u.id),
      ['5'],
    );
  });

  it('equals a fresh walk after every step of random creations and removals', () => {
    const rand = (() => {
      let s = 42;
      return () => {
        s = (s * 1103515245 + 12345) & 0x7fffffff;
        return s / 0x7fffffff;
      };
    })();
    const paths = [
      'job_10',
      'job_11',
      'job_12',
      'job_10/step_0',
      'job_10/step_0/user',
      'job_10/step_1',
      'job_11/step_batch',
      'job_11/step_extern',
      'job_12/step_0/user/task_0',
      'job_12/step_0/user/task_1',
    ];
    for (let step = 0; step < 300; step++) {
      // several changes between two walks, as between two scrapes
      for (let k = 0; k < 1 + Math.floor(rand() * 3); k++) {
        const p = paths[Math.floor(rand() * paths.length)]!;
        if (existsSync(join(t.scope, p))) t.remove(p);
        else t.add(p);
      }
      check(`random step ${step}`);
    }
  });
});
