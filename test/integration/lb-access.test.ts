// Access control of ceems_lb end to end: the attack and legitimate query corpora run through the real
// load balancer against a real Prometheus that scraped per-unit series of two users, once with the
// ownership DB in SQLite and once with the same rows in the API server's PostgreSQL (issue 21, D-LB-20).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { copyToPostgres } from '../fixtures/api/postgres.js';
import { createOwnershipDb, listen, readCorpus, tempDir, writeYaml } from '../fixtures/lb/setup.js';
import { type PostgresServer, startPostgres } from '../helpers/postgres.js';
import { ROOT, type Started, startProgram } from '../helpers/process.js';
import { startTestbedPrometheus, type TestbedPrometheus } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/wait.js';

const PROM_PORT = 9292;
const POSTGRES_PORT = 9426;
const PROM = `http://127.0.0.1:${PROM_PORT}`;
const ALICE_UNITS = ['1001', '1002', '1003', 'aaaaaaaa-1111-4111-8111-000000000001'];
const FOREIGN = ['2001', '2002', 'bbbbbbbb-2222-4222-8222-000000000002', '3001'];

interface FakeUnit {
  uuid: string;
  host: string;
  cluster: string;
  gpu?: boolean;
}
const UNITS: FakeUnit[] = [
  { uuid: '1001', host: 'node-a', cluster: 'hpc-0' },
  { uuid: '1002', host: 'node-a', cluster: 'hpc-0', gpu: true },
  { uuid: '1003', host: 'node-c', cluster: 'hpc-0' },
  { uuid: 'aaaaaaaa-1111-4111-8111-000000000001', host: 'node-a', cluster: 'hpc-0' },
  { uuid: '2001', host: 'node-b', cluster: 'hpc-0', gpu: true },
  { uuid: '2002', host: 'node-b', cluster: 'hpc-0' },
  { uuid: 'bbbbbbbb-2222-4222-8222-000000000002', host: 'node-b', cluster: 'hpc-0' },
  { uuid: '3001', host: 'node-d', cluster: 'hpc-1' },
];
const HOSTS = ['node-a', 'node-b', 'node-c', 'node-d'];

/** Exposition text of the per-unit (and node-level) series a CEEMS exporter + recording rules produce. */
function metricsText(): string {
  const t = Date.now() / 1000;
  const lines: string[] = [];
  UNITS.forEach((u, i) => {
    const l = `uuid="${u.uuid}",hostname="${u.host}",manager="slurm",ceems_id="${u.cluster}"`;
    const v = i + 1;
    lines.push(
      `ceems_compute_unit_cpu_user_seconds_total{${l}} ${(t * v) / 100}`,
      `ceems_compute_unit_cpu_system_seconds_total{${l}} ${(t * v) / 1000}`,
      `ceems_compute_unit_cpus{${l}} ${v}`,
      `ceems_compute_unit_memory_used_bytes{${l}} ${v * 1e9}`,
      `ceems_compute_unit_memory_total_bytes{${l}} ${v * 4e9}`,
      `uuid:ceems_cpu_usage:ratio_irate{${l}} ${v * 10}`,
      `uuid:ceems_cpu_memory_usage:ratio{${l}} ${v * 5}`,
      `uuid:ceems_host_power_watts:pue{${l}} ${v * 100}`,
    );
    for (const p of ['owid', 'rte'])
      lines.push(`uuid:ceems_host_emissions_g_s:pue{${l},provider="${p}"} ${v}`);
    if (u.gpu) {
      lines.push(
        `ceems_compute_unit_gpu_index_flag{${l},index="0",gpuuuid="GPU-${u.uuid}"} 1`,
        `uuid:ceems_gpu_usage:ratio{${l}} ${v * 7}`,
        `uuid:ceems_gpu_memory_usage:ratio{${l}} ${v * 3}`,
        `uuid:ceems_gpu_power_watts:pue{${l}} ${v * 200}`,
        `uuid:ceems_gpu_emissions_g_s:pue{${l},provider="owid"} ${v * 2}`,
      );
    }
  });
  for (const h of HOSTS) {
    lines.push(`ceems_ipmi_dcmi_current_watts{hostname="${h}"} 300`);
    for (const p of ['owid', 'rte'])
      lines.push(`ceems_emissions_gCo2_kWh{hostname="${h}",provider="${p}",country_code="FR"} 50`);
  }
  return `${lines.join('\n')}\n`;
}

interface Reply {
  status: number;
  text: string;
}

/** Sends one corpus line as `user`; the optional `[mode]` prefix selects endpoint and transport. */
async function send(lb: string, line: string, user: string): Promise<Reply> {
  const m = /^\[(\w+)\] (.*)$/s.exec(line);
  const mode = m ? m[1]! : 'query';
  const values = (m ? m[2]! : line).split(' ‖ ');
  const now = Math.floor(Date.now() / 1000);
  const headers: Record<string, string> = { 'X-Grafana-User': user, 'X-Ceems-Cluster-Id': 'hpc-0' };
  const form = (name: string) => {
    const p = new URLSearchParams();
    for (const v of values) p.append(name, v);
    return p;
  };
  let url: string;
  let init: RequestInit = { headers };
  switch (mode) {
    case 'query':
      url = `${lb}/api/v1/query?${form('query')}`;
      break;
    case 'post':
      url = `${lb}/api/v1/query`;
      init = { method: 'POST', headers, body: form('query') };
      break;
    case 'range': {
      const p = form('query');
      p.set('start', String(now - 60));
      p.set('end', String(now));
      p.set('step', '5');
      url = `${lb}/api/v1/query_range`;
      init = { method: 'POST', headers, body: p };
      break;
    }
    case 'multipart': {
      const fd = new FormData();
      for (const v of values) fd.append('query', v);
      url = `${lb}/api/v1/query`;
      init = { method: 'POST', headers, body: fd };
      break;
    }
    case 'series':
      url = `${lb}/api/v1/series?${form('match[]')}&start=${now - 300}`;
      break;
    case 'labels':
      url = `${lb}/api/v1/labels`;
      init = { method: 'POST', headers, body: form('match[]') };
      break;
    case 'values':
      url = `${lb}/api/v1/label/uuid/values?${form('match[]')}`;
      break;
    default:
      throw new Error(`unknown corpus mode ${mode}`);
  }
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, text: await res.text() };
}

/** Every `uuid` value in a Prometheus API response, and whether it holds any data. */
function uuidsOf(mode: string, text: string): { uuids: string[]; empty: boolean } {
  const body = JSON.parse(text) as { status: string; data: unknown };
  assert.equal(body.status, 'success');
  const data = body.data as { result?: Array<{ metric: Record<string, string> }> } | unknown[];
  if (mode === 'values') return { uuids: data as string[], empty: (data as string[]).length === 0 };
  if (mode === 'labels') return { uuids: [], empty: (data as string[]).length === 0 };
  const sets = Array.isArray(data)
    ? (data as Array<Record<string, string>>)
    : (data.result ?? []).map((r) => r.metric);
  return {
    uuids: sets.map((s) => s.uuid).filter((u): u is string => u !== undefined),
    empty: sets.length === 0,
  };
}

describe('ceems_lb access control against a real Prometheus', { timeout: 120_000 }, () => {
  const tmp = tempDir('ceems-lb-access-');
  const exporter = Fastify({ logger: false });
  const lbs: Partial<Record<'sqlite' | 'postgres', Started>> = {};
  let prometheus: TestbedPrometheus | undefined;
  let pg: PostgresServer | undefined;

  before(async () => {
    exporter.get('/metrics', async (_req, reply) =>
      reply.type('text/plain; version=0.0.4').send(metricsText()),
    );
    const target = (await listen(exporter)).replace('http://', '');
    prometheus = startTestbedPrometheus(PROM_PORT, [`fake=${target}`]);
    createOwnershipDb(tmp.dir, {
      units: [
        { cluster: 'hpc-0', uuid: '1001', project: 'acc1', user: 'alice' },
        { cluster: 'hpc-0', uuid: '1002', project: 'acc1', user: 'alice' },
        { cluster: 'hpc-0', uuid: '1003', project: 'acc1', user: 'carol' },
        { cluster: 'hpc-0', uuid: 'aaaaaaaa-1111-4111-8111-000000000001', project: 'acc1', user: 'alice' },
        { cluster: 'hpc-0', uuid: '2001', project: 'acc2', user: 'bob' },
        { cluster: 'hpc-0', uuid: '2002', project: 'acc2', user: 'bob' },
        { cluster: 'hpc-0', uuid: 'bbbbbbbb-2222-4222-8222-000000000002', project: 'acc2', user: 'bob' },
        { cluster: 'hpc-1', uuid: '3001', project: 'proj-x', user: 'dave' },
      ],
      projects: [
        { cluster: 'hpc-0', name: 'acc1', users: ['alice', 'carol'] },
        { cluster: 'hpc-0', name: 'acc2', users: ['bob'] },
        { cluster: 'hpc-1', name: 'proj-x', users: ['dave'] },
      ],
      admins: ['boss'],
    });
    pg = await startPostgres({ port: POSTGRES_PORT });
    const pgUrl = await copyToPostgres(pg, tmp.dir);
    const lbConfig = {
      backends: [
        { id: 'hpc-0', tsdb: [{ web: { url: PROM } }] },
        { id: 'hpc-1', tsdb: [{ web: { url: PROM } }] },
      ],
    };
    for (const [backend, data] of [
      ['sqlite', { path: tmp.dir }],
      ['postgres', { backend: 'postgres', url: pgUrl }],
    ] as const) {
      const config = writeYaml(`${tmp.dir}/config-${backend}.yml`, {
        ceems_api_server: { data },
        ceems_lb: lbConfig,
      });
      lbs[backend] = await startProgram('ceems_lb', [
        `--config.file=${config}`,
        '--web.listen-address=127.0.0.1:0',
      ]);
    }
    // Rates, offsets and subqueries need several scrapes of every unit (≥ 5 s of samples).
    const ready = encodeURIComponent('count(count_over_time(ceems_compute_unit_cpus[1m]) >= 5)');
    await waitFor(
      'Prometheus to hold 5 samples of every unit',
      60_000,
      async () => {
        const r = await fetch(`${PROM}/api/v1/query?query=${ready}`);
        const j = (await r.json()) as { data: { result: Array<{ value: [number, string] }> } };
        return j.data.result[0]?.value[1] === String(UNITS.length) ? true : undefined;
      },
      250,
    );
  });

  after(async () => {
    for (const lb of Object.values(lbs)) await lb.stop();
    await pg?.stop();
    prometheus?.stop();
    await exporter.close();
    tmp.cleanup();
  });

  for (const backend of ['sqlite', 'postgres'] as const) {
    const lb = () => lbs[backend]!;
    it(`${backend}: denies every attack query of the corpus`, async () => {
      const attacks = readCorpus(`${ROOT}/test/fixtures/lb/attack-queries.txt`);
      assert.ok(attacks.length >= 100, `corpus has ${attacks.length} attacks`);
      const leaked: string[] = [];
      for (const q of attacks) {
        const r = await send(lb().url, q, 'alice');
        if (r.status !== 403 && r.status !== 400) leaked.push(`${r.status} ${q}: ${r.text.slice(0, 200)}`);
        else assert.equal(JSON.parse(r.text).status, 'error');
      }
      assert.deepEqual(leaked, []);
    });

    it(`${backend}: the same attacks do read other users data when access control is bypassed (admin)`, async () => {
      for (const q of [
        'ceems_compute_unit_cpus{uuid=~".+"}',
        'ceems_compute_unit_cpus{uuid="1001"} or ceems_compute_unit_cpus{uuid="2001"}',
        '{__name__=~"ceems_.*"}',
        'sort_desc(ceems_compute_unit_cpus)',
        '[series] {uuid=~".+"}',
      ]) {
        const r = await send(lb().url, q, 'boss');
        assert.equal(r.status, 200, q);
        assert.ok(/2001|bbbbbbbb|node-b/.test(r.text), `admin result of ${q} shows bob's units`);
      }
    });

    it(`${backend}: allows every legitimate dashboard query and returns only the user’s units`, async () => {
      const legit = readCorpus(`${ROOT}/test/fixtures/lb/legit-queries.txt`);
      assert.ok(legit.length >= 50, `corpus has ${legit.length} queries`);
      const problems: string[] = [];
      for (const q of legit) {
        const r = await send(lb().url, q, 'alice');
        if (r.status !== 200) {
          problems.push(`${r.status} ${q}: ${r.text.slice(0, 200)}`);
          continue;
        }
        const mode = /^\[(\w+)\]/.exec(q)?.[1] ?? 'query';
        const { uuids, empty } = uuidsOf(mode, r.text);
        if (empty) problems.push(`empty result for ${q}`);
        const foreign = uuids.filter((u) => !ALICE_UNITS.includes(u));
        if (foreign.length > 0) problems.push(`foreign units ${foreign} in result of ${q}`);
        for (const f of FOREIGN) if (r.text.includes(`"${f}"`)) problems.push(`foreign unit ${f} in ${q}`);
      }
      assert.deepEqual(problems, []);
    });

    it(`${backend}: checks ownership on the cluster named by ceems_id`, async () => {
      const asDave = await send(lb().url, 'ceems_compute_unit_cpus{uuid="3001", ceems_id="hpc-1"}', 'dave');
      assert.equal(asDave.status, 200);
      assert.match(asDave.text, /"uuid":"3001"/);
      const unknown = await send(lb().url, 'ceems_compute_unit_cpus{uuid="1001", ceems_id="hpc-9"}', 'alice');
      assert.equal(unknown.status, 400);
      assert.match(unknown.text, /"errorType":"bad_request","error":"invalid cluster ID/);
    });
  }
});
