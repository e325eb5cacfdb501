import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FlagError, parseFlags } from '../../../../src/common/flags.js';
import { createLogger } from '../../../../src/common/logger.js';
import { type CollectorContext, FamilySet } from '../../../../src/exporter/collector.js';
import {
  CCF_WATTS_PER_VCPU,
  type EstimatedPowerCollector,
  estimatedPower,
  utilisation,
} from '../../../../src/exporter/collectors/power_estimate.js';

const quiet = createLogger({ level: 'silent' });
const procfs = mkdtempSync(join(tmpdir(), 'ceems-power-'));
after(() => rmSync(procfs, { recursive: true, force: true }));

/** A /proc/stat with `cpus` cpuN lines; the aggregate line in USER_HZ ticks. */
function writeStat(t: { user: number; system: number; idle: number; iowait?: number }, cpus = 4): void {
  const agg = `cpu  ${t.user} 0 ${t.system} ${t.idle} ${t.iowait ?? 0} 0 0 0 0 0`;
  const per = Array.from({ length: cpus }, (_, i) => `cpu${i} 1 0 1 1 0 0 0 0 0 0`);
  writeFileSync(
    join(procfs, 'stat'),
    `${agg}\n${per.join('\n')}\nintr 12345\nctxt 999\nbtime 1700000000\nprocesses 10\n`,
  );
}

function ctx(args: string[]): CollectorContext {
  return {
    hostname: 'vm1',
    procfs,
    sysfs: '/sys',
    cgroupfs: '/sys/fs/cgroup',
    flags: parseFlags(estimatedPower.flags, args).flags,
    logger: quiet,
  };
}

function scrape(c: EstimatedPowerCollector): { labels: Record<string, string>; value: number } {
  const set = new FamilySet();
  c.update(set);
  const f = set.families.get('ceems_estimated_power_watts')!;
  assert.equal(f.type, 'gauge');
  assert.equal(f.samples.length, 1);
  return f.samples[0]!;
}

describe('estimated_power collector', () => {
  it('idle + (max − idle) × utilisation between scrapes, with its own labels', async () => {
    writeStat({ user: 1000, system: 0, idle: 9000 });
    const c = (await estimatedPower.create(
      ctx(['--collector.estimated_power.idle-watts=100', '--collector.estimated_power.max-watts=300']),
    )) as EstimatedPowerCollector;
    // 300 busy ticks of 400: 75 % → 100 + 200 × 0.75.
    writeStat({ user: 1200, system: 100, idle: 9100 });
    assert.deepEqual(scrape(c), {
      labels: { hostname: 'vm1', model: 'linear_cpu', source: 'estimated' },
      value: 250,
    });
    // iowait counts as idle: 100 busy of 400 → 25 %.
    writeStat({ user: 1300, system: 100, idle: 9200, iowait: 200 });
    assert.equal(scrape(c).value, 150);
    // No ticks elapsed: the last utilisation is kept.
    assert.equal(scrape(c).value, 150);
    // Counters going back (CPU hot-plug): last utilisation kept, new baseline taken.
    writeStat({ user: 10, system: 0, idle: 10 });
    assert.equal(scrape(c).value, 150);
    writeStat({ user: 10, system: 0, idle: 110 });
    assert.equal(scrape(c).value, 100, 'fully idle since the new baseline');
  });

  it('per-CPU watts and Cloud Carbon Footprint coefficients scale with the logical CPU count', async () => {
    writeStat({ user: 0, system: 0, idle: 100 }, 8);
    const perCpu = (await estimatedPower.create(
      ctx([
        '--collector.estimated_power.min-watts-per-cpu=1',
        '--collector.estimated_power.max-watts-per-cpu=4',
      ]),
    )) as EstimatedPowerCollector;
    assert.deepEqual([perCpu.model.idleWatts, perCpu.model.maxWatts], [8, 32]);
    const aws = (await estimatedPower.create(
      ctx(['--collector.estimated_power.coefficients=aws']),
    )) as EstimatedPowerCollector;
    assert.deepEqual(
      [aws.model.idleWatts, aws.model.maxWatts],
      [CCF_WATTS_PER_VCPU.aws.min * 8, CCF_WATTS_PER_VCPU.aws.max * 8],
    );
    writeStat({ user: 100, system: 0, idle: 100 }, 8);
    assert.equal(scrape(aws).value, CCF_WATTS_PER_VCPU.aws.max * 8, '100 % busy');
    // Explicit node watts win over coefficients.
    const both = (await estimatedPower.create(
      ctx([
        '--collector.estimated_power.coefficients=gcp',
        '--collector.estimated_power.idle-watts=50',
        '--collector.estimated_power.max-watts=60',
      ]),
    )) as EstimatedPowerCollector;
    assert.deepEqual([both.model.idleWatts, both.model.maxWatts], [50, 60]);
  });

  it('start-up errors name the flags', () => {
    writeStat({ user: 0, system: 0, idle: 100 });
    assert.throws(
      () => estimatedPower.create(ctx([])),
      /needs --collector.estimated_power.idle-watts and --collector.estimated_power.max-watts/,
    );
    assert.throws(
      () => estimatedPower.create(ctx(['--collector.estimated_power.idle-watts=10'])),
      /idle-watts and --collector.estimated_power.max-watts must be given together/,
    );
    assert.throws(
      () =>
        estimatedPower.create(
          ctx(['--collector.estimated_power.idle-watts=300', '--collector.estimated_power.max-watts=100']),
        ),
      /need 0 <= idle < max watts, got idle 300 W and max 100 W/,
    );
    assert.throws(
      () => parseFlags(estimatedPower.flags, ['--collector.estimated_power.coefficients=ibm']),
      FlagError,
    );
    assert.throws(
      () => parseFlags(estimatedPower.flags, ['--collector.estimated_power.max-watts=lots']),
      /expected a number/,
    );
    const missing = {
      ...ctx(['--collector.estimated_power.coefficients=azure']),
      procfs: join(procfs, 'nope'),
    };
    assert.throws(() => estimatedPower.create(missing), /ENOENT/);
  });

  it('utilisation handles no elapsed time and clamps to [0, 1]', () => {
    assert.equal(utilisation({ user: 1, idle: 1 }, { user: 1, idle: 1 }), undefined);
    assert.equal(utilisation({ user: 0, idle: 0 }, { user: 3, idle: 1 }), 0.75);
    assert.equal(utilisation({ user: 5, idle: 0 }, { user: 4, idle: 10 }), undefined);
  });
});
