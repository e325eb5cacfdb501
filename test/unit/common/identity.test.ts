// Identity headers read from Node's raw header list (common/identity.ts): one table of cases, then the
// same headers through a real HTTP server, where Node's parser decides what reaches rawHeaders.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { describe, test } from 'node:test';
import {
  checkIdentity,
  type IdentityFailure,
  MAX_IDENTITY_BYTES,
  readIdentityHeader,
} from '../../../src/common/identity.js';

const H = 'X-Grafana-User';
type Case = [what: string, raw: string[], expected: string | IdentityFailure];

const CASES: Case[] = [
  // accepted
  ['plain Unix name', [H, 'alice'], 'alice'],
  ['header name in any case', ['x-GRAFANA-user', 'alice'], 'alice'],
  ['other headers around it', ['Host', 'x', H, 'bob', 'Accept', '*/*'], 'bob'],
  ['digits, dot, underscore, dash', [H, 'j.doe_2-x'], 'j.doe_2-x'],
  ['service user of the LB', [H, 'ceems-int-svc'], 'ceems-int-svc'],
  ['e-mail login with sub-address', [H, 'alice+ceems@example.org'], 'alice+ceems@example.org'],
  ['AD domain form', [H, 'CORP\\alice'], 'CORP\\alice'],
  [
    'Kubernetes service account',
    [H, 'system:serviceaccount:ns1:default'],
    'system:serviceaccount:ns1:default',
  ],
  ['one character', [H, 'a'], 'a'],
  ['exactly the limit', [H, 'a'.repeat(MAX_IDENTITY_BYTES)], 'a'.repeat(MAX_IDENTITY_BYTES)],
  ['upper case kept as sent', [H, 'Alice'], 'Alice'],
  // absent / empty
  ['no headers at all', [], 'absent'],
  ['only other headers', ['X-Forwarded-User', 'alice'], 'absent'],
  ['prefix of the name is another header', ['X-Grafana-User-Id', 'alice'], 'absent'],
  ['empty value', [H, ''], 'empty'],
  // repeated
  ['twice, equal values', [H, 'alice', H, 'alice'], 'duplicated'],
  ['twice, different values', [H, 'alice', H, 'bob'], 'duplicated'],
  ['twice, different case of the name', [H, 'alice', 'x-grafana-user', 'alice'], 'duplicated'],
  ['twice, one empty', [H, '', H, 'alice'], 'duplicated'],
  ['three times', [H, 'a', H, 'a', H, 'a'], 'duplicated'],
  // size
  ['one over the limit', [H, 'a'.repeat(MAX_IDENTITY_BYTES + 1)], 'too_long'],
  ['64 KiB', [H, 'a'.repeat(65536)], 'too_long'],
  // whitespace
  ['leading space', [H, ' alice'], 'whitespace'],
  ['trailing space', [H, 'alice '], 'whitespace'],
  ['trailing tab', [H, 'alice\t'], 'whitespace'],
  ['only spaces', [H, '   '], 'whitespace'],
  ['trailing CR LF', [H, 'alice\r\n'], 'whitespace'],
  ['no-break space (U+00A0)', [H, 'alice\u00a0'], 'whitespace'],
  // characters
  ['inner space', [H, 'alice bob'], 'invalid_character'],
  ['comma (a folded repeat)', [H, 'alice,bob'], 'invalid_character'],
  ['comma and space (a folded repeat)', [H, 'alice, admin'], 'invalid_character'],
  ['semicolon', [H, 'alice;admin'], 'invalid_character'],
  ['single quote (SQL)', [H, "alice' OR '1'='1"], 'invalid_character'],
  ['double quote', [H, 'a"b'], 'invalid_character'],
  ['slash', [H, 'a/b'], 'invalid_character'],
  ['percent (encoded form)', [H, 'a%6Cice'], 'invalid_character'],
  ['dollar', [H, 'host$'], 'invalid_character'],
  ['star', [H, '*'], 'invalid_character'],
  ['NUL', [H, 'alice\u0000'], 'invalid_character'],
  ['inner tab', [H, 'a\tb'], 'invalid_character'],
  ['DEL', [H, 'alice\u007f'], 'invalid_character'],
  ['escape sequence', [H, '\u001b[31malice'], 'invalid_character'],
  ['Latin-1 byte (UTF-8 é as Node reads it)', [H, 'jos\u00c3\u00a9'], 'invalid_character'],
  ['non-ASCII letter', [H, 'josé'], 'invalid_character'],
  ['Cyrillic look-alike', [H, 'аlice'], 'invalid_character'],
  ['angle brackets', [H, '<script>'], 'invalid_character'],
  ['equals and ampersand', [H, 'a=b&c'], 'invalid_character'],
];

describe('readIdentityHeader', () => {
  for (const [what, raw, expected] of CASES) {
    test(what, () => {
      const r = readIdentityHeader(raw, H);
      if (r.ok) {
        assert.equal(r.value, expected, `${what}: accepted ${JSON.stringify(r.value)}`);
      } else {
        assert.equal(r.failure, expected, `${what}: ${r.reason}`);
        assert.ok(r.reason.length > 0);
      }
    });
  }

  test('reasons say what is wrong, without echoing the value', () => {
    const reason = (raw: string[]) => {
      const r = readIdentityHeader(raw, H);
      assert.equal(r.ok, false);
      return r.ok ? '' : r.reason;
    };
    assert.equal(reason([]), 'header missing');
    assert.equal(reason([H, '']), 'empty value');
    assert.equal(reason([H, 'a', H, 'a']), 'header sent 2 times');
    assert.equal(reason([H, 'x'.repeat(300)]), 'value longer than 256 bytes');
    assert.equal(reason([H, ' a']), 'leading or trailing whitespace');
    assert.equal(
      reason([H, "bob' --"]),
      'character U+0027 at position 4 is not allowed in a user name (letters, digits and . _ - @ + \\ : only)',
    );
    assert.doesNotMatch(reason([H, 'secret-token;x']), /secret-token/);
  });

  test('an odd-length list (no value for the last name) does not crash', () => {
    assert.deepEqual(readIdentityHeader([H], H), {
      ok: false,
      failure: 'absent',
      reason: 'header missing',
    });
  });

  test('checkIdentity is the value check alone', () => {
    assert.deepEqual(checkIdentity('alice'), { ok: true, value: 'alice' });
    assert.equal(checkIdentity('').ok, false);
  });
});

describe('through a real HTTP server', () => {
  /** Sends raw header lines over a socket; returns what readIdentityHeader made of req.rawHeaders. */
  async function roundTrip(headers: [string, string][]) {
    const server = createServer((req, res) => {
      res.setHeader('Connection', 'close');
      res.end(JSON.stringify(readIdentityHeader(req.rawHeaders, H)));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const sock = connect(port, '127.0.0.1');
      const lines = headers.map(([k, v]) => `${k}: ${v}\r\n`).join('');
      sock.end(Buffer.from(`GET / HTTP/1.1\r\nHost: x\r\n${lines}\r\n`, 'latin1'));
      let out = '';
      for await (const chunk of sock) out += chunk;
      return JSON.parse(out.slice(out.indexOf('\r\n\r\n') + 4));
    } finally {
      server.close();
    }
  }

  test('a repeated header is seen, even with equal values', async () => {
    assert.equal(
      (
        await roundTrip([
          [H, 'alice'],
          [H, 'alice'],
        ])
      ).failure,
      'duplicated',
    );
    assert.equal(
      (
        await roundTrip([
          [H, 'alice'],
          ['x-grafana-user', 'bob'],
        ])
      ).failure,
      'duplicated',
    );
    assert.deepEqual(await roundTrip([[H, 'alice']]), { ok: true, value: 'alice' });
  });

  test("surrounding spaces are HTTP's optional whitespace: Node's parser drops them before we look", async () => {
    assert.deepEqual(await roundTrip([[H, '  alice  ']]), { ok: true, value: 'alice' });
    assert.equal((await roundTrip([[H, 'al ice']])).failure, 'invalid_character');
  });

  test('UTF-8 bytes arrive as Latin-1 characters and are refused', async () => {
    const r = await roundTrip([[H, Buffer.from('josé', 'utf8').toString('latin1')]]);
    assert.equal(r.failure, 'invalid_character');
  });
});
