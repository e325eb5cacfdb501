// Issue 21: the same JSON on every route, byte for byte, whichever backend the API server reads. One DB
// (the seeded one plus units with irregular metric values, so that sums and weighted averages are real
// floating-point work) is served from SQLite, from a row-for-row copy in a real PostgreSQL, and from a
// PostgreSQL database filled with the same collection windows through PostgreSQL's own store (PgStore);
// every GET route the server registered (from its route registry, the web view's JSON routes too) is asked
// with every parameter family it declares, as users of different rights, and the three answers must be
// equal in status, content type and bytes.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { CeemsDb, type CollectionWindow, type UnitRecord } from '../../../src/api/db/index.js';
import { openPg } from '../../../src/api/db/pg/connect.js';
import { migratePg } from '../../../src/api/db/pg/migrations.js';
import { PgStore } from '../../../src/api/db/pg/store.js';
import type { MetricMap } from '../../../src/api/models.js';
import { type ApiServer, createApiServer } from '../../../src/api/server.js';
import { formatDatetimezone } from '../../../src/api/timefmt.js';
import { postgresReader } from '../../../src/common/sqlreader.js';
import { copyToPostgres } from '../../fixtures/api/postgres.js';
import { ADMIN, NOW, SEED_ADMINS, SEED_COLLECTION, seedDb, TZ } from '../../fixtures/api/seed.js';
import { apiServerOptions } from '../../fixtures/api/server.js';
import { type PostgresServer, startPostgres } from '../../helpers/postgres.js';
import { mulberry32 } from '../../helpers/promql-gen.js';

const API = '/api/v1';
const H = 3_600_000;

/** 300 units of the seed's users and projects over the last 4 days, with irregular metric maps. */
function irregularUnits(): UnitRecord[] {
  const owners = [
    ['slurm-0', 'slurm', 'alice', 'acc1'],
    ['slurm-0', 'slurm', 'alice', 'acc2'],
    ['slurm-0', 'slurm', 'bob', 'acc1'],
    ['slurm-0', 'slurm', 'carol', 'acc3'],
    ['os-0', 'openstack', 'alice', 'tenant1'],
    ['k8s-0', 'k8s', 'carol', 'ns1'],
  ] as const;
  return Array.from({ length: 300 }, (_, i) => {
    const r = mulberry32(i + 7);
    const [cluster, manager, user, project] = owners[i % owners.length]!;
    const started = NOW - 96 * H + i * 1_000_000;
    const running = i % 17 === 0;
    const ended = running ? 0 : started + Math.floor(r() * 20 * H);
    const wall = Math.floor(((ended || NOW) - started) / 1000);
    return {
      cluster_id: cluster,
      resource_manager: manager,
      uuid: `x${i}`,
      name: `irregular-${i}`,
      project,
      groupname: i % 3 === 0 ? 'grp' : 'other',
      username: user,
      created_at: formatDatetimezone(started - 60_000, TZ),
      started_at: formatDatetimezone(started, TZ),
      ended_at: ended ? formatDatetimezone(ended, TZ) : 'Unknown',
      created_at_ts: started - 60_000,
      started_at_ts: started,
      ended_at_ts: ended,
      elapsed: '01:00:00',
      state: running ? 'RUNNING' : 'COMPLETED',
      allocation: { cpus: 1 + (i % 64), mem: 2 ** (30 + (i % 4)) },
      tags: { qos: i % 2 ? 'normal' : 'high', nodelistexp: `n${i % 5}|n${(i + 1) % 5}` },
      total_time_seconds: {
        walltime: wall,
        alloc_cputime: wall * (1 + (i % 64)),
        alloc_gputime: i % 4 ? 0 : wall,
      },
      avg_cpu_usage: { global: r() * 100 },
      avg_cpu_mem_usage: { global: r() * 100 },
      avg_gpu_usage: (i % 4 ? {} : { global: r() * 100 }) as MetricMap,
      total_cpu_energy_usage_kwh: { total: r() * 3 },
      total_gpu_energy_usage_kwh: (i % 4 ? {} : { total: r() * 9 }) as MetricMap,
      total_cpu_emissions_gms: { rte_total: r() * 500, owid_total: r() * 700 },
      total_io_read_stats: { bytes: Math.floor(r() * 1e12), requests: Math.floor(r() * 1e7) },
      total_ingress_stats: { bytes: Math.floor(r() * 1e13), packets: Math.floor(r() * 1e9) },
    };
  });
}

/** Values of each query parameter family, asked one family at a time and in a few combinations. */
const FAMILIES: Record<string, string[]> = {
  cluster_id: ['cluster_id=slurm-0', 'cluster_id=k8s-0&cluster_id=os-0', 'cluster_id=none'],
  from: [
    `from=${NOW / 1000 - 96 * 3600}&to=${NOW / 1000}`,
    `from=${NOW / 1000 - 30 * 3600}`,
    `to=${NOW / 1000 - 48 * 3600}`,
  ],
  project: ['project=acc1', 'project=ns1', 'project=acc1&project=acc3', 'project=%00', "project=a'b%25"],
  running: ['running'],
  uuid: ['uuid=1001', 'uuid=x6&uuid=pod-1111&uuid=x17', 'uuid=1005'],
  timezone: ['timezone=UTC', 'timezone=America/New_York', 'timezone=Not/AZone'],
  field: [
    'field=uuid&field=total_cpu_energy_usage_kwh&field=avg_cpu_usage',
    'field=num_units&field=avg_cpu_usage&field=total_time_seconds&field=cluster_id',
    'field=name&field=projects&field=tags',
    'field=nothing',
  ],
  groupby: [
    'groupby=cluster_id',
    'groupby=groupname&field=groupname&field=num_units&field=avg_gpu_usage',
    'groupby=bogus',
  ],
  experimental: ['experimental'],
  __terminated: ['__terminated'],
  user: ['user=alice', 'user=carol&user=bob'],
  role: ['role=admin'],
};
const COMBINATIONS = [
  `running&project=acc1&from=${NOW / 1000 - 96 * 3600}&to=${NOW / 1000}`,
  `cluster_id=slurm-0&from=${NOW / 1000 - 96 * 3600}&to=${NOW / 1000}&groupby=cluster_id`,
  `experimental&from=${NOW / 1000 - 96 * 3600}&to=${NOW / 1000}&field=num_units&field=total_cpu_emissions_gms`,
  `__terminated&from=${NOW / 1000 - 96 * 3600}&to=${NOW / 1000}&project=acc2`,
];

/** Requests of the web view's JSON routes (they declare no parameters in the API description). */
const WEB_REQUESTS = [
  ...['uuid', 'name', 'project', 'user', 'state', 'start', 'end', 'energy', 'emissions', 'cpu'].flatMap(
    (sort) => ['asc', 'desc'].map((dir) => `/ui/api/units?sort=${sort}&dir=${dir}&size=25`),
  ),
  '/ui/api/units?q=acc&page=2&size=10',
  '/ui/api/units?q=%25_%5C&size=10',
  '/ui/api/units?q=X1&cluster_id=slurm-0&project=acc1',
  '/ui/api/projects',
  '/ui/api/unit?cluster_id=slurm-0&uuid=1001',
  '/ui/api/unit?cluster_id=slurm-0&uuid=x12',
  '/ui/api/cluster',
];

let dir: string;
let pg: PostgresServer;
/** SQLite, PostgreSQL holding a copy of its rows, PostgreSQL filled by its own store. */
let servers: Array<{ name: string; api: ApiServer }>;

before(async () => {
  const irregular: CollectionWindow = {
    start: NOW - 100 * H,
    end: NOW - H,
    timeZone: TZ,
    units: irregularUnits(),
  };
  dir = seedDb();
  const db = CeemsDb.open(dir);
  db.storeCollection(irregular);
  db.close();
  pg = await startPostgres({ port: 9424 });
  await pg.createDatabase('stored');
  const sql = openPg(pg.url('stored'));
  try {
    await migratePg(sql);
    const store = new PgStore(sql);
    await store.storeCollection(SEED_COLLECTION);
    await store.syncAdminUsers(...SEED_ADMINS);
    await store.storeCollection(irregular);
  } finally {
    await sql.end({ timeout: 5 });
  }
  const readers = [
    ['sqlite', undefined],
    ['postgres (copy)', postgresReader(await copyToPostgres(pg, dir))],
    ['postgres (PgStore)', postgresReader(pg.url('stored'))],
  ] as const;
  servers = await Promise.all(
    readers.map(async ([name, reader]) => ({
      name,
      api: await createApiServer(apiServerOptions(dir, { reader })),
    })),
  );
});
after(async () => {
  for (const s of servers) await s.api.close();
  await pg.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Query parameters each API route declares, from the API description. */
async function declaredParams(): Promise<Map<string, Set<string>>> {
  const doc = (await servers[0]!.api.app.inject({ method: 'GET', url: '/swagger/doc.json' })).json() as {
    paths: Record<string, { get?: { parameters?: { in: string; name: string }[] } }>;
  };
  const out = new Map<string, Set<string>>();
  for (const [path, ops] of Object.entries(doc.paths))
    out.set(
      `${API}${path}`,
      new Set((ops.get?.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name)),
    );
  return out;
}

test('every route, every parameter family, users of each right: the same status, type and bytes', async () => {
  const params = await declaredParams();
  const requests: Array<{ url: string; user: string }> = [];
  for (const route of servers[0]!.api.routes) {
    // /demo answers random data; the web view's HTML pages and assets read nothing.
    if (
      !route.methods.includes('GET') ||
      /[*:]|\/demo\/|\/swagger/.test(route.url) ||
      route.url.startsWith('/ui')
    )
      continue;
    const declared = params.get(route.url) ?? new Set<string>();
    const queries = [
      '',
      ...Object.entries(FAMILIES).flatMap(([name, list]) => (declared.has(name) ? list : [])),
      ...COMBINATIONS.filter((c) => c.split('&').every((p) => declared.has(p.split('=')[0]!))),
    ];
    const users = route.access === 'admin' ? [ADMIN, 'alice'] : ['alice', 'carol', ADMIN, ''];
    for (const q of queries)
      for (const user of users) requests.push({ url: q ? `${route.url}?${q}` : route.url, user });
  }
  requests.push(
    ...[
      'alice&cluster_id=slurm-0',
      'x6&uuid=1001&cluster_id=slurm-0',
      'pod-1111&cluster_id=k8s-0',
      '1003&cluster_id=slurm-0',
    ].flatMap((q) =>
      ['alice', 'bob', 'carol'].map((user) => ({ url: `${API}/units/verify?uuid=${q}`, user })),
    ),
    ...WEB_REQUESTS.flatMap((url) => ['alice', 'carol', ADMIN].map((user) => ({ url, user }))),
  );

  const differences: string[] = [];
  let withData = 0;
  for (const { url, user } of requests) {
    const headers = user ? { 'x-grafana-user': user } : {};
    const [a, ...others] = await Promise.all(
      servers.map((s) => s.api.app.inject({ method: 'GET', url, headers })),
    );
    const key = (r: typeof a) => `${r!.statusCode} ${r!.headers['content-type']}\n${r!.body}`;
    others.forEach((b, i) => {
      if (key(a) !== key(b))
        differences.push(`${url} as '${user}':\n  sqlite: ${key(a)}\n  ${servers[i + 1]!.name}: ${key(b)}`);
    });
    if (a!.statusCode === 200 && /"data":\[\{|"rows":\[\{|"projects":\[\{|"clusters":\[\{/.test(a!.body))
      withData++;
  }
  assert.deepEqual(differences, [], differences.slice(0, 5).join('\n'));
  // Not a comparison of empty answers: most requests found rows.
  assert.ok(requests.length > 400, `${requests.length} requests`);
  assert.ok(withData > requests.length / 3, `${withData} of ${requests.length} answers had rows`);
});
