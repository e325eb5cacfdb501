// The load balancer's front end without a framework (createPlainServer of src/common/httpserver.ts): the web config applied to
// every request (extra headers, basic auth, TLS client certificate rules, HTTP/2) and 503 while closing.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { createPlainServer, type PlainServer } from '../../../src/common/httpserver.js';
import { createLogger } from '../../../src/common/logger.js';
import { tempDir } from '../../fixtures/lb/setup.js';
import { http2Get } from '../../helpers/http2.js';
import { makePki, type TestPki } from '../../helpers/tls.js';

const log = createLogger({ level: 'error' });

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

function collect(res: IncomingMessage, resolve: (a: Answer) => void): void {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (d) => {
    body += d;
  });
  res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
}

const get = (url: string, headers: Record<string, string> = {}) =>
  new Promise<Answer>((resolve, reject) =>
    httpRequest(url, { headers, agent: false }, (res) => collect(res, resolve))
      .on('error', reject)
      .end(),
  );

/** Answers with the HTTP version and URL it saw. */
function start(webConfigFile?: string, addresses = ['127.0.0.1:0']): Promise<PlainServer> {
  return createPlainServer({ listenAddresses: addresses, webConfigFile, logger: log }, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`${req.httpVersion} ${req.url}`);
  });
}

describe('plain web server of the load balancer', () => {
  const tmp = tempDir('ceems-lb-front-');
  let pki: TestPki;
  before(() => {
    pki = makePki();
  });
  after(() => tmp.cleanup());

  it('serves every listen address, sets the configured headers and asks for basic auth', async () => {
    const web = `${tmp.dir}/auth.yml`;
    writeFileSync(
      web,
      `basic_auth_users:\n  grafana: ${bcrypt.hashSync('secret', 4)}\n` +
        'http_server_config:\n  headers:\n    X-Frame-Options: deny\n',
    );
    const srv = await start(web, ['127.0.0.1:0', '127.0.0.1:0']);
    const addrs = await srv.listen();
    try {
      assert.equal(addrs.length, 2);
      for (const a of addrs) {
        const anonymous = await get(`http://${a}/x`);
        assert.equal(anonymous.status, 401);
        assert.equal(anonymous.body, 'Unauthorized\n');
        assert.equal(anonymous.headers['www-authenticate'], 'Basic');
        assert.equal(anonymous.headers['x-frame-options'], 'deny');
        const wrong = await get(`http://${a}/x`, { authorization: `Basic ${btoa('grafana:nope')}` });
        assert.equal(wrong.status, 401);
        const ok = await get(`http://${a}/x?y=1`, { authorization: `Basic ${btoa('grafana:secret')}` });
        assert.equal(ok.status, 200);
        assert.equal(ok.body, '1.1 /x?y=1');
        assert.equal(ok.headers['x-frame-options'], 'deny');
      }
    } finally {
      await srv.close();
    }
  });

  it('applies the TLS client certificate rules and serves HTTP/2', async () => {
    const tlsConfig = (extra: string) => {
      const file = `${tmp.dir}/tls-${Math.random()}.yml`;
      writeFileSync(
        file,
        `tls_server_config:\n  cert_file: ${pki.serverCert}\n  key_file: ${pki.serverKey}\n` +
          `  client_ca_file: ${pki.caCert}\n${extra}`,
      );
      return file;
    };
    const tlsGet = (addr: string, withCert: boolean) =>
      new Promise<Answer>((resolve, reject) =>
        httpsRequest(
          `https://${addr}/tls`,
          {
            ca: pki.caPem,
            agent: false,
            ...(withCert ? { cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) } : {}),
          },
          (res) => collect(res, resolve),
        )
          .on('error', reject)
          .end(),
      );
    const anyCert = await start(tlsConfig('  client_auth_type: RequireAnyClientCert\n'));
    const sans = await start(
      tlsConfig("  client_auth_type: RequireAndVerifyClientCert\n  client_allowed_sans: ['other.test']\n"),
    );
    const h2 = await start(
      tlsConfig("  client_auth_type: VerifyClientCertIfGiven\n  client_allowed_sans: ['client.test']\n"),
    );
    try {
      const [a] = await anyCert.listen();
      const none = await tlsGet(a!, false);
      assert.equal(none.status, 403);
      assert.equal(none.body, 'client certificate required\n');
      assert.equal((await tlsGet(a!, true)).status, 200);
      const [b] = await sans.listen();
      const denied = await tlsGet(b!, true);
      assert.equal(denied.status, 403);
      assert.equal(denied.body, 'client certificate SAN not allowed\n');
      const [c] = await h2.listen();
      assert.equal((await tlsGet(c!, true)).body, '1.1 /tls', 'HTTP/1.1 next to HTTP/2');
      const session = http2Connect(`https://${c}`, {
        ca: pki.caPem,
        cert: readFileSync(pki.clientCert),
        key: readFileSync(pki.clientKey),
      });
      try {
        const answer = await http2Get(session, { ':path': '/h2' });
        assert.deepEqual(answer, { status: 200, body: '2.0 /h2' });
      } finally {
        session.close();
      }
    } finally {
      await Promise.all([anyCert.close(), sans.close(), h2.close()]);
    }
  });

  it('answers 503 with Connection: close to a request arriving on an open connection while it closes', async () => {
    let release = () => {};
    const srv = await createPlainServer({ listenAddresses: ['127.0.0.1:0'], logger: log }, (req, res) => {
      const answer = () => res.end(req.url);
      if (req.url === '/slow') release = answer;
      else answer();
    });
    const [addr] = await srv.listen();
    const sock = connect(Number(addr!.split(':')[1]), '127.0.0.1');
    let raw = '';
    const ended = new Promise((r) => sock.once('close', r));
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      raw += d;
    });
    try {
      sock.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
      await new Promise((r) => setTimeout(r, 100));
      const closed = srv.close();
      sock.write('GET /late HTTP/1.1\r\nHost: x\r\n\r\n');
      await new Promise((r) => setTimeout(r, 100));
      release();
      await Promise.all([closed, ended]);
      const responses = raw.split(/(?=HTTP\/1\.1 )/);
      assert.equal(responses.length, 2, raw);
      assert.match(responses[0]!, /^HTTP\/1\.1 200 [\s\S]*\/slow/);
      assert.match(responses[1]!, /^HTTP\/1\.1 503 [\s\S]*connection: close[\s\S]*Service Unavailable\n$/i);
    } finally {
      sock.destroy();
    }
  });
});
