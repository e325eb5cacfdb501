// The API route suite of routes.test.ts, the cross-cluster and security tests on PostgreSQL (issue 21):
// every request of those files answered from a copy of the same seeded DB in a real PostgreSQL 15, with
// the same expected bodies.

import { after } from 'node:test';
import { usePostgres } from '../../fixtures/api/server.js';
import { startPostgres } from '../../helpers/postgres.js';

const pg = await startPostgres({ port: 9421 });
after(() => pg.stop());
usePostgres(pg);
await import('./routes.test.js');
