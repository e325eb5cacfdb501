import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseFlags } from '../../../../src/common/flags.js';
import { createLogger } from '../../../../src/common/logger.js';
import { type CollectorContext, FamilySet, NoDataError } from '../../../../src/exporter/collector.js';
import { chassisLabel, RedfishCollector, redfish } from '../../../../src/exporter/collectors/redfish.js';
import { RedfishClient, sumPowerControl } from '../../../../src/exporter/redfish/client.js';
import { loadRedfishConfig } from '../../../../src/exporter/redfish/config.js';
import { BMC_PASSWORD, BMC_USER, type FakeBmc, startFakeBmc } from './fake-bmc.js';

const quiet = createLogger({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'ceems-redfish-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function configFile(yaml: string): string {
  const p = join(dir, `cfg-${++n}.yml`);
  writeFileSync(p, yaml);
  return p;
}

function ctx(args: string[]): CollectorContext {
  return {
    hostname: 'node1',
    procfs: '/proc',
    sysfs: '/sys',
    cgroupfs: '/sys/fs/cgroup',
    flags: parseFlags(redfish.flags, args, { env: {} }).flags,
    logger: quiet,
  };
}

function bmcConfig(bmc: FakeBmc, extra = ''): string {
  const u = new URL(bmc.url);
  return configFile(`redfish_collector:
  protocol: ${u.protocol.replace(':', '')}
  hostname: ${u.hostname}
  port: ${u.port}
  username: ${BMC_USER}
  password: ${BMC_PASSWORD}
${extra}`);
}

async function scrape(c: RedfishCollector, signal = new AbortController().signal): Promise<string[]> {
  const set = new FamilySet();
  await c.update(set, signal);
  const out: string[] = [];
  for (const f of set.families.values())
    for (const s of f.samples)
      out.push(`${f.name}{chassis="${s.labels.chassis}",hostname="${s.labels.hostname}"} ${s.value}`);
  return out.sort();
}

const EXPECTED = [
  'ceems_redfish_avg_watts{chassis="Enclosure_Internal_0_1",hostname="node1"} 39',
  'ceems_redfish_avg_watts{chassis="System_Embedded_1",hostname="node1"} 305',
  'ceems_redfish_current_watts{chassis="Enclosure_Internal_0_1",hostname="node1"} 42.5',
  'ceems_redfish_current_watts{chassis="System_Embedded_1",hostname="node1"} 312',
  'ceems_redfish_max_watts{chassis="Enclosure_Internal_0_1",hostname="node1"} 55',
  'ceems_redfish_max_watts{chassis="System_Embedded_1",hostname="node1"} 420',
  'ceems_redfish_min_watts{chassis="Enclosure_Internal_0_1",hostname="node1"} 15',
  'ceems_redfish_min_watts{chassis="System_Embedded_1",hostname="node1"} 250',
];

describe('redfish config', () => {
  const load = (yaml: string, env: NodeJS.ProcessEnv = {}, expandEnv = false) =>
    loadRedfishConfig(configFile(yaml), { expandEnv, nodeName: 'node1', env });

  it('builds the BMC URL with the {hostname} placeholder, defaults and credential overrides', () => {
    const c = load(
      'redfish_collector:\n  protocol: https\n  hostname: "{hostname}-bmc"\n  username: u\n  password: p\n',
      { REDFISH_WEB_USERNAME: 'envuser', REDFISH_WEB_PASSWORD: 'envpass' },
    );
    assert.equal(c.bmcUrl, 'https://node1-bmc:443');
    assert.equal(c.requestUrl, 'https://node1-bmc:443');
    assert.deepEqual(
      [c.username, c.password, c.useSessionToken, c.timeoutMs],
      ['envuser', 'envpass', true, 5000],
    );
  });

  it('external_url, deprecated root, insecure_skip_verify and env expansion', () => {
    const c = load(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a YAML file with a ${VAR} reference
      'redfish_web_config:\n  protocol: http\n  hostname: 10.0.0.5\n  port: 8000\n  password: $$ecret-${PW}\n  external_url: http://proxy:5000/\n  insecure_skip_verify: true\n  timeout: 250\n  use_session_token: false\n',
      { PW: 'x' },
      true,
    );
    assert.equal(c.bmcUrl, 'http://10.0.0.5:8000');
    assert.equal(c.requestUrl, 'http://proxy:5000');
    assert.equal(c.password, '$ecret-x');
    assert.deepEqual(
      c.notices.map((x) => x.key),
      ['redfish_web_config', 'redfish_collector.insecure_skip_verify'],
    );
    assert.equal(c.http.tls_config?.insecure_skip_verify, true);
    assert.deepEqual([c.timeoutMs, c.useSessionToken], [250, false]);
  });

  it("the older layout (root redfish_web_config, 'host') and unknown keys are warnings, not errors", () => {
    const path = configFile(
      'redfish_web_config:\n  protocol: https\n  host: bmc-{hostname}\n  port: 8443\n  colour: blue\nvendor: dell\n',
    );
    const c = loadRedfishConfig(path, { expandEnv: false, nodeName: 'node1', env: {} });
    assert.equal(c.bmcUrl, 'https://bmc-node1:8443');
    assert.deepEqual(c.notices, [
      { kind: 'deprecated', file: path, key: 'redfish_web_config', use: 'redfish_collector' },
      { kind: 'deprecated', file: path, key: 'redfish_collector.host', use: 'redfish_collector.hostname' },
      { kind: 'unknown', file: path, key: 'redfish_collector.colour' },
      { kind: 'unknown', file: path, key: 'vendor' },
    ]);
    // both names: the new one wins
    assert.equal(
      load('redfish_collector:\n  protocol: http\n  host: old\n  hostname: new\n').bmcUrl,
      'http://new:80',
    );
  });

  it('clear errors for bad keys and values', () => {
    assert.throws(() => load('other: 1\n'), /root key 'redfish_collector' is missing/);
    assert.throws(() => load('{}\n'), /root key 'redfish_collector' is missing/);
    assert.throws(
      () => load('redfish_collector:\n  protocol: ftp\n  hostname: h\n'),
      /redfish_collector\.protocol: .*\(got "ftp"\)/,
    );
    assert.throws(
      () => load('redfish_collector:\n  protocol: http\n  hostname: h\n  port: 70000\n'),
      /redfish_collector\.port/,
    );
    assert.throws(
      () => load('redfish_collector:\n  protocol: http\n  hostname: h\n  timeout: 5s\n'),
      /redfish_collector\.timeout/,
    );
    assert.throws(
      () => load('redfish_collector:\n  hostname: h\n'),
      /redfish_collector\.protocol: Invalid option/,
    );
    assert.throws(
      () => load('redfish_collector:\n  protocol: http\n'),
      /hostname is empty; discovering the BMC address needs native IPMI/,
    );
    assert.throws(
      () => loadRedfishConfig(join(dir, 'missing.yml'), { expandEnv: false, nodeName: 'n' }),
      /cannot read config file .*missing\.yml.*ENOENT/,
    );
  });

  it('the collector needs a config file; the deprecated flag alias works', async () => {
    await assert.rejects(async () => redfish.create(ctx([])), /--collector.redfish.config.file is required/);
    const p = parseFlags(redfish.flags, ['--collector.redfish.web-config=/x.yml'], { env: {} });
    assert.equal(p.flags.string('collector.redfish.config.file'), '/x.yml');
    const e = parseFlags(redfish.flags, [], { env: { CEEMS_EXPORTER_REDFISH_COLL_CONFIG_FILE: '/y.yml' } });
    assert.equal(e.flags.string('collector.redfish.config.file'), '/y.yml');
  });

  it('sums PowerControl entries and sanitizes chassis ids', () => {
    assert.deepEqual(
      sumPowerControl({
        PowerControl: [
          { PowerConsumedWatts: 1 },
          { PowerConsumedWatts: 2.5, PowerMetrics: { MaxConsumedWatts: 4 } },
        ],
      }),
      { current: 3.5, min: 0, max: 4, avg: 0 },
    );
    assert.deepEqual(sumPowerControl({}), { current: 0, min: 0, max: 0, avg: 0 });
    assert.equal(chassisLabel('System.Embedded.1'), 'System_Embedded_1');
  });
});

describe('redfish collector against a fake BMC', () => {
  let bmc: FakeBmc;
  before(async () => {
    bmc = await startFakeBmc();
  });
  after(() => bmc.close());

  const make = async (extra = '') =>
    (await redfish.create(
      ctx([`--collector.redfish.config.file=${bmcConfig(bmc, extra)}`]),
    )) as RedfishCollector;

  it('logs in with a session token, discovers both chassis and sends X-Redfish-Url on every request', async () => {
    bmc.mode = 'ok';
    bmc.requests = [];
    const logins = bmc.logins;
    const c = await make();
    assert.deepEqual(await scrape(c), EXPECTED);
    assert.deepEqual(await scrape(c), EXPECTED);
    assert.equal(bmc.logins - logins, 1, 'one login for two scrapes');
    const u = new URL(bmc.url);
    assert.ok(bmc.requests.every((r) => r.redfishUrl === `http://127.0.0.1:${u.port}`));
    assert.deepEqual(
      bmc.requests.slice(0, 5).map((r) => r.line),
      [
        'GET /redfish/v1/',
        'POST /redfish/v1/SessionService/Sessions',
        'GET /redfish/v1/Chassis',
        'GET /redfish/v1/Chassis/System.Embedded.1',
        'GET /redfish/v1/Chassis/Enclosure.Internal.0-1',
      ],
    );
    assert.ok(
      bmc.requests.filter((r) => r.line.endsWith('/Power')).every((r) => r.token?.startsWith('token-')),
    );
    const before = bmc.logouts.length;
    await c.stop();
    assert.equal(bmc.logouts.length, before + 1, 'stop() deletes the session');
  });

  it('concurrent scrapes share one login', async () => {
    bmc.mode = 'ok';
    const logins = bmc.logins;
    const c = await make();
    const [a, b] = await Promise.all([scrape(c), scrape(c)]);
    assert.deepEqual([a, b], [EXPECTED, EXPECTED]);
    assert.equal(bmc.logins, logins + 1);
    await c.stop();
  });

  it('re-logs in when the BMC expired the token (401)', async () => {
    bmc.mode = 'ok';
    bmc.absoluteLocation = true;
    const c = await make();
    await scrape(c);
    const logins = bmc.logins;
    bmc.expireTokens();
    assert.deepEqual(await scrape(c), EXPECTED);
    assert.equal(bmc.logins, logins + 1);
    bmc.absoluteLocation = false;
    await c.stop();
  });

  it('basic auth when use_session_token is false', async () => {
    bmc.mode = 'ok';
    bmc.requests = [];
    const logins = bmc.logins;
    const c = await make('  use_session_token: false\n');
    assert.deepEqual(await scrape(c), EXPECTED);
    assert.equal(bmc.logins, logins);
    const basic = `Basic ${Buffer.from(`${BMC_USER}:${BMC_PASSWORD}`).toString('base64')}`;
    assert.ok(
      bmc.requests
        .filter((r) => r.line.startsWith('GET /redfish/v1/Chassis'))
        .every((r) => r.authorization === basic),
    );
    await c.stop();
  });

  it('failing BMC (500): logs out, exports the cached readings, reconnects when it is back', async () => {
    bmc.mode = 'ok';
    const c = await make();
    await scrape(c);
    const logouts = bmc.logouts.length;
    const logins = bmc.logins;
    bmc.mode = 'fail';
    assert.deepEqual(await scrape(c), EXPECTED);
    assert.equal(bmc.logouts.length, logouts + 1, 'session deleted after the error');
    bmc.mode = 'ok';
    assert.deepEqual(await scrape(c), EXPECTED);
    assert.equal(bmc.logins, logins + 1, 'reconnected');
    await c.stop();
  });

  it('no cached readings yet: a failing or slow BMC is "no data" naming the cause', async () => {
    bmc.mode = 'fail';
    await assert.rejects(
      scrape(await make()),
      (e: Error) =>
        e instanceof NoDataError && /GET \/redfish\/v1\/Chassis failed with HTTP 500/.test(e.message),
    );
    bmc.mode = 'slow';
    bmc.slowMs = 1000;
    const t0 = Date.now();
    await assert.rejects(scrape(await make('  timeout: 150\n')), /timed out after 150 ms/);
    assert.ok(Date.now() - t0 < 900);
    bmc.mode = 'ok';
  });

  it('slow BMC after a good scrape: cached readings within the request timeout', async () => {
    bmc.mode = 'ok';
    const c = await make('  timeout: 150\n');
    await scrape(c);
    bmc.mode = 'slow';
    bmc.slowMs = 1000;
    assert.deepEqual(await scrape(c), EXPECTED);
    bmc.mode = 'ok';
    await c.stop();
  });

  it('wrong credentials fail the login with the HTTP status', async () => {
    bmc.mode = 'ok';
    const c = (await redfish.create(
      ctx([
        `--collector.redfish.config.file=${configFile(`redfish_collector:\n  protocol: http\n  hostname: 127.0.0.1\n  port: ${new URL(bmc.url).port}\n  username: root\n  password: wrong\n`)}`,
      ]),
    )) as RedfishCollector;
    await assert.rejects(
      scrape(c),
      /session login at \/redfish\/v1\/SessionService\/Sessions failed with HTTP 401/,
    );
  });
});

describe('redfish collector over HTTPS', () => {
  let bmc: FakeBmc;
  let certFile: string;
  before(async () => {
    const keyFile = join(dir, 'bmc.key');
    certFile = join(dir, 'bmc.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=bmc',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        keyFile,
        '-out',
        certFile,
      ],
      { stdio: 'ignore' },
    );
    bmc = await startFakeBmc({
      https: { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') },
    });
  });
  after(() => bmc.close());

  it('rejects the self-signed certificate unless verification is off or the CA is given', async () => {
    const strict = new RedfishCollector(
      ctx([]),
      new RedfishClient(loadRedfishConfig(bmcConfig(bmc), { expandEnv: false, nodeName: 'node1', env: {} })),
    );
    await assert.rejects(scrape(strict), /self[- ]signed certificate/);
    for (const extra of [
      '  tls_config:\n    insecure_skip_verify: true\n',
      '  insecure_skip_verify: true\n',
      `  tls_config:\n    ca_file: ${certFile}\n`,
    ]) {
      const c = (await redfish.create(
        ctx([`--collector.redfish.config.file=${bmcConfig(bmc, extra)}`]),
      )) as RedfishCollector;
      assert.deepEqual(await scrape(c), EXPECTED, extra);
      await c.stop();
    }
  });
});
