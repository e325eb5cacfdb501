// The API route suites on PostgreSQL (issue 21): routes, cross-cluster, security (injections), node
// energy, footprint and the web view's routes, every request of those files answered from a copy of the
// same seeded DB in a real PostgreSQL 15 (test/fixtures/api/server.ts), with the same expected bodies.

import { after } from 'node:test';
import { usePostgres } from '../../fixtures/api/server.js';
import { startPostgres } from '../../helpers/postgres.js';

const pg = await startPostgres({ port: 9421 });
after(() => pg.stop());
usePostgres(pg);
await import('./routes.test.js');
await import('./cross-cluster.test.js');
await import('./security.test.js');
await import('./node-energy.test.js');
await import('./footprint.test.js');
await import('../web/routes.test.js');
