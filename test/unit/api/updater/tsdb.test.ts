import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import type { UnitRecord } from '../../../../src/api/db/index.js';
import { compileTemplate, goDuration, TemplateError } from '../../../../src/api/updater/template.js';
import {
  batchSize,
  DEFAULT_QUERIES,
  DEFAULT_SETTINGS,
  TsdbUpdater,
} from '../../../../src/api/updater/tsdb.js';
import { ConfigError } from '../../../../src/common/config.js';
import { createLogger } from '../../../../src/common/logger.js';

const logger = createLogger({ level: 'silent' });

describe('query templates', () => {
  const values = {
    UUIDs: '1|2',
    Range: '15m0s',
    ScrapeInterval: '30s',
    EvaluationInterval: '1m0s',
    RateInterval: '2m0s',
    ScrapeIntervalMilli: '30000',
    EvaluationIntervalMilli: '60000',
  };

  it('renders field references with spaces and trim markers', () => {
    assert.equal(compileTemplate('a{{.UUIDs}}b{{ .Range }}c', 't').render(values), 'a1|2b15m0sc');
    assert.equal(compileTemplate('x  {{- .ScrapeIntervalMilli -}}  y', 't').render(values), 'x30000y');
    assert.equal(
      compileTemplate(DEFAULT_QUERIES.total_cpu_energy_usage_kwh!.total!, 't').render(values),
      'sum_over_time(sum by (uuid) (uuid:ceems_host_power_watts:pue{uuid=~"1|2"} >= 0 < inf)[15m0s:30s]) * 30000 / 3.6e9',
    );
  });

  it('rejects other actions and unknown fields at compile time', () => {
    assert.throws(
      () => compileTemplate('{{range .UUIDs}}x{{end}}', 'q1'),
      /q1: unsupported template action '\{\{range \.UUIDs\}\}'/,
    );
    assert.throws(() => compileTemplate('{{.Nope}}', 'q2'), TemplateError);
    assert.throws(() => compileTemplate('{{.Nope}}', 'q2'), /unknown template field '.Nope'/);
    assert.throws(() => compileTemplate('abc {{ .Range', 'q3'), /unclosed/);
  });

  it('formats Go durations', () => {
    assert.deepEqual(
      [0, 500, 15_000, 60_000, 900_000, 3_600_000, 5_400_000, 86_400_000, 1500].map(goDuration),
      ['0s', '500ms', '15s', '1m0s', '15m0s', '1h0m0s', '1h30m0s', '24h0m0s', '1.5s'],
    );
  });
});

describe('batch size', () => {
  it('follows the formula of the spec with a floor of 10 and the number of uuids as ceiling', () => {
    const cfg = { query_max_series: 50, query_min_samples: 0.5 };
    // 1 h at 1 s scrape = 3600 samples/series; 50e6 / (50 × 3600) = 277.7 → × 0.5 = 138
    assert.equal(batchSize(3_600_000, { ...DEFAULT_SETTINGS, scrapeMs: 1000 }, cfg, 10_000), 138);
    assert.equal(
      batchSize(3_600_000, { ...DEFAULT_SETTINGS, scrapeMs: 1000, maxSamples: 1000 }, cfg, 10_000),
      10,
    );
    assert.equal(batchSize(3_600_000, DEFAULT_SETTINGS, cfg, 7), 7);
  });
});

interface Recorded {
  method: string;
  query: string;
  time: string;
  lookback: string;
}

describe('TSDB updater against a fake Prometheus', () => {
  let app: FastifyInstance;
  let url: string;
  const recorded: Recorded[] = [];
  const deletes: string[] = [];
  let mode: 'ok' | 'post405' | 'garbage' | 'down' | 'matrix' = 'ok';
  let scrapeInterval = '15s';

  const answer = (query: string) => {
    // the node energy of the cluster: one sample without labels
    const node = /^sum\(sum_over_time\(instance:ceems_(host|unattributed)_power_watts:pue/.exec(query);
    if (node) return [{ metric: {}, value: [0, node[1] === 'host' ? '2' : '0.5'] }];
    const uuids = /uuid=~"([^"]*)"/.exec(query)![1]!.split('|');
    // the exporter's counter series of ended units (B9): two nodes, one with two counter sources
    const counter = /^last_over_time\(ceems_compute_unit_energy_counter_(joules|cpu_share_ratio)/.exec(query);
    if (counter)
      return uuids.flatMap((uuid) =>
        (counter[1] === 'joules'
          ? [
              [{ hostname: 'n1', source: 'rapl' }, '7200'],
              [{ hostname: 'n1', source: 'hwmon' }, '9999'],
              [{ hostname: 'n2', source: 'cray' }, '3600'],
            ]
          : [
              [{ hostname: 'n1' }, '0.5'],
              [{ hostname: 'n2' }, '0.25'],
            ]
        ).map(([labels, v]) => ({ metric: { uuid, ...(labels as object) }, value: [0, v] })),
      );
    // a query split by a label: each unit fed by two sources, and by series without the label
    if (query.startsWith('by_source'))
      return uuids.flatMap((uuid) =>
        [
          [{ power_source: 'rapl' }, '2'],
          [{ power_source: 'estimated' }, '1'],
          [{}, '0.5'],
          [{ power_source: 'unknown' }, '0.25'],
        ].map(([labels, v]) => ({ metric: { uuid, ...(labels as object) }, value: [0, v] })),
      );
    // value depends on the uuid and on the metric, so results can be told apart
    const base = query.includes('cpu_usage') ? 10 : query.includes('power') ? 0.5 : 1;
    return uuids
      .filter((u) => u !== 'nosamples')
      .map((u) => ({
        metric: { uuid: u },
        value: [
          0,
          u === 'neg' ? '-3' : u === 'nan' ? 'NaN' : String(base * Number(u.replace(/\D/g, '') || 1)),
        ],
      }));
  };

  before(async () => {
    app = Fastify();
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_r, body, done) =>
      done(null, Object.fromEntries(new URLSearchParams(body as string))),
    );
    app.get('/api/v1/status/config', async () => ({
      status: 'success',
      data: { yaml: `global:\n  scrape_interval: ${scrapeInterval}\n  evaluation_interval: 30s\n` },
    }));
    app.get('/api/v1/status/flags', async () => ({
      status: 'success',
      data: { 'query.max-samples': '100000', 'query.timeout': '2m', 'query.lookback-delta': '5m' },
    }));
    const handle = (method: string, p: Record<string, string>, reply: import('fastify').FastifyReply) => {
      if (mode === 'down') return reply.code(503).send('service unavailable');
      if (mode === 'garbage') return reply.code(200).send('<html>proxy error</html>');
      recorded.push({ method, query: p.query!, time: p.time!, lookback: p.lookback_delta! });
      if (mode === 'matrix') return { status: 'success', data: { resultType: 'matrix', result: [] } };
      return { status: 'success', data: { resultType: 'vector', result: answer(p.query!) } };
    };
    app.post('/api/v1/query', async (req, reply) => {
      if (mode === 'post405') return reply.code(405).send('method not allowed');
      return handle('POST', req.body as Record<string, string>, reply);
    });
    app.get('/api/v1/query', async (req, reply) => handle('GET', req.query as Record<string, string>, reply));
    app.post('/api/v1/admin/tsdb/delete_series', async (req, reply) => {
      deletes.push(req.url);
      return reply.code(204).send();
    });
    url = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(() => app.close());

  const unit = (uuid: string, started: number, ended = 0): UnitRecord => ({
    uuid,
    started_at_ts: started,
    ended_at_ts: ended,
    total_time_seconds: {},
  });
  const make = (extra: Record<string, unknown> = {}) =>
    new TsdbUpdater({ id: 'tsdb-0', updater: 'tsdb', web: { url }, extra_config: extra }, { logger });

  it('fills every default metric per unit, batches uuids and applies the cutoff', async () => {
    recorded.length = 0;
    mode = 'ok';
    const up = make({ cutoff_duration: '2m', query_max_series: 50, query_min_samples: 1 });
    const end = Date.UTC(2024, 4, 6, 12);
    const start = end - 3_600_000;
    const units = Array.from({ length: 25 }, (_, i) => unit(`u${i + 1}`, start - 1000));
    units.push(unit('short', end - 100_000, end - 40_000), unit('neg', start), unit('nosamples', start));
    await up.update('c', units, start, end);
    // 3600 s / 15 s = 240 samples per series; 1e5 / (50 × 240) = 8.3 → batch floor 10; 28 uuids → 3 batches
    const nQueries = Object.values(DEFAULT_QUERIES).reduce((n, m) => n + Object.keys(m).length, 0);
    assert.equal(recorded.length, 3 * nQueries);
    assert.ok(
      recorded.every((r) => r.method === 'POST' && r.time === String(end / 1000) && r.lookback === '15s'),
    );
    assert.ok(recorded.some((r) => r.query.includes('[1h0m0s:15s]) * 15000 / 3.6e9')));
    assert.equal(new Set(recorded.map((r) => /uuid=~"([^"]*)"/.exec(r.query)![1])).size, 3);
    const u7 = units[6]!;
    assert.deepEqual(u7.avg_cpu_usage, { global: 70 });
    assert.deepEqual(u7.total_cpu_energy_usage_kwh, { total: 3.5 });
    assert.deepEqual(u7.total_cpu_emissions_gms, { rte_total: 7, emaps_total: 7, owid_total: 7 });
    assert.deepEqual(u7.total_io_read_stats, { bytes_total: 7, requests_total: 7, errors_total: 7 });
    assert.deepEqual(u7.avg_sample_interval_seconds, { scrape: 15 }, 'the scrape interval of Prometheus');
    assert.equal(u7.ignore, undefined);
    const short = units.find((u) => u.uuid === 'short')!;
    assert.equal(short.ignore, 1);
    assert.deepEqual(units.find((u) => u.uuid === 'neg')!.avg_cpu_usage, { global: 0 });
    assert.deepEqual(units.find((u) => u.uuid === 'nosamples')!.avg_gpu_usage, {});
    assert.deepEqual(deletes, []);
  });

  it('uses configured queries instead of the defaults and deletes series of ignored units', async () => {
    recorded.length = 0;
    deletes.length = 0;
    mode = 'ok';
    const up = make({
      cutoff_duration: '5m',
      delete_ignored: true,
      labels_to_drop: ['{__name__="junk"}'],
      queries: {
        avg_cpu_usage: { mine: 'cpu_usage{uuid=~"{{.UUIDs}}"}[{{.RateInterval}}]' },
        not_a_metric: { x: 'y' },
      },
      // unit 4 ended without energy: the counter queries (configured apart) would run for it
      energy_counter_queries: { joules: '', share: '' },
    });
    const end = Date.UTC(2024, 4, 6, 12);
    const start = end - 600_000;
    const units = [unit('3', start - 1), unit('4', end - 60_000, end - 1000)];
    await up.update('c', units, start, end);
    assert.deepEqual(
      recorded.map((r) => r.query),
      ['cpu_usage{uuid=~"3|4"}[1m0s]'],
    );
    assert.deepEqual(units[0]!.avg_cpu_usage, { mine: 30 });
    assert.equal(units[0]!.total_cpu_energy_usage_kwh, undefined);
    assert.equal(deletes.length, 1);
    const q = new URL(deletes[0]!, 'http://x').searchParams;
    assert.deepEqual(q.getAll('match[]'), ['{__name__="junk"}', '{uuid=~"4"}']);
    assert.equal(q.get('start'), String((start - 300_000) / 1000));
    assert.equal(q.get('end'), String(end / 1000));
  });

  it('a short unit takes the node counter delta × its share; others keep the integrated energy (B9)', async () => {
    recorded.length = 0;
    mode = 'ok';
    const up = make();
    const end = Date.UTC(2024, 4, 6, 12);
    const start = end - 3_600_000;
    const short = unit('c1', end - 20_000, end - 10_000); // 10 s < 2 × 15 s scrape
    const earlier = unit('c2', start - 5000, start + 5000); // began in an earlier window
    const long = unit('c3', start + 1000, end - 1000);
    await up.update('c', [short, earlier, long], start, end);
    const counters = recorded.filter((r) => r.query.startsWith('last_over_time(ceems_compute_unit_energy'));
    assert.deepEqual(
      counters.map((r) => [r.query.match(/uuid=~"([^"]*)"\}\[([^\]]*)\]/)?.slice(1), r.time]),
      [
        [['c1', '1h0m20s'], String((end + 20_000) / 1000)],
        [['c1', '1h0m20s'], String((end + 20_000) / 1000)],
      ],
      'only the short unit whose whole life is in the window, two scrape intervals after its end',
    );
    // n1: RAPL preferred to hwmon, 7200 J × 0.5; n2: Cray 3600 J × 0.25; kWh = J / 3.6e6
    assert.deepEqual(short.total_cpu_energy_by_source_kwh, {
      'rapl-counter': 0.001,
      'cray-counter': 0.00025,
    });
    assert.deepEqual(short.total_cpu_energy_usage_kwh, {
      total: 0.00125,
      counter_node: 0.003,
      integrated: 0.5,
    });
    // no PUE label in the fake answers: none recorded
    assert.deepEqual(short.total_cpu_energy_by_pue_kwh, {});
    // emissions scale with the energy: 1 g for the 0.5 kWh integrated
    assert.deepEqual(short.total_cpu_emissions_gms, {
      rte_total: 0.0025,
      emaps_total: 0.0025,
      owid_total: 0.0025,
    });
    assert.deepEqual(earlier.total_cpu_energy_usage_kwh, { total: 1 });
    assert.deepEqual(long.total_cpu_energy_usage_kwh, { total: 1.5 });
  });

  it('a unit that ended just before the window end is queried once the exporter has published it', async () => {
    recorded.length = 0;
    mode = 'ok';
    scrapeInterval = '1s';
    try {
      const up = make(); // a new updater reads the 1 s scrape interval
      const end = Date.now();
      const ended = end - 200;
      const u = unit('9', ended - 1000, ended);
      const t0 = Date.now();
      await up.update('c', [u], end - 600_000, end);
      const waited = Date.now() - t0;
      const times = recorded.filter((r) => r.query.includes('energy_counter')).map((r) => Number(r.time));
      // two scrape intervals after its end: 1.8 s of waiting, the query at ended + 2 s
      assert.ok(waited >= 1700, `waited ${waited} ms`);
      assert.deepEqual(times, [(ended + 2000) / 1000, (ended + 2000) / 1000]);
      assert.equal(u.total_cpu_energy_usage_kwh?.counter_node, 0.003);
    } finally {
      scrapeInterval = '15s';
    }
  });

  it('a `$<label>` sub-metric key makes one sub-metric per label value, unlabelled series unknown', async () => {
    mode = 'ok';
    const up = make({
      queries: { total_cpu_energy_by_source_kwh: { $power_source: 'by_source{uuid=~"{{.UUIDs}}"}' } },
    });
    const end = Date.UTC(2024, 4, 6, 12);
    const units = [unit('5', end - 3_600_000)];
    await up.update('c', units, end - 600_000, end);
    assert.deepEqual(units[0]!.total_cpu_energy_by_source_kwh, { rapl: 2, estimated: 1, unknown: 0.75 });
    // the defaults split the energy queries by the labels of the per-unit power records
    assert.match(
      DEFAULT_QUERIES.total_gpu_energy_by_source_kwh!.$power_source!,
      /^sum_over_time\(sum by \(uuid, power_source\) \(uuid:ceems_gpu_power_watts:pue\{/,
    );
    assert.match(DEFAULT_QUERIES.total_cpu_energy_by_pue_kwh!.$pue!, /sum by \(uuid, pue\)/);
  });

  it("queries the window's node energy and unattributed share of the cluster's nodes (B4)", async () => {
    recorded.length = 0;
    mode = 'ok';
    const end = Date.UTC(2024, 4, 6, 12);
    const up = make({ node_matchers: 'job="slurm"' });
    assert.deepEqual(await up.clusterEnergy(end - 3_600_000, end), { node: 2, unattributed: 0.5 });
    assert.deepEqual(recorded.map((r) => r.query).sort(), [
      'sum(sum_over_time(instance:ceems_host_power_watts:pue{job="slurm"}[1h0m0s:15s])) * 15000 / 3.6e9',
      'sum(sum_over_time(instance:ceems_unattributed_power_watts:pue{job="slurm"}[1h0m0s:15s])) * 15000 / 3.6e9',
    ]);
    // a window shorter than a scrape interval holds no sample: nothing to say
    assert.equal(await up.clusterEnergy(end - 5000, end), undefined);
  });

  it('keeps the map an earlier updater set for a unit it has no sample of (D-API-20)', async () => {
    mode = 'ok';
    const end = Date.UTC(2024, 4, 6, 12);
    const fromEarlierShard = unit('nosamples', end - 3_600_000);
    fromEarlierShard.avg_cpu_usage = { global: 42 };
    const sampled = unit('5', end - 3_600_000);
    sampled.avg_cpu_usage = { global: 1 };
    const units = [fromEarlierShard, sampled];
    await make().update('c', units, end - 3_600_000, end);
    assert.deepEqual(fromEarlierShard.avg_cpu_usage, { global: 42 });
    assert.deepEqual(fromEarlierShard.avg_gpu_usage, {}, 'a metric nobody set is still {}');
    assert.deepEqual(sampled.avg_cpu_usage, { global: 50 }, 'a sample replaces the earlier map');
  });

  it('sends only labels_to_drop matchers when no unit is ignored (D-API-10)', async () => {
    deletes.length = 0;
    mode = 'ok';
    const up = make({
      labels_to_drop: ['{job="junk"}'],
      queries: { avg_cpu_usage: { g: 'x{uuid=~"{{.UUIDs}}"}' } },
    });
    await up.update('c', [unit('9', 1)], 0, 3_600_000);
    assert.equal(deletes.length, 1);
    assert.deepEqual(new URL(deletes[0]!, 'http://x').searchParams.getAll('match[]'), ['{job="junk"}']);
  });

  it('falls back to GET when POST is not allowed', async () => {
    recorded.length = 0;
    mode = 'post405';
    const up = make({ queries: { avg_cpu_usage: { g: 'x{uuid=~"{{.UUIDs}}"}' } } });
    const units = [unit('5', 1)];
    await up.update('c', units, 0, 3_600_000);
    assert.deepEqual(
      recorded.map((r) => r.method),
      ['GET'],
    );
    assert.deepEqual(units[0]!.avg_cpu_usage, { g: 5 });
  });

  it('skips queries when the window is shorter than the rate interval', async () => {
    recorded.length = 0;
    mode = 'ok';
    const units = [unit('6', 1)];
    await make().update('c', units, 0, 59_000); // rate interval = 4 × 15 s
    assert.equal(recorded.length, 0);
    assert.equal(units[0]!.avg_cpu_usage, undefined);
  });

  for (const m of ['down', 'garbage', 'matrix'] as const) {
    it(`throws (window retried) when Prometheus is ${m}`, async () => {
      mode = m;
      const units = [unit('7', 1)];
      await assert.rejects(make().update('c', units, 0, 3_600_000), /failed every aggregate query/);
      assert.equal(units[0]!.avg_cpu_usage, undefined);
    });
  }

  it('throws when Prometheus is unreachable', async () => {
    const up = new TsdbUpdater(
      { id: 't', updater: 'tsdb', web: { url: 'http://127.0.0.1:1' }, extra_config: {} },
      { logger },
    );
    await assert.rejects(up.update('c', [unit('8', 1)], 0, 3_600_000), /failed every aggregate query/);
  });

  it('rejects bad configuration naming the key', () => {
    assert.throws(() => make({ query_min_samples: 2 }), ConfigError);
    assert.throws(() => make({ query_min_samples: 2 }), /extra_config.query_min_samples/);
    assert.throws(
      () => make({ cutoff_duration: '5 minutes' }),
      /extra_config.cutoff_duration: not a valid duration/,
    );
    assert.throws(
      () => make({ queries: { avg_cpu_usage: { g: '{{if .UUIDs}}x{{end}}' } } }),
      /avg_cpu_usage.g: unsupported/,
    );
  });
});
