// `config create-web-config` as an operator's script uses it: the password is read from the original's
// stderr line, the generated files secure a real ceems_exporter (TLS + basic auth) and a real Prometheus
// scrapes it with them (promtool accepts that scrape config); `check web-config` accepts the file.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type Started, startProgram } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';
import { type RealPrometheus, startPrometheus } from '../unit/cli/prometheus-server.js';
import { promtool, runTool, TESTBED_EXPORTER_ARGS } from '../unit/cli/tool.js';

describe('ceems_tool config create-web-config with a real exporter and Prometheus', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ceems-web-config-'));
  let exporter: Started | undefined;
  let prom: RealPrometheus | undefined;

  after(async () => {
    await prom?.stop();
    await exporter?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the printed password and the certificate let Prometheus scrape the secured exporter', async () => {
    const gen = await runTool([
      'config',
      'create-web-config',
      '--tls=true',
      '--tls.host=127.0.0.1',
      `--output-dir=${dir}`,
    ]);
    assert.equal(gen.code, 0, gen.stderr);
    // what a script greps
    const password = /^plain text password for basic auth is (\S+)$/m.exec(gen.stderr)?.[1];
    assert.ok(password, gen.stderr);
    const check = await runTool(['check', 'web-config', join(dir, 'web-config.yml')]);
    assert.equal(check.stderr, `${join(dir, 'web-config.yml')} SUCCESS\n`);

    exporter = await startProgram(
      'ceems_exporter',
      [...TESTBED_EXPORTER_ARGS, `--web.config.file=${join(dir, 'web-config.yml')}`],
      { scheme: 'https' },
    );
    const tls = { ca_file: join(dir, 'cert.pem') };
    prom = await startPrometheus({
      secured: {
        address: exporter.address,
        scrapeConfig: { scheme: 'https', basic_auth: { username: 'ceems', password }, tls_config: tls },
      },
      'wrong-password': {
        address: exporter.address,
        scrapeConfig: {
          scheme: 'https',
          basic_auth: { username: 'ceems', password: `${password}x` },
          tls_config: tls,
        },
      },
    });
    promtool(['check', 'config', prom.configFile]);
    const up = await waitFor('both targets scraped', 30_000, async () => {
      const r = await prom!.query('up');
      return r.length === 2 ? new Map(r.map((s) => [s.metric.job, s.value])) : undefined;
    });
    assert.equal(up.get('secured'), 1);
    assert.equal(up.get('wrong-password'), 0);
    const cpus = await prom.query('ceems_cpu_count{job="secured"}');
    assert.equal(cpus.length, 1);
  });
});
