// The one rule of every configuration file (common/config.ts): unknown keys and older names are notices,
// wrong types and missing required keys are fatal errors naming the key.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { z } from 'zod';
import { loadConfig as loadCacctConfig } from '../../../src/cli/cacct/config.js';
import {
  ConfigError,
  type ConfigNotice,
  logConfigNotices,
  noticeText,
  parseLenient,
} from '../../../src/common/config.js';

const schema = z.strictObject({
  server: z.strictObject({
    hostname: z.string(),
    port: z.number().int().default(80),
    tls_config: z.strictObject({ insecure_skip_verify: z.boolean().optional() }).optional(),
  }),
  targets: z.array(z.strictObject({ url: z.string() })).default([]),
  headers: z.record(z.string(), z.strictObject({ values: z.array(z.string()) })).default({}),
  shared: z.looseObject({ id: z.string().optional() }).optional(),
});
const opts = {
  file: '/etc/x.yml',
  what: "config file '/etc/x.yml'",
  renamed: [
    { in: '', from: 'old_server', to: 'server' },
    { in: 'server', from: 'host', to: 'hostname' },
    { in: 'server', from: 'insecure_skip_verify', to: 'tls_config.insecure_skip_verify' },
    { in: 'targets.*', from: 'address', to: 'url' },
  ],
};
const unknown = (key: string): ConfigNotice => ({ kind: 'unknown', file: '/etc/x.yml', key });
const deprecated = (key: string, use: string): ConfigNotice => ({
  kind: 'deprecated',
  file: '/etc/x.yml',
  key,
  use,
});

describe('parseLenient', () => {
  it('reports unknown keys at any depth (objects, list items, map values) and ignores them', () => {
    const input = {
      server: { hostname: 'h', colour: 'blue' },
      targets: [{ url: 'a' }, { url: 'b', weight: 2 }],
      headers: { 'X-A': { values: ['1'], secret: true } },
      shared: { id: 'c0', anything: 1 },
      extra: { deep: 1 },
    };
    const { config, notices } = parseLenient(schema, input, opts);
    assert.deepEqual(config, {
      server: { hostname: 'h', port: 80 },
      targets: [{ url: 'a' }, { url: 'b' }],
      headers: { 'X-A': { values: ['1'] } },
      shared: { id: 'c0', anything: 1 },
    });
    assert.deepEqual(notices, [
      unknown('server.colour'),
      unknown('targets.1.weight'),
      unknown('headers.X-A.secret'),
      unknown('extra'),
    ]);
    assert.deepEqual(input.server, { hostname: 'h', colour: 'blue' }, 'the input is not changed');
  });

  it('reads renamed keys under their new names; the new name wins when both are set', () => {
    const { config, notices } = parseLenient(
      schema,
      {
        old_server: { host: 'h', insecure_skip_verify: true },
        targets: [{ address: 'a' }, { address: 'old', url: 'new' }],
      },
      opts,
    );
    assert.equal(config.server.hostname, 'h');
    assert.deepEqual(config.server.tls_config, { insecure_skip_verify: true });
    assert.deepEqual(config.targets, [{ url: 'a' }, { url: 'new' }]);
    assert.deepEqual(notices, [
      deprecated('old_server', 'server'),
      deprecated('server.host', 'server.hostname'),
      deprecated('server.insecure_skip_verify', 'server.tls_config.insecure_skip_verify'),
      deprecated('targets.0.address', 'targets.0.url'),
      deprecated('targets.1.address', 'targets.1.url'),
    ]);
    const both = parseLenient(
      schema,
      { server: { hostname: 'h', insecure_skip_verify: true, tls_config: { insecure_skip_verify: false } } },
      opts,
    );
    assert.deepEqual(both.config.server.tls_config, { insecure_skip_verify: false });
  });

  it('wrong types and missing required keys stay fatal, naming the key and the value', () => {
    const fails = (input: unknown, re: RegExp) =>
      assert.throws(
        () => parseLenient(schema, input, opts),
        (e: Error) => e instanceof ConfigError && re.test(e.message),
      );
    fails({}, /^config file '\/etc\/x\.yml': server: /);
    fails({ server: { colour: 1 } }, /server\.hostname: Invalid input: expected string/);
    fails({ server: { hostname: 'h', port: '80' } }, /server\.port: .*\(got "80"\)/);
    // an unknown key next to a wrong one: only the wrong one is reported, it is fatal
    fails(
      { server: { hostname: 'h', port: 'x', colour: 1 } },
      /^config file '\/etc\/x\.yml': server\.port: [^;]*$/,
    );
    fails({ server: { hostname: 'h', tls_config: 'yes' } }, /server\.tls_config: /);
  });

  it('notices as log records and as command-line lines', () => {
    const lines: string[] = [];
    logConfigNotices({ warn: (fields, msg) => lines.push(`${msg} ${JSON.stringify(fields)}`) }, [
      unknown('a.b'),
      deprecated('host', 'hostname'),
    ]);
    assert.deepEqual(lines, [
      'Unknown configuration key ignored {"key":"a.b","file":"/etc/x.yml"}',
      'Deprecated configuration key; use the new name {"key":"host","use":"hostname","file":"/etc/x.yml"}',
    ]);
    assert.equal(noticeText(unknown('a.b')), "config file '/etc/x.yml': unknown key 'a.b' ignored");
  });
});

describe('cacct config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ceems-cacct-cfg-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('unknown keys are warnings on stderr; a missing URL stays an error', () => {
    const path = join(dir, 'config.yml');
    writeFileSync(
      path,
      'ceems_api_server:\n  cluster_id: c0\n  web:\n    url: http://api:9020\n    timeout: 5s\ncolour: blue\n',
    );
    const warnings: string[] = [];
    const cfg = loadCacctConfig(path, (l) => warnings.push(l));
    assert.equal(cfg.ceems_api_server.web.url, 'http://api:9020');
    assert.deepEqual(warnings, [
      `cacct: warning: config file '${path}': unknown key 'ceems_api_server.web.timeout' ignored\n`,
      `cacct: warning: config file '${path}': unknown key 'colour' ignored\n`,
    ]);
    writeFileSync(path, 'ceems_api_server:\n  web: {}\n');
    assert.throws(() => loadCacctConfig(path, () => {}), /ceems_api_server\.web\.url: /);
  });
});
