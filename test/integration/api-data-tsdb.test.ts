// The TSDB updater with the default query templates against a real Prometheus (testbed, 1 s scrape and
// evaluation) scraping the project's own exporter (slurm collector) while real SLURM jobs run. The
// `uuid:ceems_*` series the default queries read are produced by recording rules loaded into that
// Prometheus. Two collection windows (one while the jobs run, one after they end) exercise the merge
// rules; the stored values are checked against values computed here from the raw recorded samples.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Collector } from '../../src/api/cycle/index.js';
import { CeemsDb } from '../../src/api/db/index.js';
import { SlurmManager } from '../../src/api/resource/slurm.js';
import { formatDatetime } from '../../src/api/timefmt.js';
import { TsdbUpdater } from '../../src/api/updater/tsdb.js';
import { createLogger } from '../../src/common/logger.js';
import { type Started, startProgram } from '../helpers/process.js';
import { startTestbedPrometheus, type TestbedPrometheus } from '../helpers/prometheus.js';
import { submitJob } from '../helpers/slurm.js';
import { waitFor } from '../helpers/wait.js';

const JOBDIR = process.env.CEEMS_TESTBED_SLURM_JOBDIR;
const PORT = 9294;
const PROM = `http://127.0.0.1:${PORT}`;
const TZ = 'UTC';

const RULES = `groups:
  - name: ceems-test
    interval: 1s
    rules:
      - record: uuid:ceems_cpu_usage:ratio_irate
        expr: sum by (uuid) (irate(ceems_compute_unit_cpu_user_seconds_total[4s]) + irate(ceems_compute_unit_cpu_system_seconds_total[4s])) * 100 / sum by (uuid) (ceems_compute_unit_cpus)
      - record: uuid:ceems_cpu_memory_usage:ratio
        expr: sum by (uuid) (ceems_compute_unit_memory_used_bytes) * 100 / sum by (uuid) (ceems_compute_unit_memory_total_bytes)
      - record: uuid:ceems_host_power_watts:pue
        expr: 20 + 80 * uuid:ceems_cpu_usage:ratio_irate / 100
      - record: uuid:ceems_host_emissions_g_s:pue
        expr: label_replace(uuid:ceems_host_power_watts:pue * 56 / 3.6e6, "provider", "rte", "", "")
`;

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', env: process.env, timeout: 60_000 });
}

function submit(user: string, account: string, script: string): string {
  return submitJob(user, account, script);
}

async function promQuery(
  query: string,
  time?: number,
): Promise<Array<{ metric: Record<string, string>; values?: [number, string][]; value?: [number, string] }>> {
  const params = new URLSearchParams({ query, ...(time ? { time: String(time / 1000) } : {}) });
  const r = await fetch(`${PROM}/api/v1/query?${params}`);
  const body = (await r.json()) as { status: string; data: { result: [] } };
  assert.equal(body.status, 'success', `query ${query}`);
  return body.data.result;
}

/** Raw recorded samples of one series of one unit, from `start` (exclusive) to `end` (inclusive). */
async function rawSamples(series: string, uuid: string, start: number, end: number): Promise<number[]> {
  const secs = Math.round((end - start) / 1000);
  const res = await promQuery(`${series}{uuid="${uuid}"}[${secs}s]`, end);
  return res
    .flatMap((s) => (s.values ?? []).map(([, v]) => Number(v)))
    .filter((v) => Number.isFinite(v) && v >= 0);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe('TSDB updater on a real Prometheus scraping the exporter during real SLURM jobs', {
  timeout: 300_000,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ceems-api-tsdb-'));
  const jobs: string[] = [];
  let exporter: Started;
  let db: CeemsDb;
  let collector: Collector;
  let t0: number;
  let prometheus: TestbedPrometheus | undefined;

  before(async () => {
    assert.ok(JOBDIR, 'SLURM testbed env missing: eval "$(cat /tmp/ceems-testbed/slurm/env.sh)" first');
    exporter = await startProgram('ceems_exporter', [
      '--collector.disable-defaults',
      '--collector.slurm',
      '--web.listen-address=127.0.0.1:0',
    ]);
    writeFileSync(join(dir, 'rules.yml'), RULES);
    // The exporter target plus the rule file, appended to the generated config by --scrape-config.
    writeFileSync(
      join(dir, 'scrape.yml'),
      `  - job_name: ceems\n    static_configs:\n      - targets: ['${exporter.address}']\nrule_files:\n  - '${join(dir, 'rules.yml')}'\n`,
    );
    prometheus = startTestbedPrometheus(PORT, ['--scrape-config', join(dir, 'scrape.yml')]);
    t0 = Date.now();
    db = CeemsDb.open(dir);
    const logger = createLogger({ level: 'error' });
    const manager = await SlurmManager.create(
      {
        id: 'testbed',
        cli: { path: '/usr/bin', environment_variables: { SLURM_CONF: process.env.SLURM_CONF! } },
      },
      { logger, timeZone: TZ, configDir: dir, updateIntervalMs: 60_000 },
    );
    const updater = new TsdbUpdater(
      { id: 'tsdb-0', updater: 'tsdb', web: { url: PROM }, extra_config: { cutoff_duration: '4s' } },
      { logger },
    );
    collector = new Collector({
      db,
      logger,
      clusters: [{ manager, updaters: [updater] }],
      timeZone: TZ,
      updateIntervalMs: 60_000,
      maxUpdateIntervalMs: 3_600_000,
      updateFrom: formatDatetime(t0 - 30_000, TZ),
      windowPauseMs: 0,
    });
  });

  after(async () => {
    if (jobs.length > 0) sh('scancel', jobs);
    await collector?.stop();
    db?.close();
    try {
      prometheus?.stop();
    } finally {
      await exporter?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stores per-unit averages and totals that match the raw series across two windows', async (t) => {
    // 30 s jobs: other tests share the two CPUs, so the two jobs may start some seconds apart and
    // must still overlap for window 1.
    const busy = submit('usr1', 'acc1', "timeout 30 sh -c 'while :; do :; done'; true");
    const idle = submit('usr2', 'acc2', 'sleep 30');
    const short = submit('usr3', 'acc1', 'true');
    jobs.push(busy, idle, short);
    // Window 1 while both jobs run (as sacct sees them; accounting is asynchronous) and Prometheus has
    // recorded a few seconds of each.
    await waitFor(
      'both jobs running, with recorded CPU usage',
      150_000,
      async () => {
        const states = sh('sacct', ['-n', '-X', '-P', '-j', `${busy},${idle}`, '--format', 'state'])
          .trim()
          .split('\n');
        if (!states.every((s) => s === 'RUNNING')) return undefined;
        const r = await promQuery(
          `count_over_time(uuid:ceems_cpu_usage:ratio_irate{uuid=~"${busy}|${idle}"}[1m])`,
        );
        return r.length === 2 && r.every((x) => Number(x.value![1]) >= 3) ? true : undefined;
      },
      500,
    );
    const w1 = await collector.runOnce();
    assert.deepEqual(
      w1.map((r) => r.error),
      [undefined],
    );
    // Window 2 after the jobs ended, are accounted, and their last samples are in Prometheus.
    await waitFor(
      'jobs accounted as completed',
      150_000,
      () => {
        const out = sh('sacct', ['-n', '-X', '-P', '-j', `${busy},${idle},${short}`, '--format', 'state']);
        return out
          .trim()
          .split('\n')
          .every((s) => s === 'COMPLETED')
          ? true
          : undefined;
      },
      500,
    );
    await new Promise((r) => setTimeout(r, 3000));
    const w2 = await collector.runOnce();
    assert.deepEqual(
      w2.map((r) => r.error),
      [undefined],
    );
    const start = w1[0]!.start;
    const end = w2[0]!.end;

    const row = (uuid: string) => {
      const r = db.db.prepare('SELECT * FROM units WHERE uuid = ?').all(uuid) as Array<
        Record<string, string | number>
      >;
      assert.equal(r.length, 1, `one row for ${uuid}`);
      const m = (k: string) => JSON.parse(r[0]![k] as string) as Record<string, number>;
      return { raw: r[0]!, m };
    };

    for (const uuid of [busy, idle]) {
      const { raw, m } = row(uuid);
      assert.equal(raw.num_updates, 2);
      assert.equal(raw.ignore, 0);
      const cpu = await rawSamples('uuid:ceems_cpu_usage:ratio_irate', uuid, start, end);
      const mem = await rawSamples('uuid:ceems_cpu_memory_usage:ratio', uuid, start, end);
      const power = await rawSamples('uuid:ceems_host_power_watts:pue', uuid, start, end);
      const rte = await rawSamples('uuid:ceems_host_emissions_g_s:pue', uuid, start, end);
      assert.ok(cpu.length >= 8, `enough samples of ${uuid}: ${cpu.length}`);
      // Averages: window averages merged with alloc_cputime weights ≈ the mean over every raw sample.
      // Tolerance: each window's subquery evaluates the series at 1 s steps, which can miss or repeat one
      // 1 s sample at each window edge and at the job's start/end (4 edges), so up to ~4 samples of the
      // full range (about 4/n of the span of values) plus 1 % for the weights being whole seconds.
      const spanCpu = Math.max(...cpu) - Math.min(...cpu);
      const tolCpu = (4 / cpu.length) * spanCpu + 0.01 * mean(cpu) + 1e-6;
      assert.ok(
        Math.abs(m('avg_cpu_usage').global! - mean(cpu)) <= tolCpu,
        `avg_cpu_usage of ${uuid}: stored ${m('avg_cpu_usage').global}, raw mean ${mean(cpu)} ± ${tolCpu}`,
      );
      const spanMem = Math.max(...mem) - Math.min(...mem);
      const tolMem = (4 / mem.length) * spanMem + 0.01 * mean(mem) + 1e-6;
      assert.ok(
        Math.abs(m('avg_cpu_mem_usage').global! - mean(mem)) <= tolMem,
        `avg_cpu_mem_usage of ${uuid}: stored ${m('avg_cpu_mem_usage').global}, raw mean ${mean(mem)} ± ${tolMem}`,
      );
      // Totals: the two windows' sums add up to Σ power × 1 s over all raw samples; same 4-sample tolerance.
      const kwh = (sum(power) * 1000) / 3.6e9;
      const tolKwh = (4 * Math.max(...power) * 1000) / 3.6e9;
      assert.ok(
        Math.abs(m('total_cpu_energy_usage_kwh').total! - kwh) <= tolKwh,
        `energy of ${uuid}: stored ${m('total_cpu_energy_usage_kwh').total}, raw ${kwh} ± ${tolKwh}`,
      );
      const grams = (sum(rte) * 1000) / 1e3;
      const tolG = (4 * Math.max(...rte) * 1000) / 1e3;
      assert.ok(
        Math.abs(m('total_cpu_emissions_gms').rte_total! - grams) <= tolG,
        `emissions of ${uuid}: stored ${m('total_cpu_emissions_gms').rte_total}, raw ${grams} ± ${tolG}`,
      );
      t.diagnostic(
        `${uuid}: avg_cpu_usage ${m('avg_cpu_usage').global} vs raw ${mean(cpu)} (±${tolCpu}); ` +
          `avg_cpu_mem_usage ${m('avg_cpu_mem_usage').global} vs ${mean(mem)} (±${tolMem}); ` +
          `energy ${m('total_cpu_energy_usage_kwh').total} vs ${kwh} kWh (±${tolKwh}); ` +
          `rte ${m('total_cpu_emissions_gms').rte_total} vs ${grams} g (±${tolG}); samples ${cpu.length}`,
      );
      // No sample for the other providers, nor for GPU/IO metrics (no such series).
      assert.deepEqual(Object.keys(m('total_cpu_emissions_gms')), ['rte_total']);
      assert.deepEqual(m('avg_gpu_usage'), {});
      assert.deepEqual(m('total_io_read_stats'), {});
    }
    // The busy job used its CPU, the sleeping one did not (the shared 2-core machine may give the busy
    // loop well under one core, so only the contrast is checked).
    const busyCpu = row(busy).m('avg_cpu_usage').global!;
    const idleCpu = row(idle).m('avg_cpu_usage').global!;
    assert.ok(
      busyCpu > 10 && idleCpu < busyCpu / 3,
      `busy job CPU ${busyCpu} %, sleeping job CPU ${idleCpu} %`,
    );
    // The job shorter than cutoff_duration (4 s) is stored but flagged ignored.
    assert.equal(row(short).raw.ignore, 1);

    // usage rows: averages weighted like the unit rows, totals summed.
    for (const uuid of [busy, idle]) {
      const { raw, m } = row(uuid);
      const usage = db.db
        .prepare('SELECT * FROM usage WHERE cluster_id = ? AND username = ? AND project = ?')
        .get('testbed', raw.username, raw.project) as Record<string, string>;
      const units = db.db
        .prepare(
          'SELECT total_cpu_energy_usage_kwh AS e FROM units WHERE cluster_id = ? AND username = ? AND project = ?',
        )
        .all('testbed', raw.username, raw.project) as Array<{ e: string }>;
      const energy = units.reduce((s, u) => s + (JSON.parse(u.e).total ?? 0), 0);
      assert.ok(Math.abs(JSON.parse(usage.total_cpu_energy_usage_kwh!).total - energy) < 1e-12);
      if (units.length === 1)
        assert.ok(Math.abs(JSON.parse(usage.avg_cpu_usage!).global - m('avg_cpu_usage').global!) < 1e-9);
    }
  });
});
