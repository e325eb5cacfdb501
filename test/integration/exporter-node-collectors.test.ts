// ceems_exporter as a process with the six file-based node collectors on the fixture /proc and /sys tree.

import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, runProgram, type Started, startProgram } from '../helpers/process.js';

const FIXTURE = resolve(ROOT, 'test/fixtures/node');
const ARGS = [
  '--web.listen-address=127.0.0.1:0',
  '--collector.disable-defaults',
  '--collector.meminfo',
  '--collector.rapl',
  '--collector.hwmon',
  '--collector.cray_pm_counters',
  '--collector.infiniband',
  '--collector.netdev',
  `--path.procfs=${FIXTURE}/proc`,
  `--path.sysfs=${FIXTURE}/sys`,
];

describe('ceems_exporter node collectors on fixture /proc and /sys', () => {
  let exp: Started;
  let text: string;
  before(async () => {
    exp = await startProgram('ceems_exporter', [...ARGS, '--collector.netdev.device-exclude=^veth'], {
      env: { NODE_NAME: 'node1' },
    });
    const res = await fetch(`${exp.url}/metrics`);
    assert.equal(res.status, 200);
    text = await res.text();
  });
  after(() => exp.stop());

  it('reports success for each of the six collectors', () => {
    for (const c of ['cray_pm_counters', 'hwmon', 'infiniband', 'meminfo', 'netdev', 'rapl'])
      assert.ok(text.includes(`ceems_scrape_collector_success{collector="${c}"} 1\n`), `${c}:\n${text}`);
    assert.ok(!text.includes('collector="cpu"'));
  });

  it('serves the samples of each collector', () => {
    for (const line of [
      'ceems_meminfo_MemTotal_bytes{hostname="node1"} 2.70035750912e+11',
      `ceems_rapl_package_joules_total{hostname="node1",index="1",path="${FIXTURE}/sys/class/powercap/intel-rapl:1"} 79123.456789`,
      `ceems_rapl_package_power_limit_watts_total{hostname="node1",index="0",path="${FIXTURE}/sys/class/powercap/intel-rapl:0"} 125`,
      'ceems_hwmon_power_avg_watts{chip="platform_acpi000d:00",chip_name="power_meter",hostname="node1",sensor="power1"} 345',
      'ceems_cray_pm_counters_power_watts{domain="node",hostname="node1"} 412',
      'ceems_infiniband_rate_bytes_per_second{device="mlx5_0",port="1"} 1.25e+10',
      'ceems_infiniband_port_data_received_bytes_total{device="mlx5_0",port="1"} 9.017131652e+09',
      'ceems_netdev_receive_bytes_total{device="eth0",hostname="node1"} 1.43212268649e+11',
    ])
      assert.ok(text.includes(`${line}\n`), `missing ${line}`);
    assert.ok(!text.includes('device="veth3f2a9c1"'));
  });

  it('refuses to start when hwmon has no power sensor, or netdev gets both filters', async () => {
    const noHwmon = await runProgram('ceems_exporter', [
      '--web.listen-address=127.0.0.1:0',
      '--collector.disable-defaults',
      '--collector.hwmon',
      `--path.sysfs=${FIXTURE}/proc`,
    ]);
    assert.notEqual(noHwmon.code, 0);
    assert.match(noHwmon.stderr, /couldn't create collector 'hwmon': no hwmon power or energy sensors found/);
    const both = await runProgram('ceems_exporter', [
      ...ARGS,
      '--collector.netdev.device-include=eth',
      '--collector.netdev.device-exclude=lo',
    ]);
    assert.notEqual(both.code, 0);
    assert.match(both.stderr, /mutually exclusive/);
  });
});
