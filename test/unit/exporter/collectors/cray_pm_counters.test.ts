import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readFileFast } from '../../../../src/common/fsread.js';
import { NoDataError } from '../../../../src/exporter/collector.js';
import {
  CrayPmCountersCollector,
  crayPmCounters,
  domains,
  parseCounter,
} from '../../../../src/exporter/collectors/cray_pm_counters.js';
import { collect, context, copyFixture, failingRead, family, writeTree } from './node-context.js';

describe('cray_pm_counters collector', () => {
  const trees: { cleanup(): void }[] = [];
  after(() => {
    for (const t of trees) t.cleanup();
  });

  it('exports energy, power, power cap and temperature > 0 per domain', async () => {
    assert.equal(
      await collect(await crayPmCounters.create(context(crayPmCounters))),
      [
        '# HELP ceems_cray_pm_counters_energy_joules Current energy value in joules',
        '# TYPE ceems_cray_pm_counters_energy_joules gauge',
        'ceems_cray_pm_counters_energy_joules{domain="accel0",hostname="node1"} 4.81234567e+08',
        'ceems_cray_pm_counters_energy_joules{domain="accel1",hostname="node1"} 5.12345678e+08',
        'ceems_cray_pm_counters_energy_joules{domain="cpu",hostname="node1"} 1.200348091e+09',
        'ceems_cray_pm_counters_energy_joules{domain="memory",hostname="node1"} 3.01843921e+08',
        'ceems_cray_pm_counters_energy_joules{domain="node",hostname="node1"} 2.183450163e+09',
        '# HELP ceems_cray_pm_counters_power_limit_watts Current power limit value in watts',
        '# TYPE ceems_cray_pm_counters_power_limit_watts gauge',
        // the node power_cap is 0 (uncapped): filtered
        'ceems_cray_pm_counters_power_limit_watts{domain="accel0",hostname="node1"} 400',
        'ceems_cray_pm_counters_power_limit_watts{domain="accel1",hostname="node1"} 400',
        '# HELP ceems_cray_pm_counters_power_watts Current power value in watts',
        '# TYPE ceems_cray_pm_counters_power_watts gauge',
        'ceems_cray_pm_counters_power_watts{domain="accel0",hostname="node1"} 86',
        'ceems_cray_pm_counters_power_watts{domain="accel1",hostname="node1"} 92',
        'ceems_cray_pm_counters_power_watts{domain="cpu",hostname="node1"} 243',
        'ceems_cray_pm_counters_power_watts{domain="memory",hostname="node1"} 48',
        'ceems_cray_pm_counters_power_watts{domain="node",hostname="node1"} 412',
        '# HELP ceems_cray_pm_counters_temp_celsius Current temperature value in celsius',
        '# TYPE ceems_cray_pm_counters_temp_celsius gauge',
        'ceems_cray_pm_counters_temp_celsius{domain="cpu0",hostname="node1"} 47',
        'ceems_cray_pm_counters_temp_celsius{domain="cpu1",hostname="node1"} 51',
        '',
      ].join('\n'),
    );
  });

  it('discovers domains from file names with the original pattern', () => {
    assert.deepEqual(
      domains([
        'power',
        'energy',
        'power_cap',
        'cpu_power',
        'cpu0_temp',
        'memory_energy',
        'accel2_power_cap',
        'freshness',
        'version',
        'raw_scan_hz',
        'startup',
        'generation',
      ]),
      ['accel2', 'cpu', 'cpu0', 'memory', 'node'],
    );
  });

  it('takes the first token of "<value> <unit> <timestamp> us"', () => {
    assert.equal(parseCounter('123 W 1636040220574283 us\n'), 123);
    assert.equal(parseCounter('45.5 C 1636040220574283 us'), 45.5);
    assert.equal(parseCounter('unknown W 1 us'), undefined);
    assert.equal(parseCounter(''), undefined);
  });

  it('skips files that vanish or hold garbage during the scrape, keeps the rest', async () => {
    const ctx = context(crayPmCounters);
    const c = new CrayPmCountersCollector(
      ctx,
      failingRead(readFileFast, (p) => p.endsWith('/pm_counters/power'), 'ENOENT'),
    );
    const text = await collect(c);
    assert.equal(family(text, 'ceems_cray_pm_counters_power_watts').length, 2 + 4);
    assert.ok(!text.includes('power_watts{domain="node"'));

    const t = copyFixture();
    trees.push(t);
    writeFileSync(join(t.root, 'sys/cray/pm_counters/cpu_power'), 'N/A W 1636040220574283 us\n');
    const ctx2 = context(crayPmCounters, [], t.root);
    const text2 = await collect(await crayPmCounters.create(ctx2));
    assert.ok(!text2.includes('power_watts{domain="cpu"'));
    assert.ok(text2.includes('ceems_cray_pm_counters_power_watts{domain="node",hostname="node1"} 412\n'));
    assert.ok(ctx2.logs.some((l) => l.level === 'WARN' && String(l.file).endsWith('cpu_power')));
  });

  it('reports no data on nodes without /sys/cray/pm_counters', async () => {
    const t = writeTree({ 'sys/class/.keep': '' });
    trees.push(t);
    await assert.rejects(
      collect(await crayPmCounters.create(context(crayPmCounters, [], t.root))),
      (e) => e instanceof NoDataError && /pm_counters does not exist/.test(e.message),
    );
  });
});
