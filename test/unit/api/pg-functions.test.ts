// The PostgreSQL metric-map functions (src/api/db/pg/functions.ts) against the SQLite ones
// (src/api/db/functions.ts) on the same random maps: the same keys and the same numbers to the last bit.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Sql } from 'postgres';
import { parseMetricMap, registerFunctions } from '../../../src/api/db/functions.js';
import { openPg } from '../../../src/api/db/pg/connect.js';
import { migratePg } from '../../../src/api/db/pg/migrations.js';
import { type Database, openDatabase } from '../../../src/common/sqlite.js';
import { type PostgresServer, startPostgres } from '../../helpers/postgres.js';

let server: PostgresServer;
let sql: Sql;
let lite: Database;

before(async () => {
  server = await startPostgres({ port: 9401 });
  await server.createDatabase('functions');
  sql = openPg(server.url('functions'));
  await migratePg(sql);
  lite = openDatabase(':memory:');
  registerFunctions(lite);
});

after(async () => {
  await sql?.end();
  await server?.stop();
});

/** Deterministic PRNG (mulberry32) so that a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEYS = ['a', 'b', 'walltime', 'alloc_cputime', 'cpu', 'gpu-0', '10', '9', 'é'];

function randomNumber(r: () => number): number {
  switch (Math.floor(r() * 5)) {
    case 0:
      return Math.floor(r() * 1000);
    case 1:
      return (r() - 0.5) * 10 ** Math.floor(r() * 40 - 20);
    case 2:
      return r() * 1e6;
    case 3:
      return 0;
    default:
      return r() / 3;
  }
}

/** A stored map: mostly plain numbers, sometimes the odd values parseMetricMap converts or drops. */
function randomMapText(r: () => number): string | null {
  const shape = r();
  if (shape < 0.05) return '{}';
  if (shape < 0.07) return 'not json';
  if (shape < 0.08) return '[1,2]';
  if (shape < 0.09) return '';
  if (shape < 0.1) return null;
  const m: Record<string, unknown> = {};
  const n = 1 + Math.floor(r() * 5);
  for (let i = 0; i < n; i++) {
    const k = KEYS[Math.floor(r() * KEYS.length)]!;
    const odd = r();
    m[k] =
      odd < 0.03
        ? String(randomNumber(r))
        : odd < 0.05
          ? r() < 0.5
          : odd < 0.06
            ? null
            : odd < 0.07
              ? { nested: 1 }
              : odd < 0.08
                ? ''
                : randomNumber(r);
  }
  // Both separators: the functions' own output (jsonb) is read back as well.
  return r() < 0.2 ? JSON.stringify(m, null, 1) : JSON.stringify(m);
}

/** Same keys, same numbers bit for bit (Object.is: 0 and -0 both print as 0 and are not told apart). */
function assertSameMap(pg: string | null, js: string | null, what: string): void {
  const a = parseMetricMap(pg);
  const b = parseMetricMap(js);
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort(), `${what}: keys of ${pg} vs ${js}`);
  for (const k of Object.keys(b)) {
    assert.ok(a[k] === b[k] || (a[k] === 0 && b[k] === 0), `${what}: key ${k}: pg ${a[k]} vs js ${b[k]}`);
  }
}

const CASES = 3000;

test('add_metric_map and avg_metric_map equal the SQLite functions on random maps', async () => {
  const r = rng(21);
  const a = Array.from({ length: CASES }, () => randomMapText(r));
  const b = Array.from({ length: CASES }, () => randomMapText(r));
  const wa = Array.from({ length: CASES }, () => (r() < 0.1 ? 0 : r() < 0.05 ? null : randomNumber(r)));
  const wb = Array.from({ length: CASES }, () => (r() < 0.1 ? 0 : randomNumber(r)));
  const rows = await sql<{ add: string | null; avg: string | null }[]>`
    SELECT add_metric_map(a, b) AS add, avg_metric_map(a, b, wa, wb) AS avg
    FROM unnest(${a as string[]}::text[], ${b as string[]}::text[],
                ${wa as number[]}::float8[], ${wb}::float8[])
         WITH ORDINALITY AS t(a, b, wa, wb, i)
    ORDER BY i`;
  assert.equal(rows.length, CASES);
  const add = lite.prepare('SELECT add_metric_map(?, ?) AS v');
  const avg = lite.prepare('SELECT avg_metric_map(?, ?, ?, ?) AS v');
  for (let i = 0; i < CASES; i++) {
    const js = add.get(a[i]!, b[i]!)!.v as string;
    assertSameMap(rows[i]!.add, js, `add(${a[i]}, ${b[i]})`);
    // merging with '{}' hands the other text back unchanged, on both backends
    if (a[i] === '{}' || b[i] === '{}') assert.equal(rows[i]!.add, js);
    const jsAvg = avg.get(a[i]!, b[i]!, wa[i]!, wb[i]!)!.v as string;
    assertSameMap(rows[i]!.avg, jsAvg, `avg(${a[i]}, ${b[i]}, ${wa[i]}, ${wb[i]})`);
  }
});

test('sum_metric_map_agg and avg_metric_map_agg equal the SQLite aggregates over random groups', async () => {
  const r = rng(2121);
  const group: number[] = [];
  const maps: (string | null)[] = [];
  const weights: (number | null)[] = [];
  for (let g = 0; g < 300; g++) {
    const n = Math.floor(r() * 12); // some groups hold one row, some none
    for (let i = 0; i < n; i++) {
      group.push(g);
      maps.push(randomMapText(r));
      weights.push(r() < 0.1 ? 0 : r() < 0.05 ? null : randomNumber(r));
    }
  }
  const pg = await sql<{ g: number; sum: string; avg: string }[]>`
    SELECT g, sum_metric_map_agg(m ORDER BY i) AS sum, avg_metric_map_agg(m, w ORDER BY i) AS avg
    FROM unnest(${group}::bigint[], ${maps as string[]}::text[],
                ${weights as number[]}::float8[]) WITH ORDINALITY AS t(g, m, w, i)
    GROUP BY g ORDER BY g`;
  lite.exec('CREATE TABLE t (i integer primary key, g integer, m text, w real)');
  const ins = lite.prepare('INSERT INTO t (g, m, w) VALUES (?, ?, ?)');
  for (let i = 0; i < group.length; i++) ins.run(group[i]!, maps[i]!, weights[i]!);
  const agg = lite.prepare(
    'SELECT sum_metric_map_agg(m) AS sum, avg_metric_map_agg(m, w) AS avg FROM (SELECT m, w FROM t WHERE g = ? ORDER BY i)',
  );
  assert.ok(pg.length > 250, `groups: ${pg.length}`);
  for (const row of pg) {
    const js = agg.get(row.g)! as { sum: string; avg: string };
    assertSameMap(row.sum, js.sum, `sum of group ${row.g}`);
    assertSameMap(row.avg, js.avg, `avg of group ${row.g}`);
  }
  const [empty] =
    await sql`SELECT sum_metric_map_agg(m) AS sum, avg_metric_map_agg(m, 1) AS avg FROM (SELECT ''::text AS m WHERE false) e`;
  assert.deepEqual({ ...empty }, { sum: '{}', avg: '{}' });
});

test('the returned text is jsonb text: keys by length then bytes, ": " and ", " separators', async () => {
  const [row] = await sql`SELECT add_metric_map('{"bb":1,"a":0.1}', '{"a":0.2,"c":1e21}') AS v`;
  assert.equal(row!.v, '{"a": 0.30000000000000004, "c": 1000000000000000000000, "bb": 1}');
});
