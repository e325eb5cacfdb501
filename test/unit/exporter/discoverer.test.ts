import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { parseFlags } from '../../../src/common/flags.js';
import { createLogger } from '../../../src/common/logger.js';
import { CGROUP_FLAGS } from '../../../src/exporter/cgroup/flags.js';
import { managerLayout } from '../../../src/exporter/cgroup/layout.js';
import {
  createTargetDiscoverer,
  DISCOVERER_FLAGS,
  SELF_TARGET,
  TargetDiscoverer,
} from '../../../src/exporter/discoverer.js';

const FIX = resolve(import.meta.dirname, '../../fixtures/cgroup');

function discoverer(args: string[], enabled = ['slurm'], tree = 'v2') {
  const { flags } = parseFlags(
    [...DISCOVERER_FLAGS, ...CGROUP_FLAGS],
    ['--collector.cgroups.force-version=v2', ...args],
  );
  return createTargetDiscoverer(
    {
      hostname: 'node1',
      procfs: join(FIX, 'proc'),
      sysfs: join(FIX, 'sys'),
      cgroupfs: join(FIX, tree),
      flags,
      logger: createLogger({ level: 'silent' }),
    },
    enabled,
  );
}

const t = (id: string, pid: number) => ({
  targets: [id],
  labels: { __process_pid__: String(pid), service_name: id },
});

describe('Alloy targets discoverer', () => {
  it('is disabled without its flag or without slurm/k8s', () => {
    assert.equal(discoverer([]), undefined);
    assert.equal(discoverer(['--discoverer.alloy-targets'], ['libvirt', 'cpu']), undefined);
  });

  it('lists every process of every job in walk order; stale jobs have no targets', () => {
    const d = discoverer(['--discoverer.alloy-targets'])!;
    assert.deepEqual(d.discover(), [
      t('1009251', 4220),
      t('1009248', 4202),
      t('1009248', 4203),
      t('1009248', 4201),
      t('1009250', 4210),
      t('1009252', 4230),
    ]);
    const r = d.respond();
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/json');
    assert.ok(
      r.body.startsWith(
        '[{"targets":["1009251"],"labels":{"__process_pid__":"4220","service_name":"1009251"}},{"targets":["1009248"]',
      ),
    );
    assert.ok(r.body.endsWith('}]\n'));
  });

  it('env-var filter keeps processes with a matching variable prefix and skips SLURM helpers', () => {
    const d = discoverer([
      '--discoverer.alloy-targets',
      '--discoverer.alloy-targets.env-var=SLURM_STEP',
      '--discoverer.alloy-targets.self-profiler',
    ])!;
    assert.deepEqual(d.capabilities, ['cap_sys_ptrace', 'cap_dac_read_search']);
    assert.deepEqual(discoverer(['--discoverer.alloy-targets'])!.capabilities, []);
    // 4201 (batch script shell) and 4203 (sleep) are SLURM helpers; others lack a SLURM_STEP* variable
    assert.deepEqual(d.discover(), [
      t('1009251', 4220),
      t('1009248', 4202),
      { targets: [SELF_TARGET], labels: { __process_pid__: String(process.pid), service_name: SELF_TARGET } },
    ]);
  });

  it('answers null when there are no targets', () => {
    const d = discoverer(['--discoverer.alloy-targets'], ['k8s'], 'libvirt-v2')!;
    assert.deepEqual(d.respond(), { status: 200, type: 'application/json', body: 'null\n' });
  });

  it('answers 500 with the error text when gathering fails', () => {
    const layout = managerLayout('slurm', {
      cgroupfs: join(FIX, 'v2'),
      version: 'v2',
      activeSubsystem: 'cpuacct',
    });
    const broken = Object.defineProperty({ ...layout }, 'roots', {
      get() {
        throw new Error('cgroup root unreadable');
      },
    });
    const d = new TargetDiscoverer({
      layout: broken,
      procfs: join(FIX, 'proc'),
      envVars: [],
      selfProfiler: false,
      logger: createLogger({ level: 'silent' }),
    });
    assert.deepEqual(d.respond(), {
      status: 500,
      type: 'text/plain; charset=utf-8',
      body: 'An error has occurred while gathering targets:\n\ncgroup root unreadable',
    });
  });
});
