// Short units on the SLURM testbed (issue 20, B9): a real 10 s job, ceems_exporter with
// --collector.slurm.energy-counter on a fake RAPL tree whose package counter the test advances at 100 W
// (this machine has no RAPL), a real Prometheus scraping every 15 s (the job is shorter than two scrape
// intervals), and ceems_api_server's TSDB updater: the stored unit has the node's counter delta × its
// CPU share as its energy, power source `rapl-counter`, and bounds around it.

import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { FootprintRecord } from '../../src/api/footprint.js';
import { FOOTPRINT_SCHEMA } from '../../src/api/footprint-schema.js';
import { FakeEnergySysfs } from '../helpers/energy.js';
import { type Started, startProgram } from '../helpers/process.js';
import { type PrometheusProcess, startPrometheus } from '../helpers/prometheus.js';
import { cancelJobs, jobState, submitJob } from '../helpers/slurm.js';
import { promQuery, testbedApiConfig } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const PROM_PORT = 9440;
const WATTS = 100;
const SCRAPE_S = 15;

describe('a 10 s job gets its energy from the node energy counter (B9)', { timeout: 240_000 }, () => {
  let dir: string;
  let sysfsDir: string;
  let sysfs: FakeEnergySysfs;
  let exporter: Started | undefined;
  let prometheus: PrometheusProcess | undefined;
  let api: Started | undefined;
  const jobs: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ceems-short-unit-'));
    chmodSync(dir, 0o755); // the exporter may drop to an unprivileged user
    // in memory where there is a tmpfs: a write of the fake counter never waits for a disk other tests load
    sysfsDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'ceems-short-unit-sys-'));
    chmodSync(sysfsDir, 0o755);
    sysfs = new FakeEnergySysfs(join(sysfsDir, 'sys'), availableParallelism(), { rapl: true });
    sysfs.runAt(WATTS);
    exporter = await startProgram('ceems_exporter', [
      '--collector.disable-defaults',
      '--collector.slurm',
      '--collector.slurm.energy-counter',
      `--path.sysfs=${sysfs.sysfs}`,
      '--web.listen-address=127.0.0.1:0',
    ]);
    prometheus = await startPrometheus({
      port: PROM_PORT,
      dir: join(dir, 'prometheus'),
      config: `global:\n  scrape_interval: ${SCRAPE_S}s\n  evaluation_interval: ${SCRAPE_S}s\nscrape_configs:\n  - job_name: ceems\n    static_configs:\n      - targets: ['${exporter.address}']\n`,
    });
  });

  after(async () => {
    cancelJobs(jobs);
    await sysfs?.stop();
    await api?.stop();
    await exporter?.stop();
    await prometheus?.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(sysfsDir, { recursive: true, force: true });
  });

  it('non-zero, within its bounds, source rapl-counter, flagged short', async (t) => {
    const submitted = Date.now();
    const id = submitJob('usr1', 'acc1', 'sleep 10', { minutes: 2, name: 'ceems-short-unit' });
    jobs.push(id);

    // the exporter publishes the counter delta once the job's cgroup is gone; Prometheus scrapes it
    const series = await waitFor(`the counter series of job ${id} in Prometheus`, 120_000, async () => {
      const r = await promQuery(
        prometheus!.url,
        `{__name__=~"ceems_compute_unit_energy_counter_.*",uuid="${id}"}`,
      );
      if (r.length < 3) throw new Error(`${jobState(id)}; series: ${JSON.stringify(r)}`);
      return Object.fromEntries(r.map((s) => [s.metric.__name__!, Number(s.value[1])]));
    });
    t.diagnostic(
      `job ${id}: ${JSON.stringify(series)}; longest gap between counter writes ${sysfs.maxWriteGapMs()} ms`,
    );
    const joules = series.ceems_compute_unit_energy_counter_joules!;
    const seconds = series.ceems_compute_unit_energy_counter_seconds!;
    const share = series.ceems_compute_unit_energy_counter_cpu_share_ratio!;
    // start and end noticed by inotify on the real cgroup v1 tree: walks at the 15 s scrapes alone would
    // see a life of a whole number of scrape intervals
    assert.ok(seconds >= 9 && seconds < SCRAPE_S - 1, `life ${seconds} s`);
    // the fake counter follows the clock at 100 W, written every 50 ms: within 5 %, plus what the file may
    // have lagged behind the clock when the exporter read it (its longest gap between writes)
    const gapMs = sysfs.maxWriteGapMs();
    assert.ok(
      Math.abs(joules - WATTS * seconds) <= 0.05 * WATTS * seconds + (WATTS * gapMs) / 1000,
      `${joules} J in ${seconds} s; longest gap between counter writes ${gapMs} ms`,
    );
    // `sbatch -n 1` with ConstrainCores: one CPU of the node
    assert.equal(share, 1 / availableParallelism());

    // the API server's first window covers the whole job
    const config = join(dir, 'config.yml');
    writeFileSync(
      config,
      JSON.stringify(
        testbedApiConfig({
          dir,
          promUrl: prometheus!.url,
          updateInterval: '1h',
          updateFrom: submitted - 60_000,
          cutoff: '0s',
        }),
      ),
    );
    api = await startProgram('ceems_api_server', [
      `--config.file=${config}`,
      '--web.listen-address=127.0.0.1:0',
    ]);
    const record = await waitFor(`job ${id} with energy in the API`, 60_000, async () => {
      const r = await fetch(`${api!.url}/api/v1/units/footprint?uuid=${id}`, {
        headers: { 'X-Grafana-User': 'usr1' },
      });
      const body = await r.text();
      const rec = (JSON.parse(body) as { data?: FootprintRecord[] }).data?.[0];
      if (!(rec && rec.energy.host.kwh > 0)) throw new Error(`HTTP ${r.status}: ${body.slice(0, 500)}`);
      return rec;
    });
    t.diagnostic(`footprint: ${JSON.stringify(record.energy.host)}`);
    const validate = new Ajv2020({ strict: true, allErrors: true }).compile(FOOTPRINT_SCHEMA);
    assert.ok(validate(record), JSON.stringify(validate.errors));
    const host = record.energy.host;
    // no recording rules here: no PUE recorded, the counter figure as is (kWh = J / 3.6e6)
    const kwh = (joules * share) / 3.6e6;
    assert.ok(Math.abs(host.kwh - kwh) <= 1e-12, `${host.kwh} kWh, expected ${kwh}`);
    assert.deepEqual(Object.keys(host.sources), ['rapl-counter']);
    assert.equal(host.provenance, 'measured');
    assert.equal(host.counter_node_kwh, joules / 3.6e6);
    assert.ok(
      host.lower_kwh > 0 && host.lower_kwh <= host.kwh && host.kwh <= host.upper_kwh,
      JSON.stringify(host),
    );
    assert.equal(host.uncertainty.sampling, 0, 'a counter read at start and end misses no sample');
    assert.deepEqual([record.short_unit, record.sample_interval_seconds], [true, SCRAPE_S]);
  });
});
