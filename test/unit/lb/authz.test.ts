import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { postgresReader } from '../../../src/common/sqlreader.js';
import { Authorizer, type AuthzSource, DbAuthzSource } from '../../../src/lb/authz.js';
import { copyToPostgres } from '../../fixtures/api/postgres.js';
import { createOwnershipDb, tempDir } from '../../fixtures/lb/setup.js';
import { type PostgresServer, startPostgres } from '../../helpers/postgres.js';

// The same SQL on both backends [D-LB-20]: the API server's SQLite file, and the same rows in its PostgreSQL.
for (const backend of ['sqlite', 'postgres'] as const)
  describe(`ownership and admin checks from the API server DB (${backend})`, () => {
    const tmp = tempDir('ceems-lb-authz-');
    const file = createOwnershipDb(tmp.dir, {
      units: [
        // SLURM job ids repeat: two rows of an owned id must not hide a foreign one (D-LB-13).
        { cluster: 'hpc-0', uuid: '1001', project: 'acc1', user: 'alice' },
        { cluster: 'hpc-0', uuid: '1001', project: 'acc1', user: 'alice' },
        { cluster: 'hpc-0', uuid: '1003', project: 'acc1', user: 'carol' },
        { cluster: 'hpc-0', uuid: '2001', project: 'acc2', user: 'bob' },
        { cluster: 'hpc-1', uuid: '3001', project: 'acc1', user: 'alice' },
      ],
      projects: [
        { cluster: 'hpc-0', name: 'acc1', users: ['alice', 'carol'] },
        { cluster: 'hpc-0', name: 'acc2', users: ['bob'] },
      ],
      admins: ['boss'],
    });
    let db: DbAuthzSource;
    let pg: PostgresServer | undefined;
    before(async () => {
      if (backend === 'sqlite') db = new DbAuthzSource(file);
      else {
        pg = await startPostgres({ port: 9422 });
        db = new DbAuthzSource(postgresReader(await copyToPostgres(pg, tmp.dir)));
      }
    });
    after(async () => {
      await db.close();
      await pg?.stop();
      tmp.cleanup();
    });

    it('requires every uuid to be a unit of one of the user’s projects in the cluster', async () => {
      assert.equal(await db.owns('alice', 'hpc-0', ['1001']), true);
      assert.equal(
        await db.owns('alice', 'hpc-0', ['1001', '1003']),
        true,
        'project member sees the project',
      );
      assert.equal(await db.owns('alice', 'hpc-0', ['1001', '2001']), false);
      assert.equal(await db.owns('alice', 'hpc-0', ['1001', '1001', '2001']), false);
      assert.equal(await db.owns('alice', 'hpc-0', ['9999']), false, 'unknown unit');
      assert.equal(await db.owns('alice', 'hpc-1', ['1001']), false, 'other cluster');
      assert.equal(await db.owns('bob', 'hpc-0', ['1001']), false);
      assert.equal(await db.owns('alice', 'hpc-0', []), false);
      assert.equal(await db.owns('', 'hpc-0', ['1001']), false);
    });

    it('reads admins and cluster ids', async () => {
      assert.equal(await db.isAdmin('boss'), true);
      assert.equal(await db.isAdmin('alice'), false);
      assert.deepEqual(
        (await db.clusters()).map((c) => c.id),
        ['hpc-0', 'hpc-1'],
      );
    });
  });

describe('Authorizer cache', () => {
  function countingSource(owned: Set<string>, fail = false) {
    const calls: string[][] = [];
    const source: AuthzSource = {
      kind: 'api',
      isAdmin: async () => {
        if (fail) throw new Error('down');
        return false;
      },
      owns: async (_u, _c, ids) => {
        calls.push([...ids]);
        if (fail) throw new Error('down');
        return ids.every((i) => owned.has(i));
      },
      clusters: async () => [],
      close: async () => {},
    };
    return { source, calls };
  }

  it('asks only for uuids not cached positively, per user and cluster', async () => {
    const { source, calls } = countingSource(new Set(['a', 'b']));
    const authz = new Authorizer(source);
    assert.equal(await authz.owns('u', 'c', ['a']), true);
    assert.equal(await authz.owns('u', 'c', ['a', 'b']), true);
    assert.equal(await authz.owns('u', 'c', ['a', 'x']), false);
    assert.equal(await authz.owns('u', 'c', ['a', 'x']), false, 'negative answers are not cached');
    assert.equal(await authz.owns('v', 'c', ['a']), true);
    assert.equal(await authz.owns('u', 'd', ['a']), true);
    assert.deepEqual(calls, [['a'], ['b'], ['x'], ['x'], ['a'], ['a']]);
  });

  it('expires entries and stays bounded', async () => {
    const { source, calls } = countingSource(new Set(['a', 'b', 'c']));
    const authz = new Authorizer(source, 0, 2);
    await authz.owns('u', 'c', ['a']);
    await new Promise((r) => setTimeout(r, 2));
    await authz.owns('u', 'c', ['a']);
    assert.equal(calls.length, 2, 'expired entry asked again');
    const bounded = new Authorizer(countingSource(new Set(['a', 'b', 'c'])).source, 60_000, 2);
    for (const id of ['a', 'b', 'c']) await bounded.owns('u', 'c', [id]);
    assert.equal((bounded as unknown as { owned: Map<string, number> }).owned.size, 2);
  });

  it('denies when the source fails', async () => {
    const authz = new Authorizer(countingSource(new Set(['a']), true).source);
    assert.equal(await authz.owns('u', 'c', ['a']), false);
    assert.equal(await authz.isAdmin('boss'), false);
  });
});
