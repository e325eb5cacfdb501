// GPU recording rules end to end: three ceems_exporters on the SLURM testbed (NVIDIA, AMD device-metrics
// and AMD SMI nodes, GPUs from the fake nvidia-smi / amd-smi fixtures) and the GPU exporters of those
// nodes (faithful dcgm-exporter, AMD device-metrics exporter and AMD SMI exporter expositions), scraped by
// a real Prometheus. A SLURM job holds GPU 1 of each node. ceems_tool first writes the GPU rules although
// the exporters' series are not relabelled yet (with a warning), then prints the relabel configs; once
// they are in the scrape configs (promtool checks the config), the regenerated rules give the job's GPU
// power, usage, memory and profiling series computed from the fixtures, and the updater queries list them.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import type { UnitRecord } from '../../src/api/db/index.js';
import { TsdbUpdater } from '../../src/api/updater/tsdb.js';
import { createLogger } from '../../src/common/logger.js';
import { ROOT, type Started, startProgram } from '../helpers/process.js';
import { cancelJobs, submitJob } from '../helpers/slurm.js';
import { waitFor } from '../helpers/wait.js';
import { type RealPrometheus, startPrometheus } from '../unit/cli/prometheus-server.js';
import { promtool, runTool, startExposition, TESTBED_EXPORTER_ARGS } from '../unit/cli/tool.js';

const FIX = join(ROOT, 'test/fixtures');
const EXPOSITIONS = join(FIX, 'cli/ceems_tool/exporters');
const PUE = 1.5;

/** A GPU exporter serving a fixture exposition. */
const startGpuExporter = (file: string) => {
  const body = readFileSync(join(EXPOSITIONS, file));
  return startExposition(() => body);
};

/** A ceems_exporter standing for GPU node `node` (its hostname label). */
function startCeemsExporter(node: string, gpu: string[], env: NodeJS.ProcessEnv): Promise<Started> {
  return startProgram('ceems_exporter', [...TESTBED_EXPORTER_ARGS, ...gpu], {
    env: { NODE_NAME: node, ...env },
  });
}

const near = (got: number | undefined, want: number, what: string) =>
  assert.ok(
    got !== undefined && Math.abs(got - want) <= Math.abs(want) * 1e-6,
    `${what}: ${got}, expected ${want}`,
  );

describe('ceems_tool GPU rules with real exporters in a real Prometheus', () => {
  const exporters: Started[] = [];
  const gpuExporters: { close: () => Promise<void> }[] = [];
  let prom: RealPrometheus;
  let jobId = '';

  before(async () => {
    const gpuFix = join(FIX, 'gpu');
    const nv = await startCeemsExporter(
      'gpu-nv',
      [
        `--path.sysfs=${join(gpuFix, 'sysfs/nvidia')}`,
        '--collector.gpu.type=nvidia',
        `--collector.gpu.nvidia-smi-path=${join(gpuFix, 'bin/nvidia-smi')}`,
      ],
      { FAKE_SMI_FIXTURE: join(gpuFix, 'nvidia/h100x4') },
    );
    exporters.push(nv);
    const amd = ['--collector.gpu.type=amd', `--path.sysfs=${join(gpuFix, 'sysfs/mi300x-spx')}`];
    const amdEnv = { FAKE_SMI_FIXTURE: join(gpuFix, 'amd/amd-smi-mi300x-spx.json') };
    const amdSmiPath = `--collector.gpu.amd-smi-path=${join(gpuFix, 'bin/amd-smi')}`;
    exporters.push(await startCeemsExporter('gpu-amd', [...amd, amdSmiPath], amdEnv));
    exporters.push(await startCeemsExporter('gpu-smi', [...amd, amdSmiPath], amdEnv));
    const [dcgm, amdDm, amdSmi] = await Promise.all([
      startGpuExporter('dcgm-exporter-h100x4.prom'),
      startGpuExporter('amd-device-metrics-mi300x.prom'),
      startGpuExporter('amd-smi-exporter-mi300x.prom'),
    ]);
    gpuExporters.push(dcgm, amdDm, amdSmi);
    // each node has its own instance label, as with one host per node (the AMD SMI exporter's series
    // name their node only through it)
    prom = await startPrometheus({
      'ceems-nv': { address: exporters[0]!.address, instance: 'gpu-nv:9010' },
      'ceems-amd': { address: exporters[1]!.address, instance: 'gpu-amd:9010' },
      'ceems-smi': { address: exporters[2]!.address, instance: 'gpu-smi:9010' },
      dcgm: { address: dcgm.address, instance: 'gpu-nv:9400' },
      'amd-dm': { address: amdDm.address, instance: 'gpu-amd:5000' },
      'amd-smi': { address: amdSmi.address, instance: 'gpu-smi:2021' },
    });
    // the job's processes carry the GPU ordinal SLURM would give them (the testbed has no GRES)
    jobId = submitJob('usr1', 'acc1', 'SLURM_JOB_GPUS=1 stress-ng --cpu 1 --timeout 240s', {
      mem: '64M',
      minutes: 5,
    });
  });

  after(async () => {
    cancelJobs(jobId ? [jobId] : []);
    await prom?.stop();
    for (const e of exporters) await e.stop();
    for (const s of gpuExporters) await s.close();
  });

  it('rules before and after relabelling; per-unit GPU power, usage, memory and profiling', async (t) => {
    const unit = `{uuid="${jobId}"}`;
    await waitFor(`GPU flags of job ${jobId} from the three exporters`, 120_000, async () => {
      const r = await prom.query(`count_over_time(ceems_compute_unit_gpu_index_flag${unit}[10s])`);
      return r.length === 3 && r.every((s) => s.value >= 4) ? true : undefined;
    });

    // 1. GPU series not relabelled yet: the GPU rules are written all the same, with a warning each
    const before = join(prom.dir, 'rules-before');
    const first = await runTool([
      'tsdb',
      'create-recording-rules',
      `--url=${prom.url}`,
      `--output-dir=${before}`,
      '--emission-factor=100',
    ]);
    assert.equal(first.code, 0, first.stderr);
    for (const [job, label] of [
      ['dcgm', 'gpuuuid'],
      ['amd-dm', 'index'],
      ['amd-smi', 'index'],
    ]) {
      assert.match(first.stderr, new RegExp(`WARNING: job ${job}: \\S+ series have no ${label} label`));
    }
    const files = [
      'amd-dm-gpu.rules',
      'amd-smi-gpu.rules',
      'ceems-amd.rules',
      'ceems-nv.rules',
      'ceems-smi.rules',
      'dcgm-gpu.rules',
    ];
    assert.deepEqual(readdirSync(before).sort(), files);
    for (const f of files) promtool(['check', 'rules', join(before, f)]);
    // paired with the CEEMS job of the same node
    for (const [gpu, ceems] of [
      ['dcgm', 'ceems-nv'],
      ['amd-dm', 'ceems-amd'],
      ['amd-smi', 'ceems-smi'],
    ]) {
      assert.match(
        readFileSync(join(before, `${gpu}-gpu.rules`), 'utf8'),
        new RegExp(`ceems_compute_unit_gpu_index_flag\\{job="${ceems}"`),
      );
    }

    // 2. the relabel configs, merged into the scrape configs: a valid Prometheus config
    const relabel = await runTool(['tsdb', 'create-relabel-configs', `--url=${prom.url}`]);
    assert.equal(relabel.code, 0, relabel.stderr);
    const [header, ...yaml] = relabel.stderr.split('\n');
    assert.equal(header, 'Merge the following scrape_configs with the current config.');
    const configs = YAML.parse(yaml.join('\n')).scrape_configs as {
      job_name: string;
      metric_relabel_configs: unknown[];
    }[];
    assert.deepEqual(
      configs.map((c) => c.job_name),
      ['dcgm', 'amd-smi', 'amd-dm'],
    );
    await prom.setMetricRelabelConfigs(
      Object.fromEntries(configs.map((c) => [c.job_name, c.metric_relabel_configs])),
    );
    promtool(['check', 'config', prom.configFile]);
    await waitFor('relabelled GPU series', 30_000, async () => {
      const [nv, dm, smi] = await Promise.all([
        prom.query('DCGM_FI_DEV_POWER_USAGE_INSTANT{gpuuuid="GPU-0c7ab1d2-7f39-4e1a-b5c0-2e8d91f4a622"}'),
        prom.query('gpu_power_usage{index="1",gpu_id=""}'),
        prom.query('amd_gpu_use_percent{index="1",gpu_use_percent=""}'),
      ]);
      return nv.length === 1 && dm.length === 1 && smi.length === 1 ? true : undefined;
    });

    // 3. the rules generated now compute the job's GPU series from the fixtures' values
    const out = join(prom.dir, 'rules');
    const second = await runTool([
      'tsdb',
      'create-recording-rules',
      `--url=${prom.url}`,
      `--output-dir=${out}`,
      `--pue=${PUE}`,
      '--emission-factor=100',
    ]);
    assert.equal(second.code, 0, second.stderr);
    // only the original's progress lines, each CEEMS job's file followed by its GPU job's
    assert.equal(
      second.stderr,
      [
        ['job ceems-amd', 'ceems-amd.rules'],
        ['GPU for job amd-dm', 'amd-dm-gpu.rules'],
        ['job ceems-nv', 'ceems-nv.rules'],
        ['GPU for job dcgm', 'dcgm-gpu.rules'],
        ['job ceems-smi', 'ceems-smi.rules'],
        ['GPU for job amd-smi', 'amd-smi-gpu.rules'],
      ]
        .map(([what, file]) => `generating recording rules for ${what} in file ${file}\n`)
        .join(''),
    );
    assert.deepEqual(readdirSync(out).sort(), files);
    for (const f of files) promtool(['check', 'rules', join(out, f)]);
    await prom.loadRules(files.map((f) => join(out, f)));

    const byJob = async (record: string) => {
      const r = await prom.query(`${record}${unit}`);
      return new Map(r.map((s) => [s.metric.job!, s.value]));
    };
    const power = await waitFor('per-unit GPU power of the three nodes', 30_000, async () => {
      const m = await byJob('uuid:ceems_gpu_power_watts:pue');
      return m.size === 3 ? m : undefined;
    });
    near(power.get('ceems-nv'), PUE * 402.25, 'NVIDIA GPU power');
    near(power.get('ceems-amd'), PUE * 612.5, 'AMD device-metrics GPU power');
    near(power.get('ceems-smi'), PUE * 612.5, 'AMD SMI GPU power (µW)');

    const usage = await byJob('uuid:ceems_gpu_usage:ratio');
    near(usage.get('ceems-nv'), 66, 'NVIDIA usage (DCGM_FI_PROF_GR_ENGINE_ACTIVE)');
    near(usage.get('ceems-amd'), 88, 'AMD device-metrics usage');
    near(usage.get('ceems-smi'), 88, 'AMD SMI usage');
    const memory = await byJob('uuid:ceems_gpu_memory_usage:ratio');
    near(memory.get('ceems-nv'), (100 * 61234) / (61234 + 20325), 'NVIDIA memory');
    near(memory.get('ceems-amd'), (100 * 150000) / 196592, 'AMD device-metrics memory');
    near(memory.get('ceems-smi'), 76, 'AMD SMI memory');

    // profiling: DCGM ratios in %, byte rates as they are; AMD profiler series as they are
    const profiling: [string, string, number][] = [
      ['uuid:ceems_gpu_sm_active:ratio', 'ceems-nv', 61],
      ['uuid:ceems_gpu_sm_occupancy:ratio', 'ceems-nv', 35],
      ['uuid:ceems_gpu_gr_engine_active:ratio', 'ceems-nv', 66],
      ['uuid:ceems_gpu_pipe_tensor_active:ratio', 'ceems-nv', 22],
      ['uuid:ceems_gpu_pipe_fp64_active:ratio', 'ceems-nv', 2],
      ['uuid:ceems_gpu_pipe_fp32_active:ratio', 'ceems-nv', 18],
      ['uuid:ceems_gpu_pipe_fp16_active:ratio', 'ceems-nv', 12],
      ['uuid:ceems_gpu_dram_active:ratio', 'ceems-nv', 50],
      ['uuid:ceems_gpu_nvlink_tx_bytes:rate', 'ceems-nv', 2.5e9],
      ['uuid:ceems_gpu_nvlink_rx_bytes:rate', 'ceems-nv', 2.1e9],
      ['uuid:ceems_gpu_pcie_tx_bytes:rate', 'ceems-nv', 4e8],
      ['uuid:ceems_gpu_pcie_rx_bytes:rate', 'ceems-nv', 5e8],
      ['uuid:ceems_gpu_prof_sm_active:ratio', 'ceems-amd', 71.25],
      ['uuid:ceems_gpu_prof_occupancy_percent:ratio', 'ceems-amd', 42.5],
      ['uuid:ceems_gpu_prof_tensor_active_percent:ratio', 'ceems-amd', 33.5],
      ['uuid:ceems_gpu_prof_total_16_ops:sum', 'ceems-amd', 5.5e9],
      ['uuid:ceems_gpu_prof_total_32_ops:sum', 'ceems-amd', 7.7e9],
      ['uuid:ceems_gpu_prof_write_size:sum', 'ceems-amd', 1048576],
    ];
    for (const [record, job, want] of profiling) {
      const r = await prom.query(`${record}${unit}`);
      assert.equal(r.length, 1, `${record}: ${JSON.stringify(r)}`);
      assert.equal(r[0]!.metric.job, job, record);
      assert.equal(r[0]!.metric.hostname, job.replace('ceems-', 'gpu-'), record);
      near(r[0]!.value, want, record);
    }
    const co2 = await byJob('uuid:ceems_gpu_emissions_g_s:pue');
    near(co2.get('ceems-nv'), ((PUE * 402.25) / 3.6e6) * 100, 'NVIDIA GPU emissions');
    t.diagnostic(
      `job ${jobId}: GPU power ${[...power].map(([j, w]) => `${j} ${w} W`).join(', ')}; ${profiling.length} profiling series`,
    );

    // 4. the updater queries now hold the GPU metrics
    const q = await runTool(['tsdb', 'create-ceems-tsdb-updater-queries', `--url=${prom.url}`]);
    assert.equal(q.code, 0, q.stderr);
    assert.ok(q.stderr.startsWith('Queries for TSDB updater:\n---\n'), q.stderr);
    const queries = YAML.parse(q.stderr.slice(q.stderr.indexOf('\n') + 1)).queries as Record<
      string,
      Record<string, string> | null
    >;
    for (const k of ['avg_gpu_usage', 'avg_gpu_mem_usage', 'total_gpu_energy_usage_kwh'])
      assert.ok(queries[k], `${k} in\n${q.stderr}`);
    // a few evaluations of the rules, so that subqueries aligned to whole seconds see them
    await waitFor('3 evaluations of the GPU rules', 30_000, async () => {
      const r = await prom.query(`count_over_time(uuid:ceems_gpu_power_watts:pue${unit}[1m]) >= 3`);
      return r.length === 3 ? true : undefined;
    });
    // every query, rendered as the updater renders it, runs in Prometheus; those of the GPU job's
    // accounting give the job a positive value
    const expected = [
      'avg_cpu_usage.global',
      'avg_gpu_usage.global',
      'avg_gpu_mem_usage.global',
      'total_cpu_energy_usage_kwh.total',
      'total_gpu_energy_usage_kwh.total',
      'total_cpu_emissions_gms.custom_total',
      'total_gpu_emissions_gms.custom_total',
    ];
    const values = new Map<string, number>();
    // all at one instant: the recorded series are seconds old, so a window evaluated a moment later holds
    // more of them (CI saw the energy split read 0.66 of a total queried after it)
    const at = Date.now() / 1000;
    for (const [metric, subs] of Object.entries(queries)) {
      for (const [sub, template] of Object.entries(subs ?? {})) {
        const query = template
          .replaceAll('{{.UUIDs}}', jobId)
          .replaceAll('{{.Range}}', '30s')
          .replaceAll('{{.ScrapeInterval}}', '1s')
          .replaceAll('{{.ScrapeIntervalMilli}}', '1000');
        const r = await prom.query(query, at);
        // a `$<label>` sub-metric has one series per label value (issue 20): their sum is kept
        const split = sub.startsWith('$');
        assert.ok(
          (split || r.length <= 1) && r.every((x) => (x.metric.uuid ?? jobId) === jobId),
          `${query} → ${JSON.stringify(r)}`,
        );
        if (r[0])
          values.set(
            `${metric}.${sub}`,
            r.reduce((sum, x) => sum + x.value, 0),
          );
      }
    }
    for (const k of expected)
      assert.ok((values.get(k) ?? 0) > 0, `${k}: ${values.get(k)} (queries:\n${q.stderr})`);
    // the energy split by power source and by PUE adds up to the energy
    for (const part of ['cpu', 'gpu'])
      for (const split of [`by_source_kwh.$power_source`, 'by_pue_kwh.$pue']) {
        const total = values.get(`total_${part}_energy_usage_kwh.total`)!;
        const parts = values.get(`total_${part}_energy_${split}`)!;
        assert.ok(Math.abs(parts - total) <= 1e-9 * total, `${part} ${split}: ${parts} vs ${total}`);
      }
    // pasted into the API server's TSDB updater (empty keys included), they fill the job's unit
    const updater = new TsdbUpdater(
      { id: 'tsdb', updater: 'tsdb', web: { url: prom.url }, extra_config: { queries } },
      { logger: createLogger({ level: 'warn', write: (l) => t.diagnostic(l) }) },
    );
    // the last minute (the recorded series exist since the rules were loaded)
    const now = Date.now();
    const record: UnitRecord = { uuid: jobId, started_at_ts: now - 120_000, ended_at_ts: 0 };
    await updater.update('slurm', [record], now - 60_000, now);
    for (const k of expected) {
      const [metric, sub] = k.split('.') as [keyof UnitRecord, string];
      const value = (record[metric] as Record<string, number> | undefined)?.[sub];
      assert.ok(value !== undefined && value > 0, `unit ${k}: ${JSON.stringify(record)}`);
    }
  });
});
