// ceems_lb's configuration file read by the common lenient rule: unknown keys and the first releases'
// backend layout (`tsdb_urls` / `pyroscope_urls`, credentials inside the URLs) are warnings, not errors.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../../src/lb/config.js';

const dir = mkdtempSync(join(tmpdir(), 'ceems-lb-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = (text: string) => {
  const p = join(dir, `lb-${++n}.yml`);
  writeFileSync(p, text);
  return p;
};

describe('ceems_lb config', () => {
  it("reads the first releases' tsdb_urls / pyroscope_urls, credentials in the URL as basic auth", () => {
    const path = file(`ceems_lb:
  strategy: round-robin
  backends:
    - id: slurm-0
      tsdb_urls:
        - http://alice:p%40ss:word@tsdb-1:9090
        - http://tsdb-2:9090/prom
      pyroscope_urls: [http://pyro:4040]
`);
    const cfg = loadConfig(path, false);
    const tsdb = cfg.types.find((t) => t.type === 'tsdb')!.clusters.get('slurm-0');
    assert.deepEqual(tsdb, [
      {
        url: 'http://tsdb-1:9090',
        client: { basic_auth: { username: 'alice', password: 'p@ss:word' } },
        filterLabels: [],
      },
      { url: 'http://tsdb-2:9090/prom', client: {}, filterLabels: [] },
    ]);
    assert.deepEqual(cfg.types.find((t) => t.type === 'pyroscope')!.clusters.get('slurm-0'), [
      { url: 'http://pyro:4040', client: {}, filterLabels: [] },
    ]);
    assert.deepEqual(cfg.notices, [
      {
        kind: 'deprecated',
        file: path,
        key: 'ceems_lb.backends.0.tsdb_urls',
        use: 'ceems_lb.backends.0.tsdb',
      },
      {
        kind: 'deprecated',
        file: path,
        key: 'ceems_lb.backends.0.pyroscope_urls',
        use: 'ceems_lb.backends.0.pyroscope',
      },
    ]);
  });

  it('unknown keys are notices; a wrong type still fails naming the key', () => {
    const path = file(
      'ceems_lb:\n  backends:\n    - id: c1\n      tsdb:\n        - web: {url: http://p:9090, timeout: 5s}\n          weight: 2\n',
    );
    assert.deepEqual(
      loadConfig(path, false).notices.map((x) => x.key),
      ['ceems_lb.backends.0.tsdb.0.web.timeout', 'ceems_lb.backends.0.tsdb.0.weight'],
    );
    assert.throws(
      () => loadConfig(file('ceems_lb:\n  backends:\n    - id: c1\n      tsdb_urls: http://p:9090\n'), false),
      /ceems_lb\.backends\.0\.tsdb: .*expected array/,
    );
  });

  it("the API server's PostgreSQL (data.backend: postgres) is read through data.url, not data.path [D-LB-20]", () => {
    const lb = 'ceems_lb:\n  backends:\n    - id: c1\n      tsdb_urls: [http://p:9090]\n';
    const url = 'postgres://ceems:secret@db.example:5432/ceems?sslmode=verify-full';
    const cfg = loadConfig(
      file(`${lb}ceems_api_server:\n  data:\n    backend: postgres\n    url: '${url}'\n    path: ${dir}\n`),
      false,
    );
    assert.equal(cfg.dbUrl, url);
    assert.equal(cfg.dbFile, undefined);
    assert.throws(
      () => loadConfig(file(`${lb}ceems_api_server:\n  data:\n    backend: postgres\n`), false),
      /ceems_api_server\.data\.url: required with ceems_api_server\.data\.backend: postgres/,
    );
    assert.throws(
      () => loadConfig(file(`${lb}ceems_api_server:\n  data:\n    backend: mysql\n`), false),
      /ceems_api_server\.data\.backend/,
    );
    assert.equal(loadConfig(file(lb), false).dbUrl, undefined);
  });
});
