import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../../../src/api/config.js';
import { ConfigError } from '../../../src/common/config.js';

const dir = mkdtempSync(join(tmpdir(), 'ceems-apicfg-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string): string {
  const p = join(dir, `c${n++}.yml`);
  writeFileSync(p, text);
  return p;
}

describe('API server config', () => {
  test('defaults of §3.1 on an empty file', () => {
    const { config, dataPath, backupPath, configDir } = loadConfig(file(''));
    const d = config.ceems_api_server.data;
    assert.equal(d.retention_period, 30 * 24 * 3600e3);
    assert.equal(d.update_interval, 15 * 60e3);
    assert.equal(d.max_update_interval, 3600e3);
    assert.equal(d.backup_interval, 24 * 3600e3);
    assert.equal(d.time_zone, 'Local');
    assert.equal(d.update_from, '');
    assert.equal(dataPath, join(process.cwd(), 'data'));
    assert.equal(backupPath, '');
    assert.equal(configDir, dir);
    assert.deepEqual(config.ceems_api_server.admin.users, []);
    assert.deepEqual(config.clusters, []);
  });

  test('the spec example parses; unknown top-level keys and ceems_api_server.web keys are ignored', () => {
    const { config } = loadConfig(
      file(`
ceems_api_server:
  data:
    path: /var/lib/ceems
    retention_period: 90d
    update_interval: 15m
    time_zone: Europe/Paris
  admin:
    users: [alice]
    grafana:
      url: https://grafana.example.org
      teams_ids: ["3", 4]
      authorization: {type: Bearer, credentials: s3cr3t}
  web:
    url: http://localhost:9020
    requests_limit: 30
clusters:
  - id: hpc-0
    manager: slurm
    updaters: [tsdb-0]
    cli: {path: /usr/bin}
updaters:
  - id: tsdb-0
    updater: tsdb
    web: {url: http://prometheus.example.org:9090}
    extra_config: {cutoff_duration: 5m}
ceems_lb:
  backends: []
`),
    );
    assert.equal(config.ceems_api_server.data.retention_period, 90 * 24 * 3600e3);
    assert.deepEqual(config.ceems_api_server.admin.grafana?.teams_ids, ['3', '4']);
    assert.equal(config.clusters[0]?.manager, 'slurm');
    assert.deepEqual(config.updaters[0]?.extra_config, { cutoff_duration: '5m' });
  });

  test('errors name the key and the value', () => {
    const cases: [string, RegExp][] = [
      [
        'ceems_api_server:\n  data:\n    update_interval: 15x\n',
        /ceems_api_server\.data\.update_interval: not a valid duration string.*15x/,
      ],
      ['ceems_api_server:\n  data:\n    update_interval: 0s\n', /update_interval: must be > 0/],
      [
        'ceems_api_server:\n  data:\n    time_zone: Mars/Base\n',
        /time_zone: unknown time zone \(got "Mars\/Base"\)/,
      ],
      ['ceems_api_server:\n  data:\n    update_from: yesterday\n', /update_from: must be/],
      ['clusters:\n  - id: "bad id"\n    manager: slurm\n', /clusters\.0\.id: invalid cluster ID.*"bad id"/],
      [
        'clusters:\n  - id: a\n    manager: pbs\n',
        /clusters\.0\.manager: unknown resource manager \(got "pbs"\)/,
      ],
      [
        'clusters:\n  - id: a\n    manager: slurm\n  - id: a\n    manager: k8s\n',
        /clusters\.1\.id: duplicate ID a/,
      ],
      ['updaters:\n  - id: u\n    updater: influx\n', /updaters\.0\.updater: unknown updater/],
      ['ceems_api_server:\n  admin:\n    grafana:\n      url: "not a url"\n', /admin\.grafana\.url/],
    ];
    for (const [text, re] of cases) {
      assert.throws(
        () => loadConfig(file(text)),
        (e: Error) => e instanceof ConfigError && re.test(e.message),
        text,
      );
    }
  });

  test('unknown keys are ignored (existing files keep working) and reported with the file', () => {
    const f = file(
      'ceems_api_server:\n  data:\n    pth: x\n  admin:\n    userz: [a]\n    grafana:\n      url: http://g:3000\n      team_ids: [1]\nclusters:\n  - id: c0\n    manager: slurm\n    cli: {path: /usr/bin, env: {}}\nceems_lbb: {}\n',
    );
    const { config, notices } = loadConfig(f);
    assert.equal(config.ceems_api_server.data.path, 'data');
    assert.deepEqual(
      notices.map((n) => [n.kind, n.file, n.key]),
      [
        'ceems_api_server.data.pth',
        'ceems_api_server.admin.grafana.team_ids',
        'ceems_api_server.admin.userz',
        'clusters.0.cli.env',
        'ceems_lbb',
      ].map((k) => ['unknown', f, k]),
    );
    assert.deepEqual(loadConfig(file('')).notices, []);
  });

  test("extra_config is read by its manager's or updater's schema: unknown keys reported with their place", () => {
    const f = file(
      'clusters:\n  - id: k0\n    manager: k8s\n    extra_config:\n      kubeconfig_file: /k\n      kubeconfig: /x\n  - id: s0\n    manager: slurm\n    extra_config: {anything: 1}\nupdaters:\n  - id: t0\n    updater: tsdb\n    extra_config:\n      cutoff_duration: 5m\n      cuttoff: 1m\n',
    );
    const { config, notices } = loadConfig(f);
    assert.deepEqual(
      notices.map((n) => n.key),
      ['clusters.0.extra_config.kubeconfig', 'updaters.0.extra_config.cuttoff'],
    );
    assert.deepEqual(config.clusters[0]?.extra_config, { kubeconfig_file: '/k' });
    assert.deepEqual(config.updaters[0]?.extra_config, { cutoff_duration: '5m' });
    assert.throws(
      () =>
        loadConfig(
          file('updaters:\n  - id: t0\n    updater: tsdb\n    extra_config: {query_max_series: many}\n'),
        ),
      /updaters\.0\.extra_config: query_max_series: .*\(got "many"\)/,
    );
  });

  test('backup_interval below one day is refused unless checks are disabled', () => {
    const f = file('ceems_api_server:\n  data:\n    backup_interval: 1h\n    backup_path: bk\n');
    assert.throws(() => loadConfig(f), /backup_interval of less than 1 day is not supported/);
    const ok = loadConfig(f, { disableChecks: true });
    assert.equal(ok.config.ceems_api_server.data.backup_interval, 3600e3);
    assert.equal(ok.backupPath, join(process.cwd(), 'bk'));
    assert.equal(
      loadConfig(file('ceems_api_server:\n  data:\n    backup_interval: 0s\n')).config.ceems_api_server.data
        .backup_interval,
      0,
    );
  });

  test('--config.file is required; env vars expand only when asked', () => {
    assert.throws(() => loadConfig(''), /--config\.file is required/);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the braced form is what is being expanded
    const f = file('ceems_api_server:\n  data:\n    path: ${DATA_DIR}/db$$x\n    time_zone: $TZNAME\n');
    const env = { DATA_DIR: '/srv/ceems', TZNAME: 'UTC' };
    const loaded = loadConfig(f, { expandEnv: true, env });
    assert.equal(loaded.dataPath, '/srv/ceems/db$x');
    assert.equal(loaded.config.ceems_api_server.data.time_zone, 'UTC');
    assert.throws(() => loadConfig(f, { env }), /time_zone: unknown time zone \(got "\$TZNAME"\)/);
  });

  test('backend postgres: data.url is required, must be a PostgreSQL URL, and backups go through pg_dump', () => {
    const cfg = (data: string) => file(`ceems_api_server:\n  data:\n    backend: postgres\n${data}`);
    assert.equal(loadConfig(file('')).config.ceems_api_server.data.backend, 'sqlite');
    const ok = loadConfig(cfg('    url: postgres://ceems:pw@db:5432/ceems?sslmode=verify-full\n'));
    assert.equal(
      ok.config.ceems_api_server.data.url,
      'postgres://ceems:pw@db:5432/ceems?sslmode=verify-full',
    );
    // a unix socket directory instead of a host
    loadConfig(cfg('    url: postgresql:///ceems?host=/run/postgresql&user=ceems\n'));
    assert.throws(
      () => loadConfig(cfg('')),
      (e: Error) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, /ceems_api_server\.data\.url: required with backend postgres/);
        return true;
      },
    );
    for (const bad of ['http://db/ceems', 'db:5432/ceems', 'postgres://:secret@/x']) {
      assert.throws(
        () => loadConfig(cfg(`    url: "${bad}"\n`)),
        (e: Error) => {
          assert.match(e.message, /ceems_api_server\.data\.url: not a PostgreSQL connection URL/);
          assert.doesNotMatch(e.message, /secret/, 'the password is not echoed');
          return true;
        },
        bad,
      );
    }
    assert.throws(
      () => loadConfig(cfg('    url: postgres://db/ceems\n    backup_path: /backups\n')),
      /ceems_api_server\.data\.backup_path: .*pg_dump/,
    );
    assert.throws(
      () => loadConfig(file('ceems_api_server:\n  data:\n    backend: mysql\n')),
      /backend.*must be sqlite or postgres/,
    );
  });
});
