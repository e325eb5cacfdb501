// MIG power split of the generated GPU rules in a real Prometheus: two units on two MIG instances of one
// A100 (3g.40gb: 42 SMs, 1g.10gb: 14 SMs), the CEEMS series as the exporter writes them and the DCGM series
// as dcgm-exporter writes them for MIG (profiling per instance with GPU_I_ID/GPU_I_PROFILE, power per
// device), relabelled with the configs ceems_tool prints. With SM activity and occupancy the device power is
// split by SMs × activity × occupancy (cli.md §2.3.1); when the instances idle, by SM count.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { waitFor } from '../helpers/wait.js';
import { type RealPrometheus, startPrometheus } from '../unit/cli/prometheus-server.js';
import { promtool, runTool, startExposition } from '../unit/cli/tool.js';

const GPU = 'GPU-4d3c2b1a-0f9e-4d8c-b7a6-958473625140';
const DEVICE_WATTS = 250;
const INSTANCES = [
  { uuid: '7001', gpuiid: '1', profile: '3g.40gb', sms: 42 },
  { uuid: '7002', gpuiid: '2', profile: '1g.10gb', sms: 14 },
];
/** SM activity and occupancy per instance; zero once the test makes the instances idle. */
let activity = [
  { active: 0.8, occupancy: 0.5 },
  { active: 0.5, occupancy: 0.4 },
];

const labels = (o: Record<string, string>) =>
  `{${Object.entries(o)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}}`;

function ceemsExposition(): string {
  const t = Date.now() / 1000;
  const node = { hostname: 'gpu-mig' };
  const lines = [
    `ceems_rapl_package_joules_total${labels({ ...node, index: '0', path: '/sys' })} ${100 * t}`,
    `ceems_compute_units${labels({ ...node, manager: 'slurm' })} 2`,
  ];
  for (const i of INSTANCES) {
    const unit = { cgrouphostname: 'gpu-mig', ...node, manager: 'slurm', uuid: i.uuid };
    const gpu = { ...unit, gpuiid: i.gpuiid, gpuuuid: GPU, hindex: 'gpu-mig/gpu-0', index: '0' };
    lines.push(
      `ceems_compute_unit_cpu_user_seconds_total${labels(unit)} ${t}`,
      `ceems_compute_unit_cpu_system_seconds_total${labels(unit)} ${t / 10}`,
      `ceems_compute_unit_cpus${labels(unit)} 4`,
      `ceems_compute_unit_gpu_index_flag${labels(gpu)} 1`,
      `ceems_compute_unit_gpu_sm_count${labels(gpu)} ${i.sms}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function dcgmExposition(): string {
  const device = {
    gpu: '0',
    UUID: GPU,
    pci_bus_id: '00000000:07:00.0',
    device: 'nvidia0',
    modelName: 'NVIDIA A100-SXM4-80GB',
    Hostname: 'gpu-mig',
    DCGM_FI_DRIVER_VERSION: '535.183.06',
  };
  const instance = (i: number) => ({
    ...device,
    GPU_I_PROFILE: INSTANCES[i]!.profile,
    GPU_I_ID: INSTANCES[i]!.gpuiid,
  });
  const field = (name: string, help: string, rows: string[]) => [
    `# HELP ${name} ${help}`,
    `# TYPE ${name} gauge`,
    ...rows,
  ];
  return `${[
    ...field('DCGM_FI_DEV_POWER_USAGE_INSTANT', 'Current instantaneous power usage (in W).', [
      `DCGM_FI_DEV_POWER_USAGE_INSTANT${labels(device)} ${DEVICE_WATTS}`,
    ]),
    ...field(
      'DCGM_FI_PROF_SM_ACTIVE',
      'The ratio of cycles an SM has at least 1 warp assigned.',
      activity.map((a, i) => `DCGM_FI_PROF_SM_ACTIVE${labels(instance(i))} ${a.active}`),
    ),
    ...field(
      'DCGM_FI_PROF_SM_OCCUPANCY',
      'The ratio of number of warps resident on an SM.',
      activity.map((a, i) => `DCGM_FI_PROF_SM_OCCUPANCY${labels(instance(i))} ${a.occupancy}`),
    ),
  ].join('\n')}\n`;
}

describe('MIG power split of the GPU rules in a real Prometheus', () => {
  const targets: { close: () => Promise<void> }[] = [];
  let prom: RealPrometheus;

  before(async () => {
    const ceems = await startExposition(ceemsExposition);
    const dcgm = await startExposition(dcgmExposition);
    targets.push(ceems, dcgm);
    prom = await startPrometheus({
      ceems: { address: ceems.address, instance: 'gpu-mig:9010' },
      dcgm: { address: dcgm.address, instance: 'gpu-mig:9400' },
    });
  });
  after(async () => {
    await prom?.stop();
    for (const t of targets) await t.close();
  });

  it('splits the device power by SMs × activity × occupancy, by SM count when idle', async () => {
    // a few samples of every series, so that rate() has its window
    await waitFor('both targets scraped a few times', 30_000, async () => {
      const r = await prom.query('count_over_time(up[10s]) >= 4');
      return r.length === 2 ? true : undefined;
    });
    const relabel = await runTool(['tsdb', 'create-relabel-configs', `--url=${prom.url}`]);
    assert.equal(relabel.code, 0, relabel.stderr);
    const configs = YAML.parse(relabel.stderr.slice(relabel.stderr.indexOf('\n') + 1)).scrape_configs;
    await prom.setMetricRelabelConfigs({ dcgm: configs[0].metric_relabel_configs });
    promtool(['check', 'config', prom.configFile]);
    await waitFor('relabelled MIG series', 30_000, async () => {
      const r = await prom.query(`DCGM_FI_PROF_SM_ACTIVE{gpuuuid="${GPU}",gpuiid="2"}`);
      return r.length === 1 ? true : undefined;
    });

    const out = join(prom.dir, 'rules');
    const gen = await runTool(['tsdb', 'create-recording-rules', `--url=${prom.url}`, `--output-dir=${out}`]);
    assert.equal(gen.code, 0, gen.stderr);
    promtool(['check', 'rules', join(out, 'dcgm-gpu.rules')]);
    await prom.loadRules([join(out, 'ceems.rules'), join(out, 'dcgm-gpu.rules')]);

    const power = async () => {
      const r = await prom.query('uuid:ceems_gpu_power_watts:pue');
      return new Map(r.map((s) => [s.metric.uuid!, s.value]));
    };
    const split = (weights: number[]) => weights.map((w) => (DEVICE_WATTS * w) / (weights[0]! + weights[1]!));
    const assertSplit = (got: Map<string, number>, want: number[]) => {
      INSTANCES.forEach((i, n) => {
        const v = got.get(i.uuid);
        assert.ok(
          v !== undefined && Math.abs(v - want[n]!) < 1e-6,
          `unit ${i.uuid}: ${v} W, expected ${want[n]} W`,
        );
      });
    };

    const weighted = split(INSTANCES.map((i, n) => i.sms * activity[n]!.active * activity[n]!.occupancy));
    assertSplit(
      await waitFor('per-unit MIG power', 30_000, async () => {
        const m = await power();
        return m.size === 2 ? m : undefined;
      }),
      weighted,
    );
    const active = await prom.query('uuid:ceems_gpu_sm_active:ratio{uuid="7001"}');
    assert.ok(Math.abs(active[0]!.value - 80) < 1e-9, JSON.stringify(active));

    // idle instances: the SM count decides
    activity = activity.map(() => ({ active: 0, occupancy: 0 }));
    const bySms = split(INSTANCES.map((i) => i.sms));
    const idle = await waitFor('per-unit MIG power of idle instances', 30_000, async () => {
      const m = await power();
      return Math.abs((m.get('7001') ?? 0) - bySms[0]!) < 1e-6 ? m : undefined;
    });
    assertSplit(idle, bySms);
  });
});
