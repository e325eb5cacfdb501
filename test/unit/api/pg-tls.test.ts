// `data.url` with libpq's TLS options against a real PostgreSQL serving TLS: verify-full with the right CA
// connects encrypted (and migrates), with another CA it is refused; the client certificate options load.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { openPg } from '../../../src/api/db/pg/connect.js';
import { migratePg } from '../../../src/api/db/pg/migrations.js';
import { type PostgresServer, startPostgres } from '../../helpers/postgres.js';
import { makePki, type TestPki } from '../../helpers/tls.js';

let server: PostgresServer;
let pki: TestPki;
let other: TestPki;
before(async () => {
  pki = makePki();
  other = makePki();
  server = await startPostgres({ port: 9408, tls: { cert: pki.serverCert, key: pki.serverKey } });
  await server.createDatabase('tls');
});
after(async () => {
  await server?.stop();
  for (const p of [pki, other]) if (p) rmSync(p.dir, { recursive: true, force: true });
});

const url = (query: string) => `${server.url('tls')}?${query}`;

test('sslmode=verify-full with the server CA: an encrypted session the schema is migrated over', async () => {
  const sql = openPg(url(`sslmode=verify-full&sslrootcert=${pki.caCert}`), { max: 1 });
  try {
    await migratePg(sql);
    const [r] = await sql`SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`;
    assert.equal(r!.ssl, true);
    // a client certificate and key are read from their files too (the server does not ask for one)
    const withCert = openPg(
      url(`sslmode=verify-full&sslrootcert=${pki.caCert}&sslcert=${pki.clientCert}&sslkey=${pki.clientKey}`),
      { max: 1 },
    );
    const [c] = await withCert`SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`;
    assert.equal(c!.ssl, true);
    await withCert.end();
  } finally {
    await sql.end();
  }
});

test('sslmode=verify-full with another CA is refused; without sslmode the session is not encrypted', async () => {
  const wrong = openPg(url(`sslmode=verify-full&sslrootcert=${other.caCert}`), { max: 1 });
  await assert.rejects(wrong`SELECT 1`, /certificate/i);
  await wrong.end({ timeout: 0 });
  const plain = openPg(server.url('tls'), { max: 1 });
  const [r] = await plain`SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`;
  assert.equal(r!.ssl, false);
  await plain.end();
});
