// The redfish collector against vendor-shaped BMCs (Dell iDRAC 9, HPE iLO 5, Lenovo XCC, a newer AMI
// MegaRAC without `Power`) and against session services that are present, absent, token-less or expiring.

import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createLogger } from '../../../../src/common/logger.js';
import { startProgram } from '../../../helpers/process.js';
import {
  type BmcModel,
  collectorYaml,
  createRedfishCollector,
  type FakeBmc,
  type SessionMode,
  scrapeRedfish,
  startFakeBmc,
} from './fake-bmc.js';

const quiet = createLogger({ level: 'error' });
const dir = mkdtempSync(join(tmpdir(), 'ceems-redfish-vendors-'));
chmodSync(dir, 0o755); // read by the exporter after it switched to nobody
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** Starts a BMC, scrapes it twice with a fresh collector (session tokens on), stops; returns both scrapes. */
async function withBmc<T>(
  opts: { model?: BmcModel; sessions?: SessionMode },
  body: (bmc: FakeBmc, scrape: () => Promise<string[]>) => Promise<T>,
): Promise<T> {
  const bmc = await startFakeBmc(opts);
  const path = join(dir, `cfg-${++n}.yml`);
  try {
    writeFileSync(path, collectorYaml(bmc, '  use_session_token: true\n'));
    const c = await createRedfishCollector(path, quiet);
    try {
      return await body(bmc, () => scrapeRedfish(c));
    } finally {
      await c.stop();
    }
  } finally {
    await bmc.close();
  }
}

const DELL_CURRENT = [
  'ceems_redfish_current_watts{chassis="Enclosure_Internal_0_1"} 42.5',
  'ceems_redfish_current_watts{chassis="System_Embedded_1"} 312',
];
const current = (lines: string[]) => lines.filter((l) => l.startsWith('ceems_redfish_current_watts'));
const basicAuth = `Basic ${Buffer.from('root:calvin').toString('base64')}`;

describe('redfish collector: session service absent or without a token', () => {
  for (const sessions of ['no-token', 'absent', 'not-allowed'] as const) {
    it(`use_session_token with a login answered ${sessions}: carries on with basic auth`, async () => {
      await withBmc({ sessions }, async (bmc, scrape) => {
        assert.deepEqual(current(await scrape()), DELL_CURRENT);
        assert.deepEqual(current(await scrape()), DELL_CURRENT);
        const logins = bmc.requests.filter((r) => r.line.startsWith('POST'));
        assert.equal(logins.length, 1, 'the login is tried once per connection, not per request');
        const reads = bmc.requests.filter((r) => r.line.startsWith('GET /redfish/v1/Chassis'));
        assert.ok(reads.length >= 5);
        for (const r of reads) assert.equal(r.authorization, basicAuth, r.line);
      });
    });
  }
});

describe('redfish collector: expiring sessions', () => {
  it('a 401 mid-life logs in again once and retries', async () => {
    await withBmc({}, async (bmc, scrape) => {
      await scrape();
      const logins = bmc.logins;
      bmc.expireTokens();
      assert.deepEqual(current(await scrape()), DELL_CURRENT);
      assert.equal(bmc.logins, logins + 1);
    });
  });

  it('a BMC that turns the session service off mid-life is read with basic auth', async () => {
    await withBmc({}, async (bmc, scrape) => {
      await scrape();
      bmc.expireTokens();
      bmc.sessions = 'absent';
      assert.deepEqual(current(await scrape()), DELL_CURRENT);
      const last = bmc.requests.at(-1)!;
      assert.equal(last.authorization, basicAuth, last.line);
    });
  });

  it('a 401 again right after the new login fails the scrape without looping', async () => {
    await withBmc({}, async (bmc, scrape) => {
      await scrape();
      bmc.mode = 'deny';
      const logins = bmc.logins;
      // cached readings are exported (kept quirk) while the BMC refuses
      assert.deepEqual(current(await scrape()), DELL_CURRENT);
      assert.equal(bmc.logins, logins + 1, 'one new login, then the error');
    });
  });
});

describe('redfish collector: vendor-shaped BMCs', () => {
  it('Dell iDRAC 9: System.Embedded.1 and the backplane enclosure', async () => {
    await withBmc({ model: 'dell-idrac9' }, async (_bmc, scrape) => {
      assert.deepEqual(current(await scrape()), DELL_CURRENT);
    });
  });

  it('HPE iLO 5: chassis 1, trailing slashes, absolute session Location; logout deletes that session', async () => {
    const bmc = await withBmc({ model: 'hpe-ilo5' }, async (bmc, scrape) => {
      bmc.absoluteLocation = true;
      assert.deepEqual(await scrape(), [
        'ceems_redfish_avg_watts{chassis="1"} 276',
        'ceems_redfish_current_watts{chassis="1"} 281',
        'ceems_redfish_max_watts{chassis="1"} 344',
        'ceems_redfish_min_watts{chassis="1"} 268',
      ]);
      assert.ok(bmc.requests.some((r) => r.line === 'GET /redfish/v1/Chassis/1/Power/'));
      return bmc;
    });
    // the collector stopped: its DELETE went to the path of the absolute Location
    assert.ok(bmc.requests.some((r) => r.line === 'DELETE /redfish/v1/SessionService/Sessions/1/'));
    assert.deepEqual(bmc.logouts, ['1']);
  });

  it('Lenovo XCC: a card chassis without Power is skipped; missing min/max and null readings emit nothing', async () => {
    await withBmc({ model: 'lenovo-xcc' }, async (_bmc, scrape) => {
      assert.deepEqual(await scrape(), [
        'ceems_redfish_avg_watts{chassis="1"} 190',
        'ceems_redfish_current_watts{chassis="1"} 198',
      ]);
    });
  });

  it('a newer BMC without Power (chassis Self): EnvironmentMetrics.PowerWatts, else the power supplies', async () => {
    await withBmc({ model: 'ami-self' }, async (bmc, scrape) => {
      assert.deepEqual(await scrape(), ['ceems_redfish_current_watts{chassis="Self"} 455']);
      assert.ok(!bmc.requests.some((r) => r.line.includes('PowerSubsystem')), 'EnvironmentMetrics suffices');
    });
    const bmc = await startFakeBmc({ model: 'ami-self' });
    const chassis = bmc.resources.get('/redfish/v1/Chassis/Self')!;
    delete chassis.EnvironmentMetrics;
    const path = join(dir, `cfg-${++n}.yml`);
    writeFileSync(path, collectorYaml(bmc));
    const c = await createRedfishCollector(path, quiet);
    try {
      // Σ PowerSupplyMetrics.InputPowerWatts.Reading over the power supplies
      assert.deepEqual(await scrapeRedfish(c), ['ceems_redfish_current_watts{chassis="Self"} 477.5']);
    } finally {
      await c.stop();
      await bmc.close();
    }
  });

  it('no chassis with any power resource: a clear error', async () => {
    const bmc = await startFakeBmc({ model: 'lenovo-xcc' });
    delete bmc.resources.get('/redfish/v1/Chassis/1')!.Power;
    const path = join(dir, `cfg-${++n}.yml`);
    writeFileSync(path, collectorYaml(bmc));
    const c = await createRedfishCollector(path, quiet);
    try {
      await assert.rejects(scrapeRedfish(c), /no chassis with a power resource/i);
    } finally {
      await c.stop();
      await bmc.close();
    }
  });
});

describe('ceems_exporter binary: the migrating operator case', () => {
  it('an older-layout Redfish config (redfish_web_config, host, a stray key) and a BMC without tokens', async () => {
    const bmc = await startFakeBmc({ sessions: 'no-token' });
    const u = new URL(bmc.url);
    const path = join(dir, `cfg-${++n}.yml`);
    writeFileSync(
      path,
      `redfish_web_config:\n  protocol: http\n  host: 127.0.0.1\n  port: ${u.port}\n  username: root\n  password: calvin\n  use_session_token: true\n  vendor: dell\n`,
    );
    const exporter = await startProgram('ceems_exporter', [
      '--web.listen-address=127.0.0.1:0',
      '--collector.disable-defaults',
      '--collector.redfish',
      `--collector.redfish.config.file=${path}`,
      '--web.disable-exporter-metrics',
    ]);
    try {
      const text = await (await fetch(`${exporter.url}/metrics`)).text();
      const lines = text.split('\n');
      assert.ok(lines.includes('ceems_scrape_collector_success{collector="redfish"} 1'), text);
      assert.ok(
        lines.some((l) => /^ceems_redfish_current_watts\{.*chassis="System_Embedded_1".*\} 312$/.test(l)),
        text,
      );
      const log = exporter.stderr();
      assert.match(
        log,
        new RegExp(
          `msg="Unknown configuration key ignored" collector=redfish key=redfish_collector.vendor file=${path}`,
        ),
      );
      assert.match(
        log,
        /msg="Deprecated configuration key; use the new name" collector=redfish key=redfish_web_config use=redfish_collector/,
      );
      assert.match(
        log,
        /msg="Deprecated configuration key; use the new name" collector=redfish key=redfish_collector.host use=redfish_collector.hostname/,
      );
      assert.match(log, /msg="BMC session login returned no X-Auth-Token; using basic auth"/);
    } finally {
      await exporter.stop();
      await bmc.close();
    }
  });
});
