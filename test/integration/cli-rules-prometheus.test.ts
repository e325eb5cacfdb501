// Generated recording rules evaluated by a real Prometheus scraping an exporter-like target whose counters
// grow at known rates: the per-unit power, usage and emissions must match the attribution model (cli.md
// §2.3.1) computed by hand, and the updater-queries command must list what the rules produce.

import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { waitFor } from '../helpers/wait.js';
import { type FakeServer, startFake } from '../unit/cli/fake-api.js';
import { type RealPrometheus, startPrometheus } from '../unit/cli/prometheus-server.js';
import { runTool } from '../unit/cli/tool.js';

const T0 = Date.now() / 1000;
const NODE = { hostname: 'cn01' };
// per-second rates of the counters and gauge values of one node with two SLURM jobs
const RATES = { user: 1.6, system: 0.4, idle: 2.0, pkg: 200, dram: 50 };
const UNITS = [
  { uuid: '1001', user: 1.2, system: 0.3, cpus: 2, used: 4e9, total: 8e9 },
  { uuid: '1002', user: 0.4, system: 0.1, cpus: 1, used: 1e9, total: 4e9 },
];
const IPMI_WATTS = 400;
const MEM_TOTAL = 16e9;
const MEM_AVAILABLE = 6e9;
const EMISSION_FACTOR = 50;

function exposition(): string {
  // samples carry the time their value was computed, so that rate() sees the exact rates despite scrape jitter
  const nowMs = Date.now();
  const t = nowMs / 1000 - T0 + 1000; // counters start well above 0
  const l = (o: Record<string, string>) =>
    `{${Object.entries({ ...o })
      .map(([k, v]) => `${k}="${v}"`)
      .join(',')}}`;
  const lines: string[] = [];
  for (const mode of ['user', 'system', 'idle'] as const) {
    lines.push(`ceems_cpu_seconds_total${l({ ...NODE, mode })} ${RATES[mode] * t}`);
  }
  lines.push(
    `ceems_meminfo_MemTotal_bytes${l(NODE)} ${MEM_TOTAL}`,
    `ceems_meminfo_MemAvailable_bytes${l(NODE)} ${MEM_AVAILABLE}`,
  );
  lines.push(`ceems_compute_units${l({ ...NODE, manager: 'slurm' })} ${UNITS.length}`);
  lines.push(`ceems_rapl_package_joules_total${l({ ...NODE, index: '0', path: '/sys' })} ${RATES.pkg * t}`);
  lines.push(`ceems_rapl_dram_joules_total${l({ ...NODE, index: '0', path: '/sys' })} ${RATES.dram * t}`);
  lines.push(`ceems_ipmi_dcmi_current_watts${l(NODE)} ${IPMI_WATTS}`);
  lines.push(
    `ceems_emissions_gCo2_kWh${l({ country: 'France', country_code: 'FR', provider: 'rte', provider_name: 'RTE eCO2 Mix' })} ${EMISSION_FACTOR}`,
  );
  for (const u of UNITS) {
    const ul = l({ cgrouphostname: '', ...NODE, manager: 'slurm', uuid: u.uuid });
    lines.push(
      `ceems_compute_unit_cpu_user_seconds_total${ul} ${u.user * t}`,
      `ceems_compute_unit_cpu_system_seconds_total${ul} ${u.system * t}`,
      `ceems_compute_unit_cpus${ul} ${u.cpus}`,
      `ceems_compute_unit_memory_used_bytes${ul} ${u.used}`,
      `ceems_compute_unit_memory_total_bytes${ul} ${u.total}`,
    );
  }
  return `${lines.map((line) => `${line} ${nowMs}`).join('\n')}\n`;
}

/** The attribution model of §2.3.1 for IPMI with RAPL, by hand. */
function expectedHostPower(u: (typeof UNITS)[number]): number {
  const busy = RATES.user + RATES.system;
  const cpuShare = (u.user + u.system) / busy;
  const memShare = u.used / (MEM_TOTAL - MEM_AVAILABLE);
  const pkgFraction = RATES.pkg / (RATES.pkg + RATES.dram);
  return (
    0.9 * IPMI_WATTS * pkgFraction * cpuShare +
    0.9 * IPMI_WATTS * (1 - pkgFraction) * memShare +
    (0.1 * IPMI_WATTS) / UNITS.length
  );
}

describe('generated rules in a real Prometheus (exporter-like target)', () => {
  let target: FakeServer;
  let prom: RealPrometheus;

  before(async () => {
    target = await startFake(() => ({ status: 200, body: exposition() }));
    prom = await startPrometheus({ ceems: target.url.replace('http://', '') });
  });
  after(async () => {
    await prom?.stop();
    await target?.close();
  });

  it('per-unit power, usage and emissions follow the attribution model', async () => {
    // steady state: rate() over 4 scrape intervals underestimates while fewer than 4 samples exist
    await waitFor('unit series in Prometheus', 20_000, async () => {
      const r = await prom.query('count_over_time(ceems_compute_unit_cpu_user_seconds_total[10s])');
      return r.length === 2 && r.every((s) => s.value >= 6) ? true : undefined;
    });
    const out = join(prom.dir, 'rules');
    const gen = await runTool([
      'tsdb',
      'create-recording-rules',
      `--url=${prom.url}`,
      `--output-dir=${out}`,
      '--country-code=FR',
    ]);
    assert.equal(gen.code, 0, gen.stderr);
    assert.deepEqual(readdirSync(out), ['ceems.rules']);
    await prom.loadRules(readdirSync(out).map((f) => join(out, f)));

    const power = await waitFor('uuid:ceems_host_power_watts:pue', 30_000, async () => {
      const r = await prom.query('uuid:ceems_host_power_watts:pue');
      return r.length === 2 ? r : undefined;
    });
    for (const u of UNITS) {
      const got = power.find((s) => s.metric.uuid === u.uuid)!;
      assert.ok(got, `no power series for unit ${u.uuid}`);
      assert.equal(got.metric.job, 'ceems');
      assert.equal(got.metric.hostname, 'cn01');
      // provenance (issue 20): the BMC reading fed it, with the PUE applied
      assert.deepEqual([got.metric.power_source, got.metric.pue], ['ipmi', '1']);
      const want = expectedHostPower(u);
      assert.ok(
        Math.abs(got.value - want) / want < 0.02,
        `unit ${u.uuid}: ${got.value} W, expected ${want} W`,
      );
    }
    // 264.8 W and 99.2 W; the 10 % misc power is fully shared, the memory of non-unit processes is not
    const usage = await prom.query('uuid:ceems_cpu_usage:ratio_irate');
    const u1 = usage.find((s) => s.metric.uuid === '1001')!.value;
    assert.ok(Math.abs(u1 - 75) < 1.5, `CPU usage ${u1} %`);
    const mem = await prom.query('uuid:ceems_cpu_memory_usage:ratio{uuid="1001"}');
    assert.equal(mem[0]!.value, 50);

    const co2 = await waitFor('uuid:ceems_host_emissions_g_s:pue', 10_000, async () => {
      const r = await prom.query('uuid:ceems_host_emissions_g_s:pue{uuid="1001"}');
      return r.length === 1 ? r[0]! : undefined;
    });
    assert.equal(co2.metric.provider, 'rte');
    const watts = power.find((s) => s.metric.uuid === '1001')!.value;
    assert.ok(Math.abs(co2.value - (watts / 3.6e6) * EMISSION_FACTOR) / co2.value < 0.02);

    const job = await prom.query('job:ceems_host_power_watts:pue');
    assert.equal(job.length, 1);
    assert.ok(Math.abs(job[0]!.value - 364) / 364 < 0.02, `job power ${job[0]!.value}`);
    // unattributed power (issue 20, B4): the node's 400 W less the units' 364 W, i.e. the half of the
    // memory part (72 W) that non-unit processes use
    for (const [record, want] of [
      ['instance:ceems_host_power_watts:pue', 400],
      ['instance:ceems_unattributed_power_watts:pue', 36],
      ['job:ceems_unattributed_power_watts:pue', 36],
    ] as const) {
      const got = await prom.query(record);
      assert.equal(got.length, 1, `${record}: ${JSON.stringify(got)}`);
      assert.ok(
        Math.abs(got[0]!.value - want) / want < 0.02,
        `${record}: ${got[0]!.value} W, expected ${want} W`,
      );
    }

    // the updater queries now list the recorded series and the provider
    const q = await runTool(['tsdb', 'create-ceems-tsdb-updater-queries', `--url=${prom.url}`]);
    assert.equal(q.code, 0, q.stderr);
    assert.ok(q.stderr.startsWith('Queries for TSDB updater:\n---\n'), q.stderr);
    const queries = YAML.parse(q.stderr.slice(q.stderr.indexOf('\n') + 1)).queries;
    assert.deepEqual(
      Object.keys(queries).filter((k) => queries[k] !== null),
      [
        'avg_cpu_mem_usage',
        'avg_cpu_usage',
        'total_cpu_emissions_gms',
        'total_cpu_energy_by_pue_kwh',
        'total_cpu_energy_by_source_kwh',
        'total_cpu_energy_usage_kwh',
      ],
    );
    assert.deepEqual(Object.keys(queries.total_cpu_emissions_gms), ['rte_total']);
  });
});
