// The real exporter binary with the power and emission sources of this area: each one fails alone.

import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { averageIntensity } from '@tgwf/co2/data';
import { request } from 'undici';
import { type Started, startProgram } from '../../../helpers/process.js';
import { BMC_PASSWORD, BMC_USER, type FakeBmc, startFakeBmc } from '../redfish/fake-bmc.js';

const IPMI_BIN = resolve(import.meta.dirname, '../../../fixtures/ipmi/bin');

describe('ceems_exporter with ipmi_dcmi, redfish, emissions and estimated_power', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ceems-power-e2e-'));
  chmodSync(dir, 0o755); // --path.procfs: read by the exporter after it switched to nobody
  let bmc: FakeBmc;
  let exporter: Started | undefined;
  before(async () => {
    bmc = await startFakeBmc();
    bmc.mode = 'fail';
    writeFileSync(
      join(dir, 'stat'),
      'cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0 0 0\ncpu1 50 0 50 400 0 0 0 0 0 0\n',
    );
    const u = new URL(bmc.url);
    writeFileSync(
      join(dir, 'redfish.yml'),
      `redfish_collector:\n  protocol: http\n  hostname: 127.0.0.1\n  port: ${u.port}\n  username: ${BMC_USER}\n  password: ${BMC_PASSWORD}\n`,
    );
  });
  after(async () => {
    await exporter?.stop();
    await bmc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const scrape = async () => (await request(`${exporter!.url}/metrics`)).body.text();
  const line = (text: string, prefix: string) => text.split('\n').filter((l) => l.startsWith(prefix));

  it('a failing BMC marks only redfish failed; it recovers and logs out at shutdown', async () => {
    exporter = await startProgram(
      'ceems_exporter',
      [
        '--web.listen-address=127.0.0.1:0',
        '--collector.disable-defaults',
        '--collector.ipmi_dcmi',
        `--collector.ipmi_dcmi.cmd=${IPMI_BIN}/ipmitool dcmi power reading`,
        '--collector.ipmi_dcmi.test-mode',
        '--collector.redfish',
        `--collector.redfish.config.file=${join(dir, 'redfish.yml')}`,
        '--collector.emissions',
        '--collector.emissions.provider=owid',
        '--collector.estimated_power',
        '--collector.estimated_power.idle-watts=50',
        '--collector.estimated_power.max-watts=250',
        `--path.procfs=${dir}`,
        '--web.disable-exporter-metrics',
      ],
      { env: { NODE_NAME: 'testnode', FAKE_IPMI_MODE_FILE: join(dir, 'none') } },
    );
    let text = await scrape();
    assert.deepEqual(line(text, 'ceems_scrape_collector_success'), [
      'ceems_scrape_collector_success{collector="emissions"} 1',
      'ceems_scrape_collector_success{collector="estimated_power"} 1',
      'ceems_scrape_collector_success{collector="ipmi_dcmi"} 1',
      'ceems_scrape_collector_success{collector="redfish"} 0',
    ]);
    assert.deepEqual(line(text, 'ceems_ipmi_dcmi_current_watts'), [
      'ceems_ipmi_dcmi_current_watts{hostname="testnode"} 250',
    ]);
    assert.ok(
      text.includes(
        '# HELP ceems_ipmi_dcmi_current_watts Current Power consumption in watts\n# TYPE ceems_ipmi_dcmi_current_watts gauge\n',
      ),
    );
    assert.deepEqual(line(text, 'ceems_emissions_gCo2_kWh{country="France"'), [
      `ceems_emissions_gCo2_kWh{country="France",country_code="FR",provider="owid",provider_name="OWID"} ${averageIntensity.data.FRA}`,
    ]);
    assert.deepEqual(line(text, 'ceems_estimated_power_watts'), [
      'ceems_estimated_power_watts{hostname="testnode",model="linear_cpu",source="estimated"} 50',
    ]);
    assert.deepEqual(line(text, 'ceems_redfish_'), []);

    bmc.mode = 'ok';
    text = await scrape();
    assert.deepEqual(line(text, 'ceems_scrape_collector_success{collector="redfish"}'), [
      'ceems_scrape_collector_success{collector="redfish"} 1',
    ]);
    assert.deepEqual(line(text, 'ceems_redfish_current_watts'), [
      'ceems_redfish_current_watts{chassis="Enclosure_Internal_0_1",hostname="testnode"} 42.5',
      'ceems_redfish_current_watts{chassis="System_Embedded_1",hostname="testnode"} 312',
    ]);
    const logouts = bmc.logouts.length;
    assert.equal(await exporter.stop(), 0);
    exporter = undefined;
    assert.equal(bmc.logouts.length, logouts + 1, 'Redfish session deleted at shutdown');
  });
});
