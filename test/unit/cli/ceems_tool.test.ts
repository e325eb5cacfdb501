import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import YAML from 'yaml';
import { parseTime } from '../../../src/cli/ceems_tool/main.js';
import { AMD_DEVICE_PROFILING, DCGM_PROFILING } from '../../../src/cli/ceems_tool/rules.js';
import { createWebConfig } from '../../../src/cli/ceems_tool/webconfig.js';
import { runProgram } from '../../helpers/process.js';
import { startFake } from './fake-api.js';
import { type Labels, startFakePrometheus } from './fake-prometheus.js';
import { assertGolden } from './golden.js';
import { promtool, runTool } from './tool.js';

const WINDOW = ['--start=2024-05-06T10:00:00Z', '--end=2024-05-06T13:00:00Z'];

const tool = (argv: string[], answers: string[] = []) =>
  runTool(argv, {
    readLine: async () => answers.shift() ?? null,
    now: () => new Date('2024-05-06T13:00:00Z'),
  });

/** `promtool check rules` must accept every generated file. */
const promtoolCheck = (file: string) => promtool(['check', 'rules', file]);

const unitSeries = (job: string, host: string, uuid: string): Labels[] => [
  {
    __name__: 'ceems_compute_unit_cpu_user_seconds_total',
    job,
    instance: `${host}:9010`,
    hostname: host,
    manager: 'slurm',
    uuid,
    cgrouphostname: '',
  },
];
const nodeSeries = (name: string, job: string, host: string, extra: Labels = {}): Labels => ({
  __name__: name,
  job,
  instance: `${host}:9010`,
  hostname: host,
  ...extra,
});
const emissions = (provider: string): Labels => ({
  __name__: 'ceems_emissions_gCo2_kWh',
  job: 'emissions',
  instance: 'site:9010',
  country_code: 'FR',
  country: 'France',
  provider,
  provider_name: provider,
});
const gpuFlag = (job: string, host: string, uuid: string, gpu: Labels): Labels => ({
  __name__: 'ceems_compute_unit_gpu_index_flag',
  job,
  instance: `${host}:9010`,
  hostname: host,
  manager: 'slurm',
  uuid,
  cgrouphostname: '',
  hindex: `${host}/${gpu.index}`,
  gpuiid: '',
  ...gpu,
});

interface Variant {
  name: string;
  args: string[];
  series: Labels[];
  answers?: string[];
  /** value of the "BMC includes GPU power" check */
  bmcMinusGpu?: number;
  files: string[];
  warnings?: RegExp[];
}

const VARIANTS: Variant[] = [
  {
    name: 'rapl',
    args: ['--country-code=FR'],
    series: [
      ...unitSeries('ceems', 'cn01', '101'),
      nodeSeries('ceems_rapl_package_joules_total', 'ceems', 'cn01', { index: '0', path: '/sys' }),
      nodeSeries('ceems_rapl_dram_joules_total', 'ceems', 'cn01', { index: '0', path: '/sys' }),
      emissions('rte'),
      emissions('owid'),
      emissions('emaps'),
    ],
    files: ['ceems.rules'],
  },
  {
    name: 'rapl-package-only',
    args: ['--emission-factor=250', '--pue=1.3', '--eval-interval=30s'],
    series: [
      ...unitSeries('ceems', 'cn01', '101'),
      nodeSeries('ceems_rapl_package_joules_total', 'ceems', 'cn01', { index: '0', path: '/sys' }),
    ],
    files: ['ceems.rules'],
  },
  {
    name: 'ipmi',
    args: ['--country-code=DE'],
    series: [
      ...unitSeries('ceems', 'cn01', '101'),
      nodeSeries('ceems_ipmi_dcmi_current_watts', 'ceems', 'cn01'),
    ],
    files: ['ceems.rules'],
    warnings: [/^static emission factor \d+(\.\d+)? g\/kWh from OWID data will be used$/m],
  },
  {
    name: 'ipmi-rapl-nvidia',
    args: ['--country-code=FR', '--pue=1.2', '--disable-providers=emaps'],
    series: [
      ...unitSeries('slurm-nodes', 'gpu01', '201'),
      nodeSeries('ceems_ipmi_dcmi_current_watts', 'slurm-nodes', 'gpu01'),
      nodeSeries('ceems_rapl_package_joules_total', 'slurm-nodes', 'gpu01', { index: '0', path: '/sys' }),
      nodeSeries('ceems_rapl_dram_joules_total', 'slurm-nodes', 'gpu01', { index: '0', path: '/sys' }),
      gpuFlag('slurm-nodes', 'gpu01', '201', { index: '0', gpuuuid: 'GPU-aaaa' }),
      {
        __name__: 'DCGM_FI_DEV_POWER_USAGE_INSTANT',
        job: 'dcgm',
        instance: 'gpu01:9400',
        Hostname: 'gpu01',
        gpuuuid: 'GPU-aaaa',
        gpu: '0',
      },
      { __name__: 'DCGM_FI_DEV_GPU_UTIL', job: 'dcgm', instance: 'gpu01:9400', gpuuuid: 'GPU-aaaa' },
      { __name__: 'DCGM_FI_DEV_FB_USED', job: 'dcgm', instance: 'gpu01:9400', gpuuuid: 'GPU-aaaa' },
      { __name__: 'DCGM_FI_PROF_GR_ENGINE_ACTIVE', job: 'dcgm', instance: 'gpu01:9400', gpuuuid: 'GPU-aaaa' },
      emissions('rte'),
      emissions('emaps'),
    ],
    bmcMinusGpu: 120,
    files: ['dcgm-gpu.rules', 'slurm-nodes.rules'],
  },
  {
    name: 'rapl-gpu-profiling',
    args: ['--emission-factor=100'],
    series: [
      ...unitSeries('ceems', 'gpu01', '501'),
      ...unitSeries('ceems', 'gpu02', '502'),
      nodeSeries('ceems_rapl_package_joules_total', 'ceems', 'gpu01', { index: '0', path: '/sys' }),
      gpuFlag('ceems', 'gpu01', '501', { index: '0', gpuuuid: 'GPU-aaaa' }),
      gpuFlag('ceems', 'gpu02', '502', { index: '1' }),
      ...['DCGM_FI_DEV_POWER_USAGE_INSTANT', 'DCGM_FI_DEV_GPU_UTIL', ...DCGM_PROFILING].map((name) => ({
        __name__: name,
        job: 'dcgm',
        instance: 'gpu01:9400',
        Hostname: 'gpu01',
        gpuuuid: 'GPU-aaaa',
        gpu: '0',
      })),
      ...['gpu_power_usage', 'gpu_gfx_activity', ...AMD_DEVICE_PROFILING].map((name) => ({
        __name__: name,
        job: 'amd-dm',
        instance: 'gpu02:5000',
        hostname: 'gpu02',
        index: '1',
      })),
    ],
    files: ['amd-dm-gpu.rules', 'ceems.rules', 'dcgm-gpu.rules'],
  },
  {
    name: 'redfish-rapl',
    args: ['--emission-factor=100'],
    answers: ['1'],
    series: [
      ...unitSeries('ceems', 'cn01', '101'),
      nodeSeries('ceems_redfish_current_watts', 'ceems', 'cn01', { chassis: 'Enclosure_1' }),
      nodeSeries('ceems_redfish_current_watts', 'ceems', 'cn01', { chassis: 'System_Embedded_1' }),
      nodeSeries('ceems_rapl_package_joules_total', 'ceems', 'cn01', { index: '0', path: '/sys' }),
    ],
    files: ['ceems.rules'],
  },
  {
    name: 'cray-amd-device-metrics',
    args: ['--emission-factor=100'],
    series: [
      ...unitSeries('ceems', 'nid001', '301'),
      nodeSeries('ceems_cray_pm_counters_power_watts', 'ceems', 'nid001', { domain: 'node' }),
      nodeSeries('ceems_cray_pm_counters_power_watts', 'ceems', 'nid001', { domain: 'cpu' }),
      nodeSeries('ceems_ipmi_dcmi_current_watts', 'ceems', 'nid001'),
      gpuFlag('ceems', 'nid001', '301', { index: '1', gpuuuid: 'x' }),
      { __name__: 'gpu_power_usage', job: 'amd-dm', instance: 'nid001:5000', hostname: 'nid001', index: '1' },
      {
        __name__: 'gpu_gfx_activity',
        job: 'amd-dm',
        instance: 'nid001:5000',
        hostname: 'nid001',
        index: '1',
      },
    ],
    files: ['amd-dm-gpu.rules', 'ceems.rules'],
  },
  {
    name: 'estimated-amd-smi',
    args: ['--emission-factor=100'],
    series: [
      ...unitSeries('ceems', 'vm01', '401'),
      nodeSeries('ceems_estimated_power_watts', 'ceems', 'vm01', { estimated: 'true' }),
      gpuFlag('ceems', 'vm01', '401', { index: '0', gpuuuid: 'y' }),
      { __name__: 'amd_gpu_power', job: 'amd-smi', instance: 'vm01:2021', index: '0', gpu_power: '0' },
      { __name__: 'amd_gpu_use_percent', job: 'amd-smi', instance: 'vm01:2021', index: '0' },
      { __name__: 'amd_gpu_memory_use_percent', job: 'amd-smi', instance: 'vm01:2021', index: '0' },
    ],
    files: ['amd-smi-gpu.rules', 'ceems.rules'],
  },
];

describe('ceems_tool tsdb create-recording-rules', () => {
  for (const v of VARIANTS) {
    it(`${v.name}: golden rules files that promtool accepts`, async () => {
      const queries: string[] = [];
      const prom = await startFakePrometheus({
        jobs: { ceems: '10s', 'slurm-nodes': '30s', dcgm: '10s' },
        series: v.series,
        query: (q) => {
          queries.push(q);
          return v.bmcMinusGpu;
        },
      });
      const out = mkdtempSync(join(tmpdir(), 'rules-'));
      try {
        const r = await tool(
          [
            'tsdb',
            'create-recording-rules',
            `--url=${prom.url}`,
            ...WINDOW,
            `--output-dir=${out}`,
            ...v.args,
          ],
          v.answers,
        );
        assert.equal(r.code, 0, r.stderr);
        for (const w of v.warnings ?? []) assert.match(r.stderr, w);
        assert.deepEqual(readdirSync(out).sort(), v.files);
        for (const f of v.files) {
          assertGolden(readFileSync(join(out, f), 'utf8'), `ceems_tool/rules/${v.name}/${f}`);
          promtoolCheck(join(out, f));
        }
        if (v.bmcMinusGpu !== undefined) {
          assert.ok(
            queries.some((q) =>
              q.startsWith('min(min_over_time((sum by (hostname) (ceems_ipmi_dcmi_current_watts'),
            ),
          );
        }
      } finally {
        await prom.close();
      }
    });
  }

  it('asks which Redfish chassis when several report power, and refuses an invalid answer', async () => {
    const prom = await startFakePrometheus({
      series: VARIANTS.find((v) => v.name === 'redfish-rapl')!.series,
    });
    try {
      const out = mkdtempSync(join(tmpdir(), 'rules-'));
      const r = await tool(
        [
          'tsdb',
          'create-recording-rules',
          `--url=${prom.url}`,
          `--output-dir=${out}`,
          '--emission-factor=100',
        ],
        ['7'],
      );
      assert.equal(r.code, 1);
      // the original's prompt, 0-based
      assert.equal(
        r.stderr,
        'Multiple chassis found for ceems_redfish_current_watts for job ceems\n' +
          'Choose the chassis that reports host power usage\n' +
          '[0]: Enclosure_1\n[1]: System_Embedded_1\nEnter number between 0 and 1\n' +
          "ceems_tool: error: invalid choice '7': enter a number between 0 and 1 (or one of Enclosure_1, System_Embedded_1)\n",
      );
      const first = await tool(
        ['tsdb', 'create-recording-rules', `--url=${prom.url}`, `--output-dir=${out}`],
        ['0'],
      );
      assert.equal(first.code, 0, first.stderr);
      assert.match(readFileSync(join(out, 'ceems.rules'), 'utf8'), /chassis="Enclosure_1"/);
      const ok = await tool(
        ['tsdb', 'create-recording-rules', `--url=${prom.url}`, `--output-dir=${out}`],
        ['System_Embedded_1'],
      );
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(readFileSync(join(out, 'ceems.rules'), 'utf8'), /chassis="System_Embedded_1"/);
    } finally {
      await prom.close();
    }
  });

  it('does not subtract GPU power when the BMC reading falls below the GPU power', async () => {
    const v = VARIANTS.find((x) => x.name === 'ipmi-rapl-nvidia')!;
    const prom = await startFakePrometheus({ series: v.series, query: () => -50 });
    try {
      const out = mkdtempSync(join(tmpdir(), 'rules-'));
      const r = await tool([
        'tsdb',
        'create-recording-rules',
        `--url=${prom.url}`,
        `--output-dir=${out}`,
        ...v.args,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(readFileSync(join(out, 'slurm-nodes.rules'), 'utf8'), /DCGM/);
    } finally {
      await prom.close();
    }
  });

  it('writes the GPU rules of exporters not relabelled yet (paired by node, as the original), with a warning', async () => {
    const prom = await startFakePrometheus({
      series: [
        ...unitSeries('ceems', 'cn01', '1'),
        nodeSeries('ceems_ipmi_dcmi_current_watts', 'ceems', 'cn01'),
        gpuFlag('ceems', 'cn01', '1', { index: '0', gpuuuid: 'GPU-1' }),
        ...unitSeries('ceems', 'cn02', '2'),
        gpuFlag('ceems', 'cn02', '2', { index: '0', gpuuuid: 'GPU-2' }),
        // raw exporter labels: UUID / gpu_power / gpu_id, no gpuuuid / index yet
        {
          __name__: 'DCGM_FI_DEV_POWER_USAGE_INSTANT',
          job: 'dcgm',
          instance: 'cn01:9400',
          UUID: 'GPU-1',
          modelName: 'NVIDIA A100',
        },
        { __name__: 'amd_gpu_power', job: 'amd-smi', instance: 'cn02:2021', gpu_power: '0' },
        { __name__: 'gpu_power_usage', job: 'amd-dm', instance: 'cn02:5000', gpu_id: '0' },
        // a GPU exporter on a node without GPU units gets no rules
        { __name__: 'gpu_power_usage', job: 'amd-other', instance: 'cn09:5000', gpu_id: '0' },
      ],
    });
    try {
      const out = mkdtempSync(join(tmpdir(), 'rules-'));
      const r = await tool(['tsdb', 'create-recording-rules', `--url=${prom.url}`, `--output-dir=${out}`]);
      assert.equal(r.code, 0, r.stderr);
      for (const [job, metric, label] of [
        ['dcgm', 'DCGM_FI_DEV_POWER_USAGE_INSTANT', 'gpuuuid'],
        ['amd-smi', 'amd_gpu_power', 'index'],
        ['amd-dm', 'gpu_power_usage', 'index'],
      ]) {
        assert.ok(
          r.stderr.includes(
            `WARNING: job ${job}: ${metric} series have no ${label} label matching the units' GPUs: the GPU ` +
              'rules return data only once the relabel configs of `ceems_tool tsdb create-relabel-configs` are ' +
              'in its scrape config\n',
          ),
          r.stderr,
        );
      }
      assert.match(
        r.stderr,
        /WARNING: job amd-other: no gpu_power_usage series on a node whose units use GPUs; skipped/,
      );
      const files = ['amd-dm-gpu.rules', 'amd-smi-gpu.rules', 'ceems.rules', 'dcgm-gpu.rules'];
      assert.deepEqual(readdirSync(out).sort(), files);
      for (const f of files) promtoolCheck(join(out, f));
      assert.match(
        readFileSync(join(out, 'dcgm-gpu.rules'), 'utf8'),
        /ceems_compute_unit_gpu_index_flag\{job="ceems"/,
      );
      // each CEEMS job's line, then those of its GPU jobs
      assert.deepEqual(
        r.stderr.split('\n').filter((l) => l.startsWith('generating')),
        [
          'generating recording rules for job ceems in file ceems.rules',
          'generating recording rules for GPU for job dcgm in file dcgm-gpu.rules',
          'generating recording rules for GPU for job amd-smi in file amd-smi-gpu.rules',
          'generating recording rules for GPU for job amd-dm in file amd-dm-gpu.rules',
        ],
      );
    } finally {
      await prom.close();
    }
  });

  it('fails clearly when no CEEMS exporter or no power source is scraped, or Prometheus is down', async () => {
    const empty = await startFakePrometheus({ series: [] });
    const noPower = await startFakePrometheus({ series: unitSeries('ceems', 'cn01', '1') });
    try {
      let r = await tool([
        'tsdb',
        'create-recording-rules',
        `--url=${empty.url}`,
        '--output-dir=/tmp/h8-none',
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /no ceems_compute_unit_cpu_user_seconds_total series found in the window/);
      r = await tool([
        'tsdb',
        'create-recording-rules',
        `--url=${noPower.url}`,
        `--output-dir=${mkdtempSync(join(tmpdir(), 'r-'))}`,
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /WARNING: job ceems: no node power series/);
      assert.match(r.stderr, /no recording rules generated/);
    } finally {
      await empty.close();
      await noPower.close();
    }
    const r = await tool(['tsdb', 'create-recording-rules', '--url=http://127.0.0.1:9']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^ceems_tool: error: cannot reach Prometheus at http:\/\/127\.0\.0\.1:9\/api\/v1\/status\/config: ECONNREFUSED/,
    );
  });

  it('rejects bad flags with a message naming them', async () => {
    for (const [args, re] of [
      [['--pue=0.9'], /invalid --pue '0.9': expected a number ≥ 1/],
      [['--emission-factor=-1'], /invalid --emission-factor '-1'/],
      [['--eval-interval=soon', '--url=http://127.0.0.1:9'], /ceems_tool: error: /],
      [['--start=tomorrow'], /invalid --start 'tomorrow'/],
      [['--start=2024-05-07T00:00:00Z', '--end=2024-05-06T00:00:00Z'], /--start must be before --end/],
      // the original's rule and message
      [
        ['--country-code=FR', '--emission-factor=50'],
        /error: --country-code and --emission-factor cannot be used together\. Set atmost one\./,
      ],
      [
        ['--url=http://u:p@127.0.0.1:9', '--http.config.file=x.yml'],
        /--url with credentials cannot be combined with --http.config.file/,
      ],
    ] as [string[], RegExp][]) {
      const r = await tool(['tsdb', 'create-recording-rules', ...args]);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, re);
    }
  });
});

describe('ceems_tool tsdb create-relabel-configs / create-ceems-tsdb-updater-queries', () => {
  it('prints relabel configs for each GPU exporter job on stderr (golden)', async () => {
    const prom = await startFakePrometheus({
      series: [
        { __name__: 'DCGM_FI_DEV_POWER_USAGE_INSTANT', job: 'dcgm', UUID: 'GPU-1', modelName: 'NVIDIA A100' },
        { __name__: 'amd_gpu_power', job: 'amd-smi', gpu_power: '0' },
        { __name__: 'gpu_power_usage', job: 'amd-dm', gpu_id: '0' },
      ],
    });
    try {
      const r = await tool(['tsdb', 'create-relabel-configs', `--url=${prom.url}`, ...WINDOW]);
      const again = await tool(['tsdb', 'create-relabel-configs', `--url=${prom.url}`, ...WINDOW]);
      assert.equal(again.stderr, r.stderr);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '');
      assertGolden(r.stderr, 'ceems_tool/relabel-configs.yml');
      // the original's message line, then the YAML and a blank line
      const [header, ...rest] = r.stderr.split('\n');
      assert.equal(header, 'Merge the following scrape_configs with the current config.');
      assert.ok(r.stderr.endsWith('\n\n'));
      const yaml = rest.join('\n');
      // spelled out for each job: no anchors or aliases
      assert.doesNotMatch(yaml, /[&*][a-z]/);
      const parsed = YAML.parse(yaml);
      // jobs in the order of Prometheus' series (DCGM's capitalised labels sort first), as the original
      assert.deepEqual(
        parsed.scrape_configs.map((c: { job_name: string }) => c.job_name),
        ['dcgm', 'amd-smi', 'amd-dm'],
      );
      // one labeldrop entry per label
      const dcgm = parsed.scrape_configs[0].metric_relabel_configs;
      assert.deepEqual(
        dcgm.filter((c: { action: string }) => c.action === 'labeldrop'),
        [
          { regex: 'UUID', action: 'labeldrop' },
          { regex: 'GPU_I_ID', action: 'labeldrop' },
        ],
      );
    } finally {
      await prom.close();
    }
    const none = await startFakePrometheus({ series: [] });
    try {
      const r = await tool(['tsdb', 'create-relabel-configs', `--url=${none.url}`]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /no NVIDIA DCGM or AMD GPU exporter series found/);
    } finally {
      await none.close();
    }
  });

  it('prints updater queries only for the series and providers that exist (golden)', async () => {
    const rec = (name: string, extra: Labels = {}): Labels => ({
      __name__: name,
      job: 'ceems',
      uuid: '1',
      ...extra,
    });
    const prom = await startFakePrometheus({
      series: [
        rec('uuid:ceems_cpu_usage:ratio_irate'),
        rec('uuid:ceems_cpu_memory_usage:ratio'),
        rec('uuid:ceems_host_power_watts:pue'),
        rec('uuid:ceems_host_emissions_g_s:pue', { provider: 'rte' }),
        rec('uuid:ceems_host_emissions_g_s:pue', { provider: 'owid' }),
        rec('uuid:ceems_gpu_power_watts:pue'),
        rec('ceems_ebpf_write_bytes_total'),
        rec('ceems_ebpf_ingress_bytes_total'),
      ],
    });
    try {
      const r = await tool(['tsdb', 'create-ceems-tsdb-updater-queries', `--url=${prom.url}`, ...WINDOW]);
      assert.equal(r.code, 0, r.stderr);
      assertGolden(r.stderr, 'ceems_tool/updater-queries.yml');
      assert.ok(r.stderr.startsWith('Queries for TSDB updater:\n---\n\nqueries:\n  avg_cpu_mem_usage:\n'));
      const q = YAML.parse(r.stderr.slice(r.stderr.indexOf('\n') + 1)).queries;
      // every metric key in sorted order, empty (null) when none of its series exists
      assert.deepEqual(Object.keys(q), [
        'avg_cpu_mem_usage',
        'avg_cpu_usage',
        'avg_gpu_mem_usage',
        'avg_gpu_usage',
        'total_cpu_emissions_gms',
        'total_cpu_energy_by_pue_kwh',
        'total_cpu_energy_by_source_kwh',
        'total_cpu_energy_usage_kwh',
        'total_egress_stats',
        'total_gpu_emissions_gms',
        'total_gpu_energy_by_pue_kwh',
        'total_gpu_energy_by_source_kwh',
        'total_gpu_energy_usage_kwh',
        'total_ingress_stats',
        'total_io_read_stats',
        'total_io_write_stats',
      ]);
      assert.deepEqual(Object.keys(q.total_cpu_emissions_gms), ['owid_total', 'rte_total']);
      // the provenance maps split the energy by the labels of the per-unit power records (issue 20)
      assert.deepEqual(Object.keys(q.total_cpu_energy_by_source_kwh), ['$power_source']);
      assert.match(
        q.total_cpu_energy_by_pue_kwh.$pue,
        /^sum_over_time\(sum by \(uuid, pue\) \(uuid:ceems_host_power_watts:pue\{/,
      );
      assert.equal(q.avg_gpu_usage, null);
      assert.equal(q.total_gpu_emissions_gms, null);
    } finally {
      await prom.close();
    }
  });
});

describe('ceems_tool config create-web-config / check', () => {
  it('writes basic auth (bcrypt cost 10 of a 24-char password) and a self-signed P-256 certificate', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'webcfg-')), 'config');
    const r = await tool([
      'config',
      'create-web-config',
      '--tls',
      '--tls.host=node01',
      '--tls.host=10.0.0.1',
      '--tls.validity=48h',
      `--output-dir=${dir}`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    // the original's lines, on stderr
    assert.equal(r.stdout, '');
    const lines = r.stderr.split('\n');
    assert.equal(lines[0], `web config file created at ${join(dir, 'web-config.yml')}`);
    const password = /^plain text password for basic auth is ([a-zA-Z0-9]{24})$/.exec(lines[1]!)?.[1];
    assert.ok(password, r.stderr);
    assert.equal(
      lines.slice(2).join('\n'),
      'store the plain text password securely as you will need it to configure Prometheus\n',
    );
    const cfg = YAML.parse(readFileSync(join(dir, 'web-config.yml'), 'utf8'));
    assert.deepEqual(cfg.tls_server_config, { cert_file: 'cert.pem', key_file: 'key.pem' });
    assert.match(cfg.basic_auth_users.ceems, /^\$2[ab]\$10\$/);
    assert.ok(bcrypt.compareSync(password!, cfg.basic_auth_users.ceems));
    const cert = new X509Certificate(readFileSync(join(dir, 'cert.pem')));
    assert.equal(cert.subject, 'O=Acme Co');
    assert.equal(cert.ca, true);
    assert.equal(cert.subjectAltName, 'DNS:node01, IP Address:10.0.0.1');
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(cert.checkHost('node01'));
    const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000;
    assert.equal(Math.round(days), 2);
    assert.equal(statSync(join(dir, 'key.pem')).mode & 0o777, 0o600);
    // the generated file passes our own checker
    const c = await tool(['check', 'web-config', join(dir, 'web-config.yml')]);
    assert.equal(c.code, 0);
    assert.equal(c.stderr, `${join(dir, 'web-config.yml')} SUCCESS\n`);
  });

  it('basic auth only by default; two runs give different passwords', async () => {
    const a = await tool([
      'config',
      'create-web-config',
      `--output-dir=${mkdtempSync(join(tmpdir(), 'w-'))}`,
    ]);
    const b = await tool([
      'config',
      'create-web-config',
      `--output-dir=${mkdtempSync(join(tmpdir(), 'w-'))}`,
    ]);
    assert.equal(a.code, 0);
    assert.doesNotMatch(a.stderr, /certificate/);
    const password = (s: string) => /basic auth is (\S+)\n/.exec(s)?.[1];
    assert.ok(password(a.stderr));
    assert.notEqual(password(a.stderr), password(b.stderr));
  });

  it("accepts kingpin's boolean flag syntax (--flag=true|false, --no-flag)", async () => {
    const run = async (...flags: string[]) => {
      const dir = mkdtempSync(join(tmpdir(), 'w-'));
      const r = await tool(['config', 'create-web-config', ...flags, `--output-dir=${dir}`]);
      const cfg = r.code === 0 ? YAML.parse(readFileSync(join(dir, 'web-config.yml'), 'utf8')) : null;
      return { ...r, cfg };
    };
    let r = await run('--basic-auth=false', '--tls=true', '--tls.host=node01');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(Object.keys(r.cfg), ['tls_server_config']);
    assert.equal(r.stderr.split('\n').length, 2, 'no password lines without basic auth');
    r = await run('--no-basic-auth', '--tls', '--tls.host=node01');
    assert.deepEqual(Object.keys(r.cfg), ['tls_server_config']);
    r = await run('--basic-auth=TRUE', '--tls=false');
    assert.deepEqual(Object.keys(r.cfg), ['basic_auth_users']);
    r = await run('--tls=maybe');
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "ceems_tool: error: invalid --tls 'maybe': expected true or false\n");
  });

  it('errors: --tls without host, nothing enabled, missing openssl', async () => {
    let r = await tool([
      'config',
      'create-web-config',
      '--tls',
      `--output-dir=${mkdtempSync(join(tmpdir(), 'w-'))}`,
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--tls.host is required with --tls/);
    r = await tool([
      'config',
      'create-web-config',
      '--no-basic-auth',
      `--output-dir=${mkdtempSync(join(tmpdir(), 'w-'))}`,
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nothing to configure/);
    assert.throws(
      () =>
        createWebConfig({
          basicAuth: true,
          tls: true,
          hosts: ['h'],
          validityMs: 3600_000,
          outputDir: mkdtempSync(join(tmpdir(), 'w-')),
          openssl: '/nonexistent/openssl',
        }),
      /'\/nonexistent\/openssl' not found: install OpenSSL/,
    );
  });

  it('check web-config reports each file and fails if any is invalid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wc-'));
    writeFileSync(join(dir, 'good.yml'), `basic_auth_users:\n  a: ${bcrypt.hashSync('pw', 4)}\n`);
    writeFileSync(
      join(dir, 'bad.yml'),
      'tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.pem\n',
    );
    writeFileSync(join(dir, 'hash.yml'), 'basic_auth_users:\n  a: plaintext\n');
    // what the original's create-web-config writes without --tls: empty TLS paths mean no TLS
    writeFileSync(
      join(dir, 'original.yml'),
      `tls_server_config:\n  cert_file: ""\n  key_file: ""\nbasic_auth_users:\n  ceems: ${bcrypt.hashSync('pw', 4)}\n`,
    );
    const r = await tool([
      'check',
      'web-config',
      join(dir, 'good.yml'),
      join(dir, 'bad.yml'),
      join(dir, 'hash.yml'),
      join(dir, 'original.yml'),
    ]);
    assert.equal(r.code, 1);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines[0], `${join(dir, 'good.yml')} SUCCESS`);
    assert.match(lines[1]!, /bad\.yml FAILED: .*cannot read cert_file '.*missing\.pem': ENOENT/);
    assert.match(lines[2]!, /hash\.yml FAILED: basic_auth_users: not a bcrypt hash for user\(s\) 'a'/);
    assert.equal(lines[3], `${join(dir, 'original.yml')} SUCCESS`);
  });

  it('check api-healthy / lb-healthy: SUCCESS with the body, else exit 1 naming the status', async () => {
    const srv = await startFake((req) =>
      req.path === '/ok/health'
        ? { status: 200, body: 'CEEMS API Server is healthy' }
        : { status: 503, body: 'KO' },
    );
    try {
      let r = await tool(['check', 'api-healthy', `--url=${srv.url}/ok`]);
      assert.equal(r.code, 0);
      assert.equal(r.stderr, '  SUCCESS:  CEEMS API Server is healthy\n');
      r = await tool(['check', 'lb-healthy', `--url=${srv.url}`]);
      assert.equal(r.code, 1);
      assert.equal(
        r.stderr,
        `ceems_tool: error: CEEMS load balancer at ${srv.url}/health is not healthy: HTTP 503: KO\n`,
      );
      // credentials in the URL become basic auth
      r = await tool(['check', 'api-healthy', `--url=http://admin:pw@${srv.url.slice(7)}/ok`]);
      assert.equal(r.code, 0);
      assert.equal(
        srv.requests.at(-1)!.headers.authorization,
        `Basic ${Buffer.from('admin:pw').toString('base64')}`,
      );
      // global flags also before the command (kingpin places them anywhere); client config from a file
      const dir = mkdtempSync(join(tmpdir(), 'httpcfg-'));
      writeFileSync(join(dir, 'pw'), 'secret\n');
      writeFileSync(join(dir, 'client.yml'), 'basic_auth:\n  username: ops\n  password_file: pw\n');
      r = await tool([
        `--url=${srv.url}/ok`,
        `--http.config.file=${join(dir, 'client.yml')}`,
        'check',
        'api-healthy',
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(
        srv.requests.at(-1)!.headers.authorization,
        `Basic ${Buffer.from('ops:secret').toString('base64')}`,
      );
      writeFileSync(join(dir, 'bad.yml'), 'basic_auth:\n  user: ops\n');
      r = await tool([
        'check',
        'api-healthy',
        `--url=${srv.url}/ok`,
        `--http.config.file=${join(dir, 'bad.yml')}`,
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /HTTP config file '.*bad\.yml': basic_auth: unknown key\(s\) 'user'/);
    } finally {
      await srv.close();
    }
  });
});

describe('ceems_tool time flags', () => {
  it('--start/--end take RFC 3339 or Unix seconds', () => {
    assert.equal(parseTime('1714989600', 'start').toISOString(), '2024-05-06T10:00:00.000Z');
    assert.equal(parseTime('1714989600.5', 'start').getTime(), 1714989600500);
    assert.equal(parseTime('2024-05-06T12:00:00+02:00', 'end').toISOString(), '2024-05-06T10:00:00.000Z');
    assert.throws(() => parseTime('May 6', 'end'), /invalid --end 'May 6'/);
  });
});

describe('bin/ceems_tool', () => {
  it('--help on every command and subcommand, with examples', async () => {
    for (const args of [
      [],
      ['check'],
      ['check', 'api-healthy'],
      ['check', 'lb-healthy'],
      ['check', 'web-config'],
      ['config'],
      ['config', 'create-web-config'],
      ['tsdb'],
      ['tsdb', 'create-recording-rules'],
      ['tsdb', 'create-relabel-configs'],
      ['tsdb', 'create-ceems-tsdb-updater-queries'],
    ]) {
      const r = await tool([...args, '--help']);
      assert.equal(r.code, 0, args.join(' '));
      assert.match(r.stdout, /^Usage: ceems_tool/);
      assert.match(r.stdout, /Examples:\n {2}ceems_tool /, args.join(' '));
    }
    const r = await runProgram('ceems_tool', ['--version']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^ceems_tool, version /);
  });
});
