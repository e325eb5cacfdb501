// The Alloy targets endpoint of a running exporter (fixture cgroup tree and procfs).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT, startProgram } from '../helpers/process.js';

const FIX = join(ROOT, 'test/fixtures/cgroup');
const BASE = [
  '--collector.disable-defaults',
  '--collector.slurm',
  '--collector.cgroups.force-version=v2',
  '--collector.gpu.type=nogpu',
  `--path.cgroupfs=${join(FIX, 'v2')}`,
  `--path.procfs=${join(FIX, 'proc')}`,
  '--web.listen-address=127.0.0.1:0',
];

describe('exporter Alloy targets endpoint', () => {
  it('serves the targets as JSON on --web.targets-path and links it from the landing page', async () => {
    const exp = await startProgram('ceems_exporter', [
      ...BASE,
      '--discoverer.alloy-targets',
      '--discoverer.alloy-targets.env-var=SLURM_STEP',
      '--web.targets-path=/targets',
    ]);
    try {
      const res = await fetch(`${exp.url}/targets`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/json');
      assert.equal(
        await res.text(),
        '[{"targets":["1009251"],"labels":{"__process_pid__":"4220","service_name":"1009251"}},' +
          '{"targets":["1009248"],"labels":{"__process_pid__":"4202","service_name":"1009248"}}]\n',
      );
      assert.match(
        await (await fetch(`${exp.url}/`)).text(),
        /<a href="\/targets">Grafana Alloy Targets<\/a>/,
      );
      assert.equal((await fetch(`${exp.url}/alloy-targets`)).status, 404);
    } finally {
      await exp.stop();
    }
  });

  it('does not register the endpoint without --discoverer.alloy-targets', async () => {
    const exp = await startProgram('ceems_exporter', BASE);
    try {
      assert.equal((await fetch(`${exp.url}/alloy-targets`)).status, 404);
      assert.doesNotMatch(await (await fetch(`${exp.url}/`)).text(), /Grafana Alloy Targets/);
      const metrics = await (await fetch(`${exp.url}/metrics`)).text();
      assert.match(metrics, /^ceems_compute_units\{hostname="[^"]*",manager="slurm"\} 4$/m);
    } finally {
      await exp.stop();
    }
  });
});
