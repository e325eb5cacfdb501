import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  cleanName,
  HwmonCollector,
  hwmon,
  readSysfsAttribute,
} from '../../../../src/exporter/collectors/hwmon.js';
import { collect, context, copyFixture, failingRead, family, writeTree } from './node-context.js';

const mkfifoSync = (path: string) => execFileSync('mkfifo', [path]);

describe('hwmon collector', () => {
  const trees: { cleanup(): void }[] = [];
  after(() => {
    for (const t of trees) t.cleanup();
  });
  const copy = () => {
    const t = copyFixture();
    trees.push(t);
    return t.root;
  };

  it('exports power and energy sensors > 0 with chip, chip_name and sensor labels', async () => {
    assert.equal(
      await collect(await hwmon.create(context(hwmon))),
      [
        '# HELP ceems_hwmon_energy_current_joules Current Energy consumption in joules',
        '# TYPE ceems_hwmon_energy_current_joules gauge',
        'ceems_hwmon_energy_current_joules{chip="platform_amd_energy_0",chip_name="amd_energy",hostname="node1",sensor="energy1"} 58213.546',
        'ceems_hwmon_energy_current_joules{chip="platform_amd_energy_0",chip_name="amd_energy",hostname="node1",sensor="energy17"} 1.043612718e+06',
        '# HELP ceems_hwmon_power_avg_watts Average Power consumption in watts',
        '# TYPE ceems_hwmon_power_avg_watts gauge',
        'ceems_hwmon_power_avg_watts{chip="platform_acpi000d:00",chip_name="power_meter",hostname="node1",sensor="power1"} 345',
        '# HELP ceems_hwmon_power_current_watts Current Power consumption in watts',
        '# TYPE ceems_hwmon_power_current_watts gauge',
        // no name file, no device link: the hwmonX directory name
        'ceems_hwmon_power_current_watts{chip="hwmon4",chip_name="",hostname="node1",sensor="power1"} 7',
        // no name file: <devtype>_<devname> of the device link; sensors read from device/
        'ceems_hwmon_power_current_watts{chip="i2c_1_1_0040",chip_name="",hostname="node1",sensor="power1"} 12.5',
        // no device link: the cleaned name file
        'ceems_hwmon_power_current_watts{chip="node_pwr",chip_name="node_pwr",hostname="node1",sensor="power1"} 410.25',
        '# HELP ceems_hwmon_power_max_watts Maximum Power consumption in watts',
        '# TYPE ceems_hwmon_power_max_watts gauge',
        'ceems_hwmon_power_max_watts{chip="i2c_1_1_0040",chip_name="",hostname="node1",sensor="power1"} 20.125',
        '# HELP ceems_hwmon_power_min_watts Minimum Power consumption in watts',
        '# TYPE ceems_hwmon_power_min_watts gauge',
        'ceems_hwmon_power_min_watts{chip="i2c_1_1_0040",chip_name="",hostname="node1",sensor="power1"} 9',
        '',
      ].join('\n'),
    );
  });

  it('refuses to start without any power or energy sensor', async () => {
    const none = writeTree({
      'sys/class/hwmon/hwmon0/temp1_input': '40000\n',
      'sys/class/hwmon/hwmon0/name': 'k10temp\n',
    });
    trees.push(none);
    assert.throws(() => hwmon.create(context(hwmon, [], none.root)), {
      message: `no hwmon power or energy sensors found under ${join(none.root, 'sys/class/hwmon')}`,
    });
    const missing = writeTree({ 'sys/class/.keep': '' });
    trees.push(missing);
    assert.throws(
      () => hwmon.create(context(hwmon, [], missing.root)),
      /no hwmon power or energy sensors found/,
    );
  });

  it('skips a sensor whose file vanishes or is not a number during the scrape, keeps the rest', async () => {
    const ctx = context(hwmon);
    const c = new HwmonCollector(
      ctx,
      failingRead(readSysfsAttribute, (p) => p.endsWith('class/hwmon/hwmon1/energy1_input'), 'ENOENT'),
    );
    const text = await collect(c);
    assert.deepEqual(family(text, 'ceems_hwmon_energy_current_joules').slice(2), [
      'ceems_hwmon_energy_current_joules{chip="platform_amd_energy_0",chip_name="amd_energy",hostname="node1",sensor="energy17"} 1.043612718e+06',
    ]);
    assert.equal(family(text, 'ceems_hwmon_power_current_watts').length, 5);

    const root = copy();
    writeFileSync(join(root, 'sys/devices/virtual/hwmon/hwmon4/power1_input'), 'N/A\n');
    const ctx2 = context(hwmon, [], root);
    const text2 = await collect(await hwmon.create(ctx2));
    assert.equal(family(text2, 'ceems_hwmon_power_current_watts').length, 4);
    assert.ok(ctx2.logs.some((l) => l.level === 'WARN' && String(l.file).endsWith('hwmon4/power1_input')));
  });

  it('skips a chip removed after start-up (dangling hwmon link)', async () => {
    const root = copy();
    const c = await hwmon.create(context(hwmon, [], root));
    rmSync(join(root, 'sys/devices/platform/amd_energy.0'), { recursive: true });
    const text = await collect(c);
    assert.deepEqual(family(text, 'ceems_hwmon_energy_current_joules'), []);
    assert.equal(family(text, 'ceems_hwmon_power_current_watts').length, 5);
  });

  it('reads attributes whole, up to one 4 KiB page, and refuses anything longer or not a regular file', () => {
    const t = writeTree({ long: 'x'.repeat(4096), short: '12500000\n', huge: 'x'.repeat(4097) });
    trees.push(t);
    assert.equal(readSysfsAttribute(join(t.root, 'long')), 'x'.repeat(4096));
    assert.equal(readSysfsAttribute(join(t.root, 'short')), '12500000\n');
    assert.throws(() => readSysfsAttribute(join(t.root, 'huge')), { code: 'EFBIG' });
    mkfifoSync(join(t.root, 'fifo'));
    assert.throws(() => readSysfsAttribute(join(t.root, 'fifo')), {
      code: 'EFTYPE',
      message: `not a regular file (FIFO): ${join(t.root, 'fifo')}`,
    });
  });

  it('cleans chip names: lower case, [a-z0-9:_] only, no outer underscores', () => {
    assert.equal(cleanName('Node-PWR\n'), 'node_pwr');
    assert.equal(cleanName('ACPI000D:00'), 'acpi000d:00');
    assert.equal(cleanName('__x.y__'), 'x_y');
  });
});
