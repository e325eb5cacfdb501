import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { readFileFast } from '../../../../src/common/fsread.js';
import { NoDataError } from '../../../../src/exporter/collector.js';
import {
  RaplCollector,
  rapl,
  sanitizeMetricName,
  zoneNameAndIndex,
} from '../../../../src/exporter/collectors/rapl.js';
import { collect, context, copyFixture, FIXTURE, failingRead, family, writeTree } from './node-context.js';

const PC = `${FIXTURE}/sys/class/powercap`;

describe('rapl collector', () => {
  const trees: { cleanup(): void }[] = [];
  after(() => {
    for (const t of trees) t.cleanup();
  });

  it('exports energy and the long-term power limit per zone, zone in the metric name', async () => {
    assert.equal(
      await collect(await rapl.create(context(rapl))),
      [
        '# HELP ceems_rapl_core_joules_total Current RAPL core value in joules',
        '# TYPE ceems_rapl_core_joules_total counter',
        `ceems_rapl_core_joules_total{hostname="node1",index="0",path="${PC}/intel-rapl:0:0"} 40212.234567`,
        '# HELP ceems_rapl_core_power_limit_watts_total Current RAPL core power limit in watts',
        '# TYPE ceems_rapl_core_power_limit_watts_total counter',
        `ceems_rapl_core_power_limit_watts_total{hostname="node1",index="0",path="${PC}/intel-rapl:0:0"} 0`,
        '# HELP ceems_rapl_dram_joules_total Current RAPL dram value in joules',
        '# TYPE ceems_rapl_dram_joules_total counter',
        `ceems_rapl_dram_joules_total{hostname="node1",index="0",path="${PC}/intel-rapl:0:1"} 12345.678901`,
        `ceems_rapl_dram_joules_total{hostname="node1",index="1",path="${PC}/intel-rapl:1:0"} 11987.654321`,
        '# HELP ceems_rapl_dram_power_limit_watts_total Current RAPL dram power limit in watts',
        '# TYPE ceems_rapl_dram_power_limit_watts_total counter',
        `ceems_rapl_dram_power_limit_watts_total{hostname="node1",index="0",path="${PC}/intel-rapl:0:1"} 0`,
        `ceems_rapl_dram_power_limit_watts_total{hostname="node1",index="1",path="${PC}/intel-rapl:1:0"} 0`,
        '# HELP ceems_rapl_package_joules_total Current RAPL package value in joules',
        '# TYPE ceems_rapl_package_joules_total counter',
        `ceems_rapl_package_joules_total{hostname="node1",index="0",path="${PC}/intel-rapl:0"} 82544.113281`,
        `ceems_rapl_package_joules_total{hostname="node1",index="1",path="${PC}/intel-rapl:1"} 79123.456789`,
        '# HELP ceems_rapl_package_power_limit_watts_total Current RAPL package power limit in watts',
        '# TYPE ceems_rapl_package_power_limit_watts_total counter',
        // intel-rapl:0: constraint_0 has the larger window; intel-rapl:1: constraint_1 has
        `ceems_rapl_package_power_limit_watts_total{hostname="node1",index="0",path="${PC}/intel-rapl:0"} 125`,
        `ceems_rapl_package_power_limit_watts_total{hostname="node1",index="1",path="${PC}/intel-rapl:1"} 120`,
        '',
      ].join('\n'),
    );
  });

  it('puts the zone into a rapl_zone label with --collector.rapl.enable-zone-label', async () => {
    const text = await collect(await rapl.create(context(rapl, ['--collector.rapl.enable-zone-label'])));
    assert.deepEqual(family(text, 'ceems_rapl_joules_total'), [
      '# HELP ceems_rapl_joules_total Current RAPL value in joules',
      '# TYPE ceems_rapl_joules_total counter',
      `ceems_rapl_joules_total{hostname="node1",index="0",path="${PC}/intel-rapl:0",rapl_zone="package"} 82544.113281`,
      `ceems_rapl_joules_total{hostname="node1",index="0",path="${PC}/intel-rapl:0:0",rapl_zone="core"} 40212.234567`,
      `ceems_rapl_joules_total{hostname="node1",index="0",path="${PC}/intel-rapl:0:1",rapl_zone="dram"} 12345.678901`,
      `ceems_rapl_joules_total{hostname="node1",index="1",path="${PC}/intel-rapl:1",rapl_zone="package"} 79123.456789`,
      `ceems_rapl_joules_total{hostname="node1",index="1",path="${PC}/intel-rapl:1:0",rapl_zone="dram"} 11987.654321`,
    ]);
    assert.deepEqual(family(text, 'ceems_rapl_power_limit_watts_total').slice(0, 3), [
      '# HELP ceems_rapl_power_limit_watts_total Current RAPL power Limit value in watts',
      '# TYPE ceems_rapl_power_limit_watts_total counter',
      `ceems_rapl_power_limit_watts_total{hostname="node1",index="0",path="${PC}/intel-rapl:0",rapl_zone="package"} 125`,
    ]);
    assert.equal(family(text, 'ceems_rapl_package_joules_total').length, 0);
  });

  it('echoes a relative --path.sysfs in the path label', async () => {
    const ctx = { ...context(rapl), sysfs: `./${relative(process.cwd(), FIXTURE)}/sys` };
    const text = await collect(await rapl.create(ctx));
    assert.ok(
      text.includes(
        `ceems_rapl_package_joules_total{hostname="node1",index="0",path="${relative(process.cwd(), PC)}/intel-rapl:0"} 82544.113281\n`,
      ),
      text,
    );
  });

  it('keeps the counter increasing across energy_uj wraps (max_energy_range_uj)', async () => {
    const t = copyFixture();
    trees.push(t);
    const energy = join(t.root, 'sys/devices/virtual/powercap/intel-rapl/intel-rapl:0/energy_uj');
    const c = await rapl.create(context(rapl, [], t.root));
    const pkg0 = async () =>
      family(await collect(c), 'ceems_rapl_package_joules_total')
        .find((l) => l.includes('index="0"'))!
        .split(' ')[1];
    assert.equal(await pkg0(), '82544.113281');
    writeFileSync(energy, '262143000000\n');
    assert.equal(await pkg0(), '262143');
    writeFileSync(energy, '1000000\n'); // wrapped: + 262143328850 µJ
    assert.equal(await pkg0(), '262144.32885');
    writeFileSync(energy, '5000000\n');
    assert.equal(await pkg0(), '262148.32885');
    writeFileSync(energy, '2000000\n'); // second wrap
    assert.equal(await pkg0(), '524288.6577');
  });

  it('skips a zone whose files vanish during the scrape and keeps the others', async () => {
    const ctx = context(rapl);
    const c = new RaplCollector(
      ctx,
      failingRead(readFileFast, (p) => p.endsWith('intel-rapl:0:1/energy_uj'), 'ENOENT'),
    );
    const text = await collect(c);
    assert.deepEqual(family(text, 'ceems_rapl_dram_joules_total').slice(2), [
      `ceems_rapl_dram_joules_total{hostname="node1",index="1",path="${PC}/intel-rapl:1:0"} 11987.654321`,
    ]);
    assert.equal(family(text, 'ceems_rapl_package_joules_total').length, 4);
  });

  it('explains root-only energy_uj (EACCES): file and cap_dac_read_search, warned at start, no data per scrape', async () => {
    const ctx = context(rapl);
    const c = new RaplCollector(
      ctx,
      failingRead(readFileFast, (p) => p.endsWith('/energy_uj'), 'EACCES'),
    );
    const hint = (m: string) =>
      m.includes(`permission denied reading ${PC}/intel-rapl:0/energy_uj: `) &&
      m.includes('cap_dac_read_search');
    assert.ok(
      ctx.logs.some((l) => l.level === 'WARN' && hint(l.msg)),
      JSON.stringify(ctx.logs),
    );
    await assert.rejects(collect(c), (e) => e instanceof NoDataError && hint(e.message));
  });

  it('gets a real EACCES when unprivileged (run as nobody) and reports it the same way', () => {
    const t = copyFixture();
    trees.push(t);
    chmodSync(t.root, 0o755);
    for (const zone of ['intel-rapl:0', 'intel-rapl:0:0', 'intel-rapl:0:1', 'intel-rapl:1', 'intel-rapl:1:0'])
      chmodSync(join(t.root, 'sys/class/powercap', zone, 'energy_uj'), 0o400);
    const mod = (p: string) =>
      JSON.stringify(pathToFileURL(join(import.meta.dirname, '../../../..', p)).href);
    const script = `
      const { rapl } = await import(${mod('src/exporter/collectors/rapl.ts')});
      const { FamilySet } = await import(${mod('src/exporter/collector.ts')});
      const { parseFlags } = await import(${mod('src/common/flags.ts')});
      const { createLogger } = await import(${mod('src/common/logger.ts')});
      const logger = createLogger({ level: 'silent' });
      const ctx = { hostname: 'n', procfs: '/proc', sysfs: ${JSON.stringify(join(t.root, 'sys'))}, cgroupfs: '',
        flags: parseFlags(rapl.flags, []).flags, logger };
      try { rapl.create(ctx).update(new FamilySet()); console.log('no error'); }
      catch (e) { console.log(e.constructor.name + ': ' + e.message); }`;
    const r = spawnSync(
      'runuser',
      ['-u', 'nobody', '--', process.execPath, '--import', 'tsx', '--input-type=module', '-e', script],
      {
        cwd: join(import.meta.dirname, '../../../..'),
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout.trim(),
      `NoDataError: permission denied reading ${t.root}/sys/class/powercap/intel-rapl:0/energy_uj: energy_uj is readable by root only since Linux 5.10; run the exporter as root or grant it the cap_dac_read_search capability`,
    );
  });

  it('reports no data without powercap and a clear error for malformed counters', async () => {
    const empty = writeTree({ 'sys/class/.keep': '' });
    trees.push(empty);
    await assert.rejects(
      collect(await rapl.create(context(rapl, [], empty.root))),
      (e) => e instanceof NoDataError && /no powercap files/.test(e.message),
    );
    const bad = writeTree({
      'sys/class/powercap/intel-rapl:0/name': 'package-0\n',
      'sys/class/powercap/intel-rapl:0/energy_uj': 'garbage\n',
      'sys/class/powercap/intel-rapl:0/max_energy_range_uj': '262143328850\n',
    });
    trees.push(bad);
    await assert.rejects(
      collect(await rapl.create(context(rapl, [], bad.root))),
      /invalid value 'garbage' in .*intel-rapl:0\/energy_uj: expected an unsigned integer/,
    );
  });

  it('derives zone names and indexes like the original', () => {
    const seen = new Map<string, number>();
    assert.deepEqual(zoneNameAndIndex('package-0', seen), ['package', 0]);
    assert.deepEqual(zoneNameAndIndex('package-1-die-1', seen), ['package', 1]);
    assert.deepEqual(zoneNameAndIndex('dram', seen), ['dram', 0]);
    seen.set('dram', 1);
    assert.deepEqual(zoneNameAndIndex('dram', seen), ['dram', 1]);
    assert.deepEqual(zoneNameAndIndex('psys', seen), ['psys', 0]);
    assert.equal(sanitizeMetricName('uncore'), 'uncore');
    assert.equal(sanitizeMetricName('my zone.x__-_y'), 'my_zone_x_y');
  });
});
