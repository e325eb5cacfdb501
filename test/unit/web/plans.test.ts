// The web view's queries for one user never scan the units table (issue 15's rule for the API): each is
// an index search on the user or on their projects, whatever the sort, so a 10,000-unit user costs their
// own rows, not the whole table.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, test } from 'node:test';
import { openReader } from '../../../src/api/db/index.js';
import { type IssuedQuery, traceQueries } from '../../../src/api/db/trace.js';
import type { Database } from '../../../src/common/sqlite.js';
import { sqliteReader } from '../../../src/common/sqlreader.js';
import { getUnit, listUnits, projectTotals, SORT_KEYS } from '../../../src/web/data.js';
import { seedDb } from '../../fixtures/api/seed.js';

const dir = seedDb();
after(() => rmSync(dir, { recursive: true, force: true }));

test('no scan of units for a user: every sort of the list, one unit, project totals', async () => {
  const db = openReader(dir);
  const issued: IssuedQuery[] = [];
  const reader = sqliteReader(() => traceQueries(db, (q) => issued.push(q)));
  for (const sort of SORT_KEYS)
    for (const text of [undefined, 'acc'])
      await listUnits(reader, { owner: 'bob', text, sort, desc: true, page: 2, size: 10 });
  await getUnit(reader, 'slurm-0', '1003');
  await projectTotals(reader, 'bob');
  const plans = issued.flatMap((q) => explain(db, q.sql, q.params));
  assert.ok(plans.length >= SORT_KEYS.length * 4, `${plans.length} plan lines`);
  const scans = plans.filter((p) => /^SCAN (units|u)\b/.test(p));
  assert.deepEqual(scans, [], plans.join('\n'));
  await reader.close();
});

function explain(db: Database, sql: string, params: unknown[]): string[] {
  return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...(params as never[])) as { detail: string }[]).map(
    (r) => r.detail,
  );
}
