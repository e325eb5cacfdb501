import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { createLogger } from '../../../src/common/logger.js';
import { createWebServer, type WebServer } from '../../../src/common/webserver.js';
import {
  DEFAULT_ALLOWED_API_RESOURCES,
  loadProxyConfig,
  RedfishProxy,
} from '../../../src/redfish_proxy/proxy.js';
import { runProgram, type Started, startProgram } from '../../helpers/process.js';
import {
  collectorYaml,
  createRedfishCollector,
  type FakeBmc,
  scrapeRedfish,
  startFakeBmc,
} from '../exporter/redfish/fake-bmc.js';

const quiet = createLogger({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'ceems-rfproxy-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string): string {
  const p = join(dir, `f-${++n}.yml`);
  writeFileSync(p, text);
  return p;
}

async function startProxy(
  configYaml: string | undefined,
): Promise<{ url: string; server: WebServer; proxy: RedfishProxy }> {
  const proxy = new RedfishProxy(
    loadProxyConfig(configYaml === undefined ? '' : file(configYaml), false),
    quiet,
  );
  const server = createWebServer({ listenAddresses: ['127.0.0.1:0'], logger: quiet });
  proxy.register(server.app);
  const [addr] = await server.listen();
  return { url: `http://${addr}`, server, proxy };
}

/** Scrapes the real redfish collector configured to go through `proxyUrl`. */
async function scrapeVia(bmc: FakeBmc, proxyUrl: string, extra = ''): Promise<string[]> {
  const c = await createRedfishCollector(
    file(collectorYaml(bmc, `  external_url: ${proxyUrl}\n${extra}`)),
    quiet,
  );
  try {
    return await scrapeRedfish(c);
  } finally {
    await c.stop();
  }
}

// The default allow list of the original (character class [a-zA-Z0-9-_]) rejects dotted chassis ids such as
// Dell's System.Embedded.1, so deployments with such BMCs list their resources explicitly.
const DOTTED_ALLOW_LIST = `  allowed_api_resources:
    - ^/redfish/v1/$
    - ^/redfish/v1/SessionService/Sessions(/[a-zA-Z0-9_-]*)?$
    - ^/redfish/v1/Chassis(/[a-zA-Z0-9._-]*(/Power)?)?$
`;

const CURRENT = [
  'ceems_redfish_current_watts{chassis="Enclosure_Internal_0_1"} 42.5',
  'ceems_redfish_current_watts{chassis="System_Embedded_1"} 312',
];

describe('redfish_proxy config', () => {
  it('defaults: no file allows every path; a file without the key uses the default allow list', () => {
    assert.equal(loadProxyConfig('', false).allowed, undefined);
    const c = loadProxyConfig(
      file(
        'redfish_proxy:\n  targets:\n    - host_ip_addrs: [10.0.0.1, 10.0.0.2]\n      url: https://bmc1:8443/x\n',
      ),
      false,
    );
    assert.deepEqual(
      c.allowed?.map((r) => r.source),
      DEFAULT_ALLOWED_API_RESOURCES.map((r) => new RegExp(r).source),
    );
    assert.deepEqual(
      [...c.targets],
      [
        ['10.0.0.1', 'https://bmc1:8443'],
        ['10.0.0.2', 'https://bmc1:8443'],
      ],
    );
  });

  it('deprecated root, insecure_skip_verify and clear errors', () => {
    const path = file('redfish_config:\n  insecure_skip_verify: true\n  target: []\nproxy: {}\n');
    const c = loadProxyConfig(path, false);
    assert.equal(c.http.tls_config?.insecure_skip_verify, true);
    // older names and unknown keys are warnings naming the file and the key, never fatal
    assert.deepEqual(c.notices, [
      { kind: 'deprecated', file: path, key: 'redfish_config', use: 'redfish_proxy' },
      {
        kind: 'deprecated',
        file: path,
        key: 'redfish_proxy.insecure_skip_verify',
        use: 'redfish_proxy.tls_config.insecure_skip_verify',
      },
      { kind: 'unknown', file: path, key: 'redfish_proxy.target' },
      { kind: 'unknown', file: path, key: 'proxy' },
    ]);
    assert.throws(
      () =>
        loadProxyConfig(
          file('redfish_proxy:\n  targets:\n    - host_ip_addrs: [1.2.3.4]\n      url: bmc1\n'),
          false,
        ),
      /redfish_proxy\.targets\.0\.url: .*\(got "bmc1"\)/,
    );
    assert.throws(
      () => loadProxyConfig(file('redfish_proxy:\n  allowed_api_resources: ["(["]\n'), false),
      /allowed_api_resources\.0: invalid regex '\(\['/,
    );
    assert.throws(() => loadProxyConfig(file('proxy: {}\n'), false), /root key 'redfish_proxy' is missing/);
    assert.throws(
      () => loadProxyConfig(file('redfish_proxy:\n  targets: {}\n'), false),
      /redfish_proxy\.targets: .*expected array/,
    );
  });
});

describe('redfish_proxy in process', () => {
  let bmc: FakeBmc;
  before(async () => {
    bmc = await startFakeBmc();
  });
  after(() => bmc.close());

  it('routes by X-Redfish-Url, strips it and Authorization, and serves the collector end to end', async () => {
    const p = await startProxy(`redfish_proxy:\n${DOTTED_ALLOW_LIST}`);
    try {
      bmc.requests = [];
      assert.deepEqual(
        (await scrapeVia(bmc, p.url)).filter((l) => l.includes('current')),
        CURRENT,
      );
      assert.ok(bmc.requests.length >= 6);
      assert.ok(bmc.requests.every((r) => r.redfishUrl === undefined && r.authorization === undefined));
      assert.ok(bmc.logouts.length > 0, 'DELETE of the session went through the proxy');
    } finally {
      await p.server.close();
      await p.proxy.close();
    }
  });

  it('401 for paths outside the allow list, 400 without a target, 502 when the BMC is down', async () => {
    const p = await startProxy('redfish_proxy: {}\n');
    try {
      // Before any X-Redfish-Url was seen from this client there is no target.
      let t = await request(`${p.url}/redfish/v1/`);
      assert.equal(t.statusCode, 400);
      assert.equal(await t.body.text(), 'failed to find redfish target\n');
      t = await request(`${p.url}/redfish/v1/`, { headers: { 'x-redfish-url': 'not a url' } });
      assert.equal(t.statusCode, 400);
      await t.body.dump();
      // The default allow list is the original's: dotted chassis ids are refused.
      let d = await request(`${p.url}/redfish/v1/Chassis/System.Embedded.1`, {
        headers: { 'x-redfish-url': bmc.url },
      });
      assert.equal(d.statusCode, 401);
      await d.body.dump();
      d = await request(`${p.url}/redfish/v1/Chassis/Chassis-1/Power`, {
        headers: { 'x-redfish-url': bmc.url },
      });
      assert.equal(d.statusCode, 401, 'allowed by the proxy, refused by the BMC (no session)');
      assert.match(await d.body.text(), /Base\.1\.8\.AccessDenied/);
      const r = await request(`${p.url}/redfish/v1/Systems`, { headers: { 'x-redfish-url': bmc.url } });
      assert.equal(r.statusCode, 401);
      assert.equal(await r.body.text(), 'access to api resource /redfish/v1/Systems is not allowed\n');
    } finally {
      await p.server.close();
      await p.proxy.close();
    }
    const down = await startProxy(undefined);
    try {
      const r = await request(`${down.url}/anything/goes`, {
        headers: { 'x-redfish-url': 'http://127.0.0.1:1' },
      });
      assert.equal(r.statusCode, 502);
      await r.body.dump();
    } finally {
      await down.server.close();
      await down.proxy.close();
    }
  });

  it('static targets by X-Real-IP or peer address win; a header target is remembered per client IP', async () => {
    const p = await startProxy(
      `redfish_proxy:\n  targets:\n    - host_ip_addrs: [10.1.1.1]\n      url: ${bmc.url}\n`,
    );
    try {
      let r = await request(`${p.url}/redfish/v1/`, { headers: { 'x-real-ip': '10.1.1.1' } });
      assert.equal(r.statusCode, 200);
      assert.equal(((await r.body.json()) as { Vendor: string }).Vendor, 'Dell');
      r = await request(`${p.url}/redfish/v1/`, {
        headers: { 'x-real-ip': '10.9.9.9', 'x-redfish-url': bmc.url },
      });
      assert.equal(r.statusCode, 200);
      await r.body.dump();
      // Remembered for 10.9.9.9 (and the peer address): the header is no longer needed.
      r = await request(`${p.url}/redfish/v1/`, { headers: { 'x-real-ip': '10.9.9.9' } });
      assert.equal(r.statusCode, 200);
      await r.body.dump();
    } finally {
      await p.server.close();
      await p.proxy.close();
    }
  });
});

describe('redfish_proxy binary with TLS on both sides', () => {
  let bmc: FakeBmc;
  let proc: Started | undefined;
  let certFile: string;
  let keyFile: string;
  before(async () => {
    keyFile = join(dir, 'tls.key');
    certFile = join(dir, 'tls.pem');
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
        '/CN=localhost',
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
  after(async () => {
    await proc?.stop();
    await bmc.close();
  });

  it('HTTPS front (web config) to HTTPS BMC (verification off) serves the collector', async () => {
    const web = file(`tls_server_config:\n  cert_file: ${certFile}\n  key_file: ${keyFile}\n`);
    const cfg = file(`redfish_proxy:\n  tls_config:\n    insecure_skip_verify: true\n${DOTTED_ALLOW_LIST}`);
    proc = await startProgram(
      'redfish_proxy',
      [`--config.file=${cfg}`, `--web.config.file=${web}`, '--web.listen-address=127.0.0.1:0'],
      { scheme: 'https' },
    );
    assert.deepEqual(
      (await scrapeVia(bmc, proc.url, `  tls_config:\n    ca_file: ${certFile}\n`)).filter((l) =>
        l.includes('current'),
      ),
      CURRENT,
    );
    const agent = new Agent({ connect: { ca: readFileSync(certFile, 'utf8') } });
    const r = await request(`${proc.url}/redfish/v1/Chassis/System.Embedded.1/Thermal`, {
      dispatcher: agent,
      headers: { 'x-redfish-url': bmc.url },
    });
    assert.equal(r.statusCode, 401);
    await r.body.dump();
    await agent.close();
    assert.equal(await proc.stop(), 0);
    proc = undefined;
  });

  it('start-up errors name the problem', async () => {
    const r = await runProgram('redfish_proxy', [
      `--config.file=${join(dir, 'nope.yml')}`,
      '--web.listen-address=127.0.0.1:0',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /redfish_proxy: error: cannot read config file .*nope\.yml.*ENOENT/);
    const bad = await runProgram('redfish_proxy', ['--web.listen-adress=:1']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /unknown long flag '--web.listen-adress'/);
  });
});
