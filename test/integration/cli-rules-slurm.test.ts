// End to end on the SLURM testbed: the project's exporter (slurm, cpu, meminfo and estimated-power
// collectors) scraped by a real Prometheus; ceems_tool generates the rules from what Prometheus sees, and
// once loaded they give a non-empty, positive per-unit power series for a running SLURM job.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Started, startProgram } from '../helpers/process.js';
import { submitJob } from '../helpers/slurm.js';
import { waitFor } from '../helpers/wait.js';
import { type RealPrometheus, startPrometheus } from '../unit/cli/prometheus-server.js';
import { runTool, TESTBED_EXPORTER_ARGS } from '../unit/cli/tool.js';

function testbedEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  const file = `${env.CEEMS_TESTBED_ROOT ?? '/tmp/ceems-testbed'}/slurm/env.sh`;
  if (!env.CEEMS_TESTBED_SLURM_JOBDIR && existsSync(file)) {
    for (const m of readFileSync(file, 'utf8').matchAll(/^export (\w+)=['"]?(.*?)['"]?$/gm))
      env[m[1]!] = m[2]!;
  }
  if (!env.CEEMS_TESTBED_SLURM_JOBDIR) {
    throw new Error('SLURM testbed not found: run shared/testbed/slurm/up.sh (or export its variables)');
  }
  return env;
}

describe('ceems_tool rules on the real SLURM testbed', () => {
  const env = testbedEnv();
  let exporter: Started;
  let prom: RealPrometheus;
  let jobId: string | undefined;

  before(async () => {
    exporter = await startProgram('ceems_exporter', TESTBED_EXPORTER_ARGS);
    prom = await startPrometheus({ 'ceems-slurm': exporter.address });
  });

  after(async () => {
    if (jobId) {
      try {
        execFileSync('scancel', [jobId], { env });
      } catch {
        // already finished
      }
    }
    await prom?.stop();
    await exporter?.stop();
  });

  it('gives a positive uuid:ceems_host_power_watts:pue series for a running job', async (t) => {
    jobId = submitJob('usr1', 'acc1', 'stress-ng --cpu 1 --timeout 60s', { mem: '128M', minutes: 2 });
    const sel = `{uuid="${jobId}"}`;
    // the job runs (it may wait for other tests' jobs) and Prometheus has a few samples of it
    await waitFor(`job ${jobId} in Prometheus`, 90_000, async () => {
      const r = await prom.query(`count_over_time(ceems_compute_unit_cpu_user_seconds_total${sel}[10s])`);
      return r.length === 1 && r[0]!.value >= 3 ? true : undefined;
    });

    const dir = join(prom.dir, 'rules');
    const { code, stderr } = await runTool([
      'tsdb',
      'create-recording-rules',
      `--url=${prom.url}`,
      `--output-dir=${dir}`,
      '--emission-factor=60',
    ]);
    assert.equal(code, 0, stderr);
    assert.equal(stderr, 'generating recording rules for job ceems-slurm in file ceems-slurm.rules\n');
    assert.deepEqual(readdirSync(dir), ['ceems-slurm.rules']);
    assert.match(readFileSync(join(dir, 'ceems-slurm.rules'), 'utf8'), /ceems_estimated_power_watts/);
    await prom.loadRules([join(dir, 'ceems-slurm.rules')]);

    const power = await waitFor('per-unit power of the job', 30_000, async () => {
      const r = await prom.query(`uuid:ceems_host_power_watts:pue${sel}`);
      return r.length === 1 && r[0]!.value > 0 ? r[0]! : undefined;
    });
    assert.equal(power.metric.manager, 'slurm');
    const node = await prom.query('instance:ceems_estimated_power_watts:pue');
    assert.equal(node.length, 1);
    // a unit never gets more than its node draws
    assert.ok(power.value <= node[0]!.value, `unit ${power.value} W > node ${node[0]!.value} W`);
    assert.ok(node[0]!.value >= 60 && node[0]!.value <= 160, `node estimate ${node[0]!.value} W`);
    const busy = await prom.query('instance:ceems_cpu_busy_seconds:rate');
    const share = await prom.query(`uuid:ceems_cpu_share:ratio${sel}`);
    t.diagnostic(
      `node ${node[0]!.value.toFixed(1)} W (estimated), job ${power.value.toFixed(1)} W, node busy ${busy[0]?.value.toFixed(2)} CPU-s/s, job CPU share ${share[0]?.value.toFixed(2)}`,
    );
    const usage = await prom.query(`uuid:ceems_cpu_usage:ratio_irate${sel}`);
    assert.ok(usage[0] && usage[0].value > 10, `CPU usage of the stress-ng job: ${usage[0]?.value}`);
    const co2 = await prom.query(`uuid:ceems_host_emissions_g_s:pue${sel}`);
    assert.equal(co2[0]?.metric.provider, 'custom');
    assert.ok(co2[0]!.value > 0);
  });
});
