// The real redfish_proxy binary in every front/BMC combination: plain or TLS front (TLS speaks HTTP/2, as
// Go clients do), plain or TLS BMC, with and without basic auth on the front, and without a config file.
// The exporter's real redfish collector reads the power through it.

import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:http2';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { Agent, request } from 'undici';
import { createLogger } from '../../../src/common/logger.js';
import { http2Get } from '../../helpers/http2.js';
import { type Started, startProgram } from '../../helpers/process.js';
import { makePki, type TestPki } from '../../helpers/tls.js';
import {
  collectorYaml,
  createRedfishCollector,
  type FakeBmc,
  scrapeRedfish,
  startFakeBmc,
} from '../exporter/redfish/fake-bmc.js';

const quiet = createLogger({ level: 'error' });
const FRONT_USER = 'exporter';
const FRONT_PASSWORD = 'front-secret';
const CURRENT = [
  'ceems_redfish_current_watts{chassis="Enclosure_Internal_0_1"} 42.5',
  'ceems_redfish_current_watts{chassis="System_Embedded_1"} 312',
];

let pki: TestPki;
let plainBmc: FakeBmc;
let tlsBmc: FakeBmc;
let n = 0;
const file = (text: string) => {
  const p = join(pki.dir, `rfp-${++n}.yml`);
  writeFileSync(p, text);
  return p;
};

before(async () => {
  pki = makePki();
  plainBmc = await startFakeBmc();
  tlsBmc = await startFakeBmc({
    https: { cert: readFileSync(pki.serverCert, 'utf8'), key: readFileSync(pki.serverKey, 'utf8') },
  });
});
after(async () => {
  await Promise.all([plainBmc.close(), tlsBmc.close()]);
  rmSync(pki.dir, { recursive: true, force: true });
});

/** Scrapes the real redfish collector whose requests go to `proxyUrl`, with extra client config lines. */
async function scrapeVia(bmc: FakeBmc, proxyUrl: string, clientYaml: string): Promise<string[]> {
  const c = await createRedfishCollector(
    file(collectorYaml(bmc, `  external_url: ${proxyUrl}\n  enable_http2: true\n${clientYaml}`)),
    quiet,
  );
  try {
    return (await scrapeRedfish(c)).filter((l) => l.startsWith('ceems_redfish_current_watts'));
  } finally {
    await c.stop();
  }
}

for (const front of ['plain', 'tls'] as const) {
  for (const auth of [false, true]) {
    describe(`redfish_proxy binary, ${front} front${auth ? ' with basic auth' : ''}`, () => {
      let proxy: Started;
      before(async () => {
        const web = [
          front === 'tls'
            ? `tls_server_config:\n  cert_file: ${pki.serverCert}\n  key_file: ${pki.serverKey}\n`
            : '',
          auth ? `basic_auth_users:\n  ${FRONT_USER}: ${bcrypt.hashSync(FRONT_PASSWORD, 4)}\n` : '',
        ].join('');
        // 10.0.0.1 and 10.0.0.2 are mapped statically; other clients name their BMC in X-Redfish-Url.
        const cfg = file(`redfish_proxy:
  targets:
    - host_ip_addrs: [10.0.0.1]
      url: ${plainBmc.url}
    - host_ip_addrs: [10.0.0.2]
      url: ${tlsBmc.url}
  allowed_api_resources:
    - ^/redfish/v1/$
    - ^/redfish/v1/SessionService/Sessions(/[a-zA-Z0-9_-]*)?$
    - ^/redfish/v1/Chassis(/[a-zA-Z0-9._-]*(/Power)?)?$
  tls_config:
    ca_file: ${pki.caCert}
`);
        proxy = await startProgram(
          'redfish_proxy',
          [
            `--config.file=${cfg}`,
            '--web.listen-address=127.0.0.1:0',
            ...(web ? [`--web.config.file=${file(web)}`] : []),
          ],
          { scheme: front === 'tls' ? 'https' : 'http' },
        );
      });
      after(async () => {
        assert.equal(await proxy.stop(), 0, proxy.stderr());
      });

      const client = (realIp?: string) =>
        [
          front === 'tls' ? `  tls_config:\n    ca_file: ${pki.caCert}\n` : '',
          auth ? `  basic_auth:\n    username: ${FRONT_USER}\n    password: ${FRONT_PASSWORD}\n` : '',
          realIp ? `  http_headers:\n    X-Real-IP:\n      values: [${realIp}]\n` : '',
        ].join('');

      // A header-routed target is remembered for the peer address too (127.0.0.1 here), which then wins over
      // the header: one header-routed BMC per proxy, plain or TLS by turns.
      for (const [bmcKind, realIp] of [
        ['plain', '10.0.0.1'],
        ['tls', '10.0.0.2'],
        [auth ? 'tls' : 'plain', undefined],
      ] as const) {
        const how = realIp ? `static target ${realIp}` : 'X-Redfish-Url';
        it(`serves the collector from a ${bmcKind} BMC (${how})`, async () => {
          const bmc = bmcKind === 'tls' ? tlsBmc : plainBmc;
          bmc.requests = [];
          const got = await scrapeVia(bmc, proxy.url, client(realIp));
          assert.deepEqual(got, CURRENT, proxy.stderr());
          assert.ok(bmc.requests.length >= 6, JSON.stringify(bmc.requests));
          for (const r of bmc.requests) {
            assert.equal(r.authorization, undefined, `${r.line}: the front's credentials stay at the front`);
            assert.equal(r.redfishUrl, undefined, r.line);
            if (r.line.startsWith('GET /redfish/v1/Chassis'))
              assert.ok(r.token, `${r.line} carries the session`);
          }
          assert.doesNotMatch(proxy.stderr(), /Failed to proxy request/);
        });
      }

      if (front === 'tls') {
        it('answers a plain HTTP/2 client (pseudo-headers are not forwarded)', async () => {
          const session = connect(proxy.url, { ca: pki.caPem });
          try {
            const headers: Record<string, string> = {
              ':path': '/redfish/v1/',
              'x-redfish-url': plainBmc.url,
              'x-real-ip': '10.0.2.1',
            };
            if (auth)
              headers.authorization = `Basic ${Buffer.from(`${FRONT_USER}:${FRONT_PASSWORD}`).toString('base64')}`;
            const r = await http2Get(session, headers);
            assert.equal(r.status, 200, `${r.body}\n${proxy.stderr()}`);
            assert.equal((JSON.parse(r.body) as { Vendor: string }).Vendor, 'Dell');
          } finally {
            session.close();
          }
        });
      }

      if (auth) {
        it('refuses clients without the front credentials before reaching the BMC', async () => {
          plainBmc.requests = [];
          const r = await request(`${proxy.url}/redfish/v1/`, {
            headers: { 'x-real-ip': '10.0.0.1' },
            dispatcher: front === 'tls' ? new Agent({ connect: { ca: pki.caPem } }) : undefined,
          });
          assert.equal(r.statusCode, 401);
          await r.body.dump();
          assert.deepEqual(plainBmc.requests, []);
        });
      }
    });
  }
}

describe('redfish_proxy binary without a config file', () => {
  it('routes every path by X-Redfish-Url', async () => {
    const proxy = await startProgram('redfish_proxy', ['--web.listen-address=127.0.0.1:0']);
    try {
      plainBmc.requests = [];
      assert.deepEqual(await scrapeVia(plainBmc, proxy.url, ''), CURRENT, proxy.stderr());
      const r = await request(`${proxy.url}/redfish/v1/Chassis/System.Embedded.1/Power`, {
        headers: { 'x-redfish-url': plainBmc.url },
      });
      assert.equal(r.statusCode, 401, 'any path is proxied; the BMC wants its session');
      assert.match(await r.body.text(), /Base\.1\.8\.AccessDenied/);
    } finally {
      assert.equal(await proxy.stop(), 0, proxy.stderr());
    }
  });
});
