// The rdma sub-collector through the exporter binary: flags parsed once for slurm, samples on /metrics,
// per-PID counters switched off again when the exporter shuts down.

import assert from 'node:assert/strict';
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { runProgram, startProgram } from '../../../helpers/process.js';

const FIX = resolve(import.meta.dirname, '../../../fixtures');
const tmp = mkdtempSync(join(tmpdir(), 'rdma-exporter-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('ceems_exporter --collector.rdma.stats', () => {
  it('lists the stats flag in --help and hides the command path', async () => {
    const help = await runProgram('ceems_exporter', ['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--\[no-\]collector\.rdma\.stats +Enables collection of RDMA stats/);
    assert.doesNotMatch(help.stdout, /collector\.rdma\.cmd/);
  });

  it('serves the per-job and port samples and switches per-PID counters off at shutdown', async () => {
    cpSync(join(FIX, 'rdma'), tmp, { recursive: true, filter: (src) => !src.includes('/sys') });
    // the exporter runs the tool as nobody (uid 0 for `set`): it must reach it and append to its log
    chmodSync(tmp, 0o755);
    writeFileSync(join(tmp, 'calls.log'), '', { mode: 0o666 });
    chmodSync(join(tmp, 'calls.log'), 0o666);
    const exporter = await startProgram('ceems_exporter', [
      '--web.listen-address=127.0.0.1:0',
      '--web.disable-exporter-metrics',
      '--collector.disable-defaults',
      '--collector.slurm',
      '--collector.cgroups.force-version=v2',
      '--collector.gpu.type=nogpu',
      `--path.cgroupfs=${join(FIX, 'cgroup/v2')}`,
      `--path.procfs=${join(FIX, 'cgroup/proc')}`,
      `--path.sysfs=${join(FIX, 'rdma/sys')}`,
      '--collector.rdma.stats',
      `--collector.rdma.cmd=${join(tmp, 'rdma')}`,
    ]);
    try {
      const body = await (await fetch(`${exporter.url}/metrics`)).text();
      assert.match(
        body,
        /^ceems_scrape_collector_duration_seconds\{collector="slurm",subcollector="rdma"\} /m,
      );
      assert.match(body, /^ceems_scrape_collector_success\{collector="slurm"\} 1$/m);
      assert.match(
        body,
        /^ceems_rdma_qps_active\{device="mlx5_0",hostname="[^"]*",manager="slurm",port="1",uuid="1009248"\} [1-9]\d*$/m,
      );
      assert.match(
        body,
        /^ceems_rdma_state_id\{device="mlx5_1",hostname="[^"]*",manager="slurm",port="2"\} [1-9]\d*$/m,
      );
      assert.match(body, /^ceems_compute_unit_cpu_user_seconds_total\{/m);
    } finally {
      assert.equal(await exporter.stop(), 0);
    }
    const calls = readFileSync(join(tmp, 'calls.log'), 'utf8').trimEnd().split('\n');
    assert.deepEqual(calls.slice(-2), [
      'statistic qp set link mlx5_0/1 auto off',
      'statistic qp set link mlx5_1/2 auto off',
    ]);
  });
});
