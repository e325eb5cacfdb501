// ceems_exporter as a process: defaults on this machine's /proc, HTTP behaviour, flags, web config
// (TLS, client certificates, basic auth), resource stability over many scrapes.

import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { Agent, request } from 'undici';
import { ROOT, runProgram, type Started, startProgram } from '../helpers/process.js';
import { makePki, type TestPki } from '../helpers/tls.js';

const LOCAL = ['--web.listen-address=127.0.0.1:0'];
// bcrypt hash of "s3cret" (cost 4 keeps the test fast; cost does not change the verification path)
const HASH = '$2b$04$G2pNLfYeT5esQzc2YwTgnuWnEY2OSBJ.nzf6qJ2CQNgiPW.Az4.5K';

async function get(url: string, headers: Record<string, string> = {}, dispatcher?: Agent) {
  const res = await request(url, { headers, dispatcher });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body };
}

function sample(text: string, prefix: string): number {
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  assert.ok(line, `no line starting with ${prefix}`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('ceems_exporter with its defaults on this machine', () => {
  let exp: Started;
  before(async () => {
    exp = await startProgram('ceems_exporter', LOCAL, { env: { NODE_NAME: '' } });
  });
  after(() => exp.stop());

  it('serves real CPU and memory figures of this machine', async () => {
    const ticksBefore =
      Number(readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/)[1]) / 100;
    const res = await get(`${exp.url}/metrics`);
    const ticksAfter =
      Number(readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/)[1]) / 100;
    assert.equal(res.status, 200);
    assert.equal(
      res.headers['content-type'],
      'text/plain; version=0.0.4; charset=utf-8; escaping=underscores',
    );
    const text = res.body.toString();
    const host = hostname();
    const user = sample(text, `ceems_cpu_seconds_total{hostname="${host}",mode="user"}`);
    assert.ok(
      user >= ticksBefore && user <= ticksAfter,
      `user seconds ${user} within [${ticksBefore}, ${ticksAfter}]`,
    );
    const cpus = readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .filter((l) => /^cpu\d+ /.test(l)).length;
    assert.equal(sample(text, `ceems_cpu_count{hostname="${host}"}`), cpus);
    const memTotal = Number(/^MemTotal:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))![1]) * 1024;
    assert.equal(sample(text, `ceems_meminfo_MemTotal_bytes{hostname="${host}"}`), memTotal);
    assert.equal(sample(text, 'ceems_scrape_collector_success{collector="cpu"}'), 1);
    assert.equal(sample(text, 'ceems_scrape_collector_success{collector="meminfo"}'), 1);
    assert.match(
      text,
      /^ceems_exporter_build_info\{branch="[^"]*",goarch="(amd64|arm64)",goos="linux",goversion="node24\.[0-9.]+",revision="[^"]*",tags="[^"]*",version="[^"]+"\} 1$/m,
    );
    assert.match(text, /^process_resident_memory_bytes \d/m);
    assert.match(text, /^promhttp_metric_handler_requests_total\{code="200"\} \d+$/m);
  });

  it('gzips when asked', async () => {
    const res = await get(`${exp.url}/metrics`, { 'accept-encoding': 'gzip, deflate' });
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.match(gunzipSync(res.body).toString(), /^# HELP ceems_cpu_count Number of CPUs\.$/m);
  });

  it('answers /health, the landing page and 404 for unknown paths', async () => {
    const health = await get(`${exp.url}/health`);
    assert.equal(health.status, 200);
    assert.equal(health.body.toString(), 'CEEMS Exporter is healthy');
    assert.equal(health.headers['x-content-type-options'], 'nosniff');
    const landing = await get(`${exp.url}/`);
    assert.match(landing.body.toString(), /<a href="\/metrics">Metrics<\/a>/);
    assert.match(landing.body.toString(), /#3cc9beff/);
    const missing = await get(`${exp.url}/nope`);
    assert.equal(missing.status, 404);
  });

  it('answers HEAD like GET without a body, ignores the query, and 404s other methods', async () => {
    const head = await request(`${exp.url}/metrics`, { method: 'HEAD' });
    await head.body.dump();
    assert.equal(head.statusCode, 200);
    assert.equal(
      head.headers['content-type'],
      'text/plain; version=0.0.4; charset=utf-8; escaping=underscores',
    );
    const query = await get(`${exp.url}/metrics?collect[]=cpu`);
    assert.equal(query.status, 200);
    assert.match(query.body.toString(), /^ceems_cpu_count\{/m);
    const post = await request(`${exp.url}/metrics`, { method: 'POST', body: 'x' });
    assert.equal(post.statusCode, 404);
    assert.equal(await post.body.text(), '404 page not found\n');
    assert.equal((await get(`${exp.url}/metrics/`)).status, 404);
  });

  it('keeps open file descriptors and memory flat over 200 consecutive scrapes', async () => {
    const fds = () => readdirSync(`/proc/${exp.pid}/fd`).length;
    const rssKb = () => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${exp.pid}/status`, 'utf8'))![1]);
    for (let i = 0; i < 30; i++) await get(`${exp.url}/metrics`); // warm up JIT, pools, caches
    const fd0 = fds();
    const rss0 = rssKb();
    for (let i = 0; i < 200; i++) assert.equal((await get(`${exp.url}/metrics`)).status, 200);
    const fd1 = fds();
    const rss1 = rssKb();
    assert.ok(fd1 <= fd0 + 2, `fds grew from ${fd0} to ${fd1}`);
    assert.ok(rss1 - rss0 < 30 * 1024, `RSS grew by ${rss1 - rss0} kB`);
  });
});

describe('ceems_exporter concurrency limit', () => {
  it('answers 503 beyond --web.max-requests concurrent scrapes and serves again afterwards', async () => {
    // a BMC tool that hangs makes each scrape last about its 1 s call limit
    const dir = mkdtempSync(join(tmpdir(), 'ceems-ipmi-mode-'));
    chmodSync(dir, 0o755); // the test-mode tool runs as the exporter's run-as user (nobody)
    const mode = join(dir, 'mode');
    writeFileSync(mode, 'hang');
    const exp = await startProgram(
      'ceems_exporter',
      [
        ...LOCAL,
        '--collector.disable-defaults',
        '--collector.ipmi_dcmi',
        `--collector.ipmi_dcmi.cmd=${join(ROOT, 'test/fixtures/ipmi/bin/ipmitool')} dcmi power reading`,
        '--collector.ipmi_dcmi.test-mode',
        '--web.max-requests=1',
      ],
      { env: { FAKE_IPMI_MODE_FILE: mode } },
    );
    try {
      const first = get(`${exp.url}/metrics`);
      await new Promise((r) => setTimeout(r, 300));
      const second = await get(`${exp.url}/metrics`);
      assert.equal(second.status, 503);
      assert.equal(second.body.toString(), 'Limit of concurrent requests reached (1), try again later.\n');
      assert.equal((await first).status, 200);
      const third = await get(`${exp.url}/metrics`);
      assert.equal(third.status, 200);
      assert.match(third.body.toString(), /^promhttp_metric_handler_requests_total\{code="503"\} 1$/m);
    } finally {
      await exp.stop();
    }
  });
});

describe('ceems_exporter labels', () => {
  it('takes hostname from NODE_NAME and empties it with --collector.empty-hostname-label', async () => {
    const named = await startProgram(
      'ceems_exporter',
      [...LOCAL, '--collector.disable-defaults', '--collector.cpu'],
      { env: { NODE_NAME: 'node-042' } },
    );
    try {
      assert.match(
        (await get(`${named.url}/metrics`)).body.toString(),
        /^ceems_cpu_count\{hostname="node-042"\} \d+$/m,
      );
    } finally {
      await named.stop();
    }
    const empty = await startProgram(
      'ceems_exporter',
      [...LOCAL, '--collector.disable-defaults', '--collector.cpu', '--collector.empty-hostname-label'],
      { env: { NODE_NAME: 'node-042' } },
    );
    try {
      assert.match(
        (await get(`${empty.url}/metrics`)).body.toString(),
        /^ceems_cpu_count\{hostname=""\} \d+$/m,
      );
    } finally {
      await empty.stop();
    }
  });
});

describe('ceems_exporter privileges', () => {
  const uidOf = (pid: number) =>
    Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  it('drops root to nobody after start-up when no collector needs capabilities', async () => {
    const exp = await startProgram('ceems_exporter', [
      ...LOCAL,
      '--collector.disable-defaults',
      '--collector.cpu',
    ]);
    try {
      for (let i = 0; i < 50 && !exp.stderr().includes('Dropped root privileges'); i++)
        await new Promise((r) => setTimeout(r, 100));
      assert.equal(
        uidOf(exp.pid),
        Number(/^nobody:[^:]*:(\d+)/m.exec(readFileSync('/etc/passwd', 'utf8'))![1]),
      );
      assert.match(exp.stderr(), /msg="Dropped root privileges" user=nobody/);
      assert.equal((await get(`${exp.url}/metrics`)).status, 200);
    } finally {
      await exp.stop();
    }
  });
  it('rejects an unknown run-as user', async () => {
    const r = await runProgram('ceems_exporter', [
      ...LOCAL,
      '--collector.disable-defaults',
      '--collector.cpu',
      '--security.run-as-user=no_such_user',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--security.run-as-user: user 'no_such_user' not found/);
  });
});

describe('ceems_exporter command line', () => {
  it('rejects an unknown flag with one line naming it and a non-zero exit', async () => {
    const r = await runProgram('ceems_exporter', ['--collector.nope']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "ceems_exporter: error: unknown long flag '--collector.nope', try --help\n");
  });
  it('rejects a bad value naming the flag', async () => {
    const r = await runProgram('ceems_exporter', ['--web.max-requests=lots']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /invalid value 'lots' for flag '--web.max-requests'/);
    const lvl = await runProgram('ceems_exporter', ['--log.level=chatty']);
    assert.equal(lvl.code, 1);
    assert.match(lvl.stderr, /'--log.level': must be one of 'debug', 'info', 'warn', 'error'/);
  });
  it('refuses systemd socket activation with a clear error and warns about the Go debug server', async () => {
    const r = await runProgram('ceems_exporter', [...LOCAL, '--web.systemd-socket', '--web.debug-server']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /msg="--web.debug-server: Go pprof endpoints are not available in this implementation"/,
    );
    assert.match(r.stderr, /ceems_exporter: error: --web.systemd-socket is not supported by this build/);
  });
  it('rejects a bad listen address before serving', async () => {
    const r = await runProgram('ceems_exporter', ['--web.listen-address=nohost']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /invalid listen address 'nohost'/);
  });
  it('prints help and version', async () => {
    const help = await runProgram('ceems_exporter', ['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--\[no-\]collector\.cpu/);
    assert.match(help.stdout, /--web\.listen-address=STRING \.\.\./);
    assert.doesNotMatch(help.stdout, /path\.procfs/, 'hidden flags stay hidden');
    const version = await runProgram('ceems_exporter', ['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^ceems_exporter, version \S+ \(branch: \S+, revision: \S+\)\n/);
  });
});

describe('ceems_exporter bad node data', () => {
  it('marks cpu failed on a malformed /proc/stat and keeps serving', async () => {
    const proc = mkdtempSync(join(tmpdir(), 'ceems-proc-'));
    chmodSync(proc, 0o755); // readable after the exporter drops to nobody, like the real /proc
    writeFileSync(join(proc, 'stat'), 'cpu  12 x 3\ncpu0 1 2 3 4 5 6 7 8 9 10\n');
    writeFileSync(join(proc, 'meminfo'), 'MemTotal:       1000 kB\nMemFree:         500 kB\n');
    const exp = await startProgram('ceems_exporter', [
      ...LOCAL,
      '--path.procfs',
      proc,
      '--collector.disable-defaults',
      '--collector.cpu',
      '--collector.meminfo',
    ]);
    try {
      const text = (await get(`${exp.url}/metrics`)).body.toString();
      assert.equal(sample(text, 'ceems_scrape_collector_success{collector="cpu"}'), 0);
      assert.equal(sample(text, 'ceems_scrape_collector_success{collector="meminfo"}'), 1);
      assert.match(exp.stderr(), /collector=cpu err="malformed aggregate cpu line/);
      assert.equal((await get(`${exp.url}/health`)).status, 200);
    } finally {
      await exp.stop();
    }
  });
});

describe('ceems_exporter web config', () => {
  let pki: TestPki;
  let dir: string;
  before(() => {
    pki = makePki();
    dir = mkdtempSync(join(tmpdir(), 'ceems-webcfg-'));
  });
  const write = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const auth = (u: string, p: string) => ({
    authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`,
  });

  it('serves HTTPS with basic auth: right password 200, wrong or missing 401', async () => {
    const cfg = write(
      'tls-auth.yml',
      `tls_server_config:\n  cert_file: ${pki.serverCert}\n  key_file: ${pki.serverKey}\nbasic_auth_users:\n  alice: ${HASH}\n`,
    );
    const exp = await startProgram(
      'ceems_exporter',
      [...LOCAL, '--collector.disable-defaults', '--collector.cpu', `--web.config.file=${cfg}`],
      { scheme: 'https' },
    );
    const tls = new Agent({ connect: { ca: pki.caPem } });
    try {
      const ok = await get(`${exp.url}/metrics`, auth('alice', 's3cret'), tls);
      assert.equal(ok.status, 200);
      assert.match(ok.body.toString(), /^ceems_cpu_count/m);
      const wrong = await get(`${exp.url}/metrics`, auth('alice', 'nope'), tls);
      assert.equal(wrong.status, 401);
      assert.equal(wrong.headers['www-authenticate'], 'Basic');
      assert.equal((await get(`${exp.url}/metrics`, auth('mallory', 's3cret'), tls)).status, 401);
      assert.equal((await get(`${exp.url}/metrics`, {}, tls)).status, 401);
      assert.equal((await get(`${exp.url}/health`, {}, tls)).status, 401, 'auth applies to every path');
      await assert.rejects(
        get(`${exp.url}/metrics`, auth('alice', 's3cret'), new Agent()),
        /certificate/i,
        'untrusted without the CA',
      );
    } finally {
      await tls.close();
      await exp.stop();
    }
  });

  it('requires and verifies client certificates when configured', async () => {
    const cfg = write(
      'mtls.yml',
      `tls_server_config:\n  cert_file: ${pki.serverCert}\n  key_file: ${pki.serverKey}\n  client_ca_file: ${pki.caCert}\n  client_auth_type: RequireAndVerifyClientCert\n  min_version: TLS13\n`,
    );
    const exp = await startProgram(
      'ceems_exporter',
      [...LOCAL, '--collector.disable-defaults', '--collector.cpu', `--web.config.file=${cfg}`],
      { scheme: 'https' },
    );
    const withCert = new Agent({
      connect: { ca: pki.caPem, cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) },
    });
    const noCert = new Agent({ connect: { ca: pki.caPem } });
    try {
      assert.equal((await get(`${exp.url}/metrics`, {}, withCert)).status, 200);
      await assert.rejects(get(`${exp.url}/metrics`, {}, noCert));
    } finally {
      await withCert.close();
      await noCert.close();
      await exp.stop();
    }
  });

  it('logs a bad bcrypt hash clearly, refuses that user and keeps serving others', async () => {
    const cfg = write('badhash.yml', `basic_auth_users:\n  alice: ${HASH}\n  bob: not-a-bcrypt-hash\n`);
    const exp = await startProgram('ceems_exporter', [
      ...LOCAL,
      '--collector.disable-defaults',
      '--collector.cpu',
      `--web.config.file=${cfg}`,
    ]);
    try {
      assert.match(
        exp.stderr(),
        /level=ERROR msg="basic_auth_users: password hash is not a valid bcrypt hash; this user can never log in" user=bob/,
      );
      assert.equal((await get(`${exp.url}/metrics`, auth('bob', 'not-a-bcrypt-hash'))).status, 401);
      assert.equal((await get(`${exp.url}/metrics`, auth('alice', 's3cret'))).status, 200);
    } finally {
      await exp.stop();
    }
  });

  it('picks up a changed password without a restart, after switching to nobody', async () => {
    // a root-only directory of its own (other tests' exporters grant and remove ACLs on the shared one):
    // nobody reads the file through the ACLs granted before the switch
    const own = mkdtempSync(join(tmpdir(), 'ceems-webcfg-rotate-'));
    const cfg = join(own, 'rotate.yml');
    writeFileSync(cfg, `basic_auth_users:\n  alice: ${HASH}\n`);
    const exp = await startProgram('ceems_exporter', [
      ...LOCAL,
      '--collector.disable-defaults',
      '--collector.cpu',
      `--web.config.file=${cfg}`,
    ]);
    try {
      for (let i = 0; i < 50 && !exp.stderr().includes('Dropped root privileges'); i++)
        await new Promise((r) => setTimeout(r, 100));
      assert.match(exp.stderr(), /msg="Run-as user can read these files through ACLs"/);
      assert.match(exp.stderr(), /msg="Dropped root privileges" user=nobody/);
      assert.equal((await get(`${exp.url}/metrics`, auth('alice', 's3cret'))).status, 200);
      const bcrypt = (await import('bcryptjs')).default;
      writeFileSync(cfg, `basic_auth_users:\n  alice: ${bcrypt.hashSync('n3w', 4)}\n`);
      await new Promise((r) => setTimeout(r, 1100)); // the file is re-checked at most once a second
      assert.equal((await get(`${exp.url}/metrics`, auth('alice', 'n3w'))).status, 200);
      assert.equal((await get(`${exp.url}/metrics`, auth('alice', 's3cret'))).status, 401);
    } finally {
      await exp.stop();
    }
  });

  const badConfigs: [string, string, RegExp][] = [
    ['unknown key', 'basic_auth_user:\n  a: b\n', /unknown key\(s\) 'basic_auth_user'/],
    [
      'bad client auth type',
      `tls_server_config:\n  cert_file: ${'x'}\n  key_file: y\n  client_auth_type: Sometimes\n`,
      /client_auth_type/,
    ],
    [
      'missing cert file',
      'tls_server_config:\n  cert_file: /nonexistent/cert.pem\n  key_file: /nonexistent/key.pem\n',
      /cannot read cert_file '\/nonexistent\/cert\.pem': ENOENT/,
    ],
    [
      'forbidden header',
      'http_server_config:\n  headers:\n    Server: me\n',
      /HTTP header 'Server' can not be configured/,
    ],
    ['invalid YAML', 'basic_auth_users: [\n', /invalid YAML/],
  ];
  for (const [what, text, re] of badConfigs) {
    it(`refuses to start with a web config with ${what}`, async () => {
      const cfg = write(`bad-${what.replace(/\W/g, '_')}.yml`, text);
      const r = await runProgram('ceems_exporter', [...LOCAL, `--web.config.file=${cfg}`]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, re);
    });
  }

  it('refuses a key that does not match its certificate', async () => {
    const other = makePki();
    const cfg = write(
      'mismatch.yml',
      `tls_server_config:\n  cert_file: ${pki.serverCert}\n  key_file: ${other.serverKey}\n`,
    );
    const r = await runProgram('ceems_exporter', [...LOCAL, `--web.config.file=${cfg}`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /invalid TLS certificate or key/);
  });

  it('adds the configured security headers', async () => {
    mkdirSync(dir, { recursive: true });
    const cfg = write('headers.yml', 'http_server_config:\n  headers:\n    X-Frame-Options: deny\n');
    const exp = await startProgram('ceems_exporter', [
      ...LOCAL,
      '--collector.disable-defaults',
      '--collector.cpu',
      `--web.config.file=${cfg}`,
    ]);
    try {
      assert.equal((await get(`${exp.url}/metrics`)).headers['x-frame-options'], 'deny');
    } finally {
      await exp.stop();
    }
  });
});
