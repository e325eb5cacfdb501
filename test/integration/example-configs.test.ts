// The example configurations shipped under etc/: each program starts on them without a configuration
// warning, and each example mentions every key its loader knows (active, or commented out as `# key:`),
// so that they cannot drift from the code.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import YAML from 'yaml';
import { z } from 'zod';
import { configSchema as apiConfigSchema, loadConfig as loadApiConfig } from '../../src/api/config.js';
import { k8sExtraConfigSchema } from '../../src/api/resource/k8s.js';
import { openstackExtraConfigSchema } from '../../src/api/resource/openstack.js';
import { tsdbExtraConfigSchema } from '../../src/api/updater/tsdb.js';
import { cacctConfigSchema, loadConfig as loadCacctConfig } from '../../src/cli/cacct/config.js';
import { parseLenient } from '../../src/common/config.js';
import { loadWebConfig, webConfigSchema } from '../../src/common/webconfig.js';
import { loadRedfishConfig, redfishConfigSchema } from '../../src/exporter/redfish/config.js';
import { lbConfigSchema, loadConfig as loadLbConfig } from '../../src/lb/config.js';
import { loadProxyConfig, proxyConfigSchema } from '../../src/redfish_proxy/proxy.js';
import { keyPaths, uncomment } from '../helpers/config-keys.js';
import { ROOT, type Started, startProgram } from '../helpers/process.js';

const etc = (f: string) => join(ROOT, 'etc', f);
const dir = mkdtempSync(join(tmpdir(), 'ceems-examples-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// extra_config is checked against the schema of its manager or updater
const clusterExtra = z.object({ ...openstackExtraConfigSchema.shape, ...k8sExtraConfigSchema.shape });
const apiExtra = (path: string) =>
  path === 'clusters[].extra_config'
    ? clusterExtra
    : path === 'updaters[].extra_config'
      ? tsdbExtraConfigSchema
      : undefined;

const EXAMPLES: Array<{
  file: string;
  schema: z.ZodType;
  load: (path: string) => unknown;
  extra?: typeof apiExtra;
}> = [
  {
    file: 'ceems_exporter/redfish-config.yml',
    schema: redfishConfigSchema,
    load: (p) => loadRedfishConfig(p, { expandEnv: false, nodeName: 'node1', env: {} }).notices,
  },
  {
    file: 'redfish_proxy/config.yml',
    schema: proxyConfigSchema,
    load: (p) => loadProxyConfig(p, false).notices,
  },
  {
    file: 'ceems_api_server/config.yml',
    schema: apiConfigSchema,
    load: (p) => loadApiConfig(p).notices,
    extra: apiExtra,
  },
  { file: 'ceems_lb/config.yml', schema: lbConfigSchema, load: (p) => loadLbConfig(p, false).notices },
  {
    file: 'ceems/config.yml',
    schema: cacctConfigSchema,
    load: (p) => {
      const warnings: string[] = [];
      loadCacctConfig(p, (l) => warnings.push(l));
      return warnings;
    },
  },
  ...['ceems_exporter', 'ceems_api_server', 'ceems_lb', 'redfish_proxy'].map((program) => ({
    file: `${program}/web-config.yml`,
    schema: webConfigSchema,
    load: (p: string) => {
      loadWebConfig(p);
      return [];
    },
  })),
];

describe('example configurations', () => {
  for (const ex of EXAMPLES) {
    it(`${ex.file} loads without a warning and names every key of its loader`, () => {
      assert.deepEqual(ex.load(etc(ex.file)), [], 'the active settings hold no unknown or old key');
      // with every commented-out setting made active, the file is still valid and holds every key
      const all = YAML.parse(uncomment(readFileSync(etc(ex.file), 'utf8')));
      const { notices } = parseLenient(ex.schema, all, { file: ex.file, what: ex.file });
      assert.deepEqual(notices, [], 'every commented-out setting is a known key at its place');
      const known = keyPaths(ex.schema, undefined, ex.extra);
      const shown = keyPaths(ex.schema, all, ex.extra);
      assert.deepEqual(
        [...known].filter((k) => !shown.has(k)),
        [],
        `keys the loader knows that ${ex.file} does not mention`,
      );
    });
  }

  it('the check is not vacuous: a key missing from an example is found', () => {
    const text = readFileSync(etc('redfish_proxy/config.yml'), 'utf8').replace(/^.*no_proxy.*\n/m, '');
    const shown = keyPaths(proxyConfigSchema, YAML.parse(uncomment(text)));
    assert.ok(keyPaths(proxyConfigSchema).has('<http client>.no_proxy'));
    assert.ok(!shown.has('<http client>.no_proxy'));
  });
});

describe('programs start on the example configurations', () => {
  const started: Started[] = [];
  after(async () => {
    for (const p of started) await p.stop();
  });
  const start = async (program: string, args: string[]) => {
    const p = await startProgram(program, [...args, '--web.listen-address=127.0.0.1:0']);
    started.push(p);
    const r = await fetch(`${p.url}/`);
    await r.body?.cancel();
    assert.doesNotMatch(p.stderr(), /configuration key|level=ERROR/, p.stderr());
    return p;
  };

  it('ceems_exporter with its web config and the Redfish config', async () => {
    await start('ceems_exporter', [
      `--web.config.file=${etc('ceems_exporter/web-config.yml')}`,
      '--collector.redfish',
      `--collector.redfish.config.file=${etc('ceems_exporter/redfish-config.yml')}`,
    ]);
  });

  it('ceems_api_server (its data directory moved to a temporary one)', async () => {
    const config = join(dir, 'api.yml');
    const text = readFileSync(etc('ceems_api_server/config.yml'), 'utf8');
    assert.match(text, /^ {4}path: \/var\/lib\/ceems$/m);
    writeFileSync(config, text.replace(/^ {4}path: \/var\/lib\/ceems$/m, `    path: ${join(dir, 'data')}`));
    await start('ceems_api_server', [
      `--config.file=${config}`,
      `--web.config.file=${etc('ceems_api_server/web-config.yml')}`,
    ]);
  });

  it('ceems_lb (asking a stand-in API server that knows cluster slurm-0)', async () => {
    // the LB checks its backend ids against the API server's clusters at start-up, which a fresh API
    // server only knows after its first collection from SLURM
    const api = createServer((req, res) => {
      res.setHeader('Content-Type', 'application/json');
      const data = req.url?.startsWith('/api/v1/clusters/admin') ? [{ id: 'slurm-0', manager: 'slurm' }] : [];
      res.end(JSON.stringify({ status: 'success', data }));
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    try {
      const lbConfig = join(dir, 'lb.yml');
      const text = readFileSync(etc('ceems_lb/config.yml'), 'utf8');
      assert.match(text, /^ {4}url: http:\/\/localhost:9020$/m);
      const { port } = api.address() as AddressInfo;
      writeFileSync(
        lbConfig,
        text.replace(/^ {4}url: http:\/\/localhost:9020$/m, `    url: http://127.0.0.1:${port}`),
      );
      const lb = await start('ceems_lb', [
        `--config.file=${lbConfig}`,
        `--web.config.file=${etc('ceems_lb/web-config.yml')}`,
      ]);
      await lb.stop();
    } finally {
      api.closeAllConnections();
      await new Promise((r) => api.close(r));
    }
  });

  it('redfish_proxy', async () => {
    await start('redfish_proxy', [
      `--config.file=${etc('redfish_proxy/config.yml')}`,
      `--web.config.file=${etc('redfish_proxy/web-config.yml')}`,
    ]);
  });
});
