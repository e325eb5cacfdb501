// ceems_lb's reading of PromQL against Prometheus' own (issue 13): 3,000 generated queries full of lexical
// corners go through the LB's selector rule and through the testbed Prometheus' parse-and-print; a sample
// of the allowed ones then goes through the real bin/ceems_lb to a capture backend, which must receive the
// canonical text the LB checked and never the raw one.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { checkQueries } from '../../src/lb/access.js';
import { createOwnershipDb, tempDir, writeYaml } from '../fixtures/lb/setup.js';
import { type Started, startProgram } from '../helpers/process.js';
import { startTestbedPrometheus, type TestbedPrometheus } from '../helpers/prometheus.js';
import {
  type Decided,
  type DiffReport,
  decide,
  differential,
  formatReport,
  json,
  POLICY,
  PrometheusFormatter,
} from '../helpers/promql-diff.js';
import { generate, OWNED_UUIDS } from '../helpers/promql-gen.js';

const PROM_PORT = 9297;
const SEED = 13;
const COUNT = 3000;
const SAMPLE = 200;
const CONCURRENCY = 8;

type Mode = 'get' | 'post' | 'range' | 'series';

describe('ceems_lb reads PromQL as Prometheus does', { timeout: 300_000 }, () => {
  const tmp = tempDir('ceems-lb-differential-');
  /** Parameters the capture backend received, by the `probe` parameter each test request carries. */
  const captured = new Map<string, Array<[string, string]>>();
  let backend: Server | undefined;
  let prometheus: TestbedPrometheus | undefined;
  let formatter: PrometheusFormatter | undefined;
  let lb: Started | undefined;
  let report: DiffReport;

  before(async () => {
    backend = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url!, 'http://backend');
        const params = [...url.searchParams];
        if (String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded'))
          params.push(...new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
        const probe = params.find(([k]) => k === 'probe')?.[1];
        if (probe) captured.set(probe, params);
        const data = url.pathname.endsWith('/series') ? [] : { resultType: 'vector', result: [] };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: 'success', data }));
      });
    });
    await new Promise<void>((r) => backend!.listen(0, '127.0.0.1', r));
    const backendUrl = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
    createOwnershipDb(tmp.dir, {
      units: OWNED_UUIDS.map((uuid) => ({ cluster: 'hpc-0', uuid, project: 'acc1', user: 'alice' })),
      projects: [{ cluster: 'hpc-0', name: 'acc1', users: ['alice'] }],
      admins: [],
    });
    const config = writeYaml(`${tmp.dir}/config.yml`, {
      ceems_api_server: { data: { path: tmp.dir } },
      ceems_lb: { backends: [{ id: 'hpc-0', tsdb: [{ web: { url: backendUrl } }] }] },
    });
    lb = await startProgram('ceems_lb', [`--config.file=${config}`, '--web.listen-address=127.0.0.1:0']);
    prometheus = startTestbedPrometheus(PROM_PORT, []);
    formatter = new PrometheusFormatter(prometheus.url, CONCURRENCY);
    report = await differential(formatter, generate(SEED, COUNT), SEED);
    console.log(formatReport(report, 1).split('\n')[0]);
  });

  after(async () => {
    await lb?.stop();
    await formatter?.close();
    prometheus?.stop();
    await new Promise((r) => (backend ? backend.close(r) : r(undefined)));
    tmp.cleanup();
  });

  /** Sends `text` as alice the way `mode` says; returns the LB's status. */
  async function send(mode: Mode, text: string, probe: string): Promise<number> {
    const headers = { 'X-Grafana-User': 'alice', 'X-Ceems-Cluster-Id': 'hpc-0' };
    const params = new URLSearchParams({ [mode === 'series' ? 'match[]' : 'query']: text, probe });
    let res: Response;
    if (mode === 'get' || mode === 'series') {
      const path = mode === 'get' ? 'query' : 'series';
      res = await fetch(`${lb!.url}/api/v1/${path}?${params}`, { headers });
    } else {
      if (mode === 'range')
        for (const [k, v] of [
          ['start', '1700000000'],
          ['end', '1700000600'],
          ['step', '60'],
        ])
          params.set(k!, v!);
      res = await fetch(`${lb!.url}/api/v1/${mode === 'post' ? 'query' : 'query_range'}`, {
        method: 'POST',
        headers,
        body: params,
      });
    }
    await res.arrayBuffer();
    return res.status;
  }

  /** What the backend received for `probe` as the query parameter, or undefined if nothing came. */
  const receivedQueries = (probe: string, mode: Mode) =>
    captured
      .get(probe)
      ?.filter(([k]) => k === (mode === 'series' ? 'match[]' : 'query'))
      .map(([, v]) => v);

  it('Prometheus prints the raw and the forwarded text alike and holds the selectors the LB checked', () => {
    const bad = report.disagreements.filter(
      (d) => d.unsafe || d.kinds.some((k) => k !== 'prometheus-rejects'),
    );
    assert.equal(bad.length, 0, formatReport({ ...report, disagreements: bad }));
  });

  it('Prometheus never refuses as written a query whose forwarded text it would run', () => {
    const rejected = report.disagreements.filter((d) => d.kinds.includes('prometheus-rejects'));
    assert.equal(rejected.length, 0, formatReport({ ...report, disagreements: rejected }, 2));
  });

  it('the real ceems_lb forwards exactly the canonical text (GET, POST, query_range, series)', async () => {
    const allowed = decide(generate(SEED, COUNT)).filter(
      (d) => d.decision.kind === 'allow' && (d.decision.clusterOverride ?? 'hpc-0') === 'hpc-0',
    );
    const spread = (ds: Decided[], n: number) =>
      ds.filter((_, i) => i % Math.max(1, Math.floor(ds.length / n)) === 0).slice(0, n);
    const selectors = spread(
      allowed.filter((d) => d.item.grammar === 'selector'),
      SAMPLE / 4,
    );
    const sample = [
      ...spread(
        allowed.filter((d) => d.item.grammar === 'expr'),
        SAMPLE - selectors.length,
      ),
      ...selectors,
    ];
    assert.ok(sample.length >= SAMPLE * 0.9, `only ${sample.length} allowed queries to send`);
    const jobs = sample.flatMap((d) =>
      (['get', 'post', 'range', ...(d.item.grammar === 'selector' ? ['series'] : [])] as Mode[]).map(
        (mode) => ({ d, mode }),
      ),
    );
    const problems: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) {
        const { d, mode } = jobs[next++]!;
        const canonical = d.decision.kind === 'allow' ? d.decision.queries[0]! : '';
        const probe = `${d.index}-${mode}`;
        const status = await send(mode, d.item.query, probe);
        const got = receivedQueries(probe, mode);
        if (status !== 200 || JSON.stringify(got) !== JSON.stringify([canonical]))
          problems.push(
            `seed=${SEED} index=${d.index} ${mode}: HTTP ${status}\n  query:     ${json(d.item.query)}\n` +
              `  canonical: ${json(canonical)}\n  received:  ${got?.map(json).join(', ')}`,
          );
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    assert.deepEqual(problems, []);
    assert.ok(sample.some((d) => d.decision.kind === 'allow' && d.decision.queries[0] !== d.item.query));
  });

  it('the CR-comment attack is refused or forwarded without its hidden `or`', async () => {
    const attack = '(ceems_compute_unit_cpus{uuid="1001"} #x\ror {__name__=~"ceems_compute_unit_cpus"}\n)';
    const [prom] = await formatter!.formatAll([attack]);
    assert.ok(prom?.ok && / or /.test(prom.text), `Prometheus reads the hidden or: ${JSON.stringify(prom)}`);
    const d = checkQueries([attack], 'expr', POLICY);
    if (d.kind === 'allow') {
      const [fwd] = await formatter!.formatAll([d.queries[0]!]);
      assert.ok(fwd?.ok && !/\bor\b/.test(fwd.text), `forwarded ${JSON.stringify(d.queries[0])}`);
    }
    for (const mode of ['get', 'post', 'range'] as Mode[]) {
      const status = await send(mode, attack, `attack-${mode}`);
      const got = receivedQueries(`attack-${mode}`, mode);
      if (status === 200) assert.ok(got?.length === 1 && !/\bor\b/.test(got[0]!), JSON.stringify(got));
      else {
        assert.ok(status === 400 || status === 403, `HTTP ${status}`);
        assert.equal(got, undefined);
      }
    }
  });

  it('a query ending in a comment without a newline is allowed and forwarded without the comment', async () => {
    const q = 'ceems_compute_unit_cpus{uuid="1001"} # cores of my job';
    const d = checkQueries([q], 'expr', POLICY);
    assert.equal(d.kind, 'allow', JSON.stringify(d));
    const canonical = d.kind === 'allow' ? d.queries[0]! : '';
    assert.equal(canonical, 'ceems_compute_unit_cpus{uuid="1001"}');
    const [raw, fwd] = await formatter!.formatAll([q, canonical]);
    assert.deepEqual(raw, fwd);
    for (const mode of ['get', 'post', 'range'] as Mode[]) {
      assert.equal(await send(mode, q, `comment-${mode}`), 200);
      assert.deepEqual(receivedQueries(`comment-${mode}`, mode), [canonical]);
    }
  });
});
