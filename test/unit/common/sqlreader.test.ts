// The SQL both backends run (issue 21): `?` numbered for PostgreSQL only where it is a placeholder, and
// the SQLite reader's statement cache and reopening.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openDatabase } from '../../../src/common/sqlite.js';
import { POSTGRES_DIALECT, pgPlaceholders, sqliteReader } from '../../../src/common/sqlreader.js';

describe('pgPlaceholders', () => {
  test('numbers each placeholder in order', () => {
    assert.equal(
      pgPlaceholders('SELECT a FROM t WHERE b = ? AND c IN (?, ?) LIMIT ?'),
      'SELECT a FROM t WHERE b = $1 AND c IN ($2, $3) LIMIT $4',
    );
    assert.equal(pgPlaceholders('SELECT 1'), 'SELECT 1');
  });

  test('leaves `?` in string literals, quoted identifiers, comments and dollar quotes', () => {
    assert.equal(pgPlaceholders("SELECT '?', ? FROM t"), "SELECT '?', $1 FROM t");
    // a doubled quote is an escaped quote inside the literal, not its end
    assert.equal(pgPlaceholders("SELECT 'it''s ?' || ?"), "SELECT 'it''s ?' || $1");
    assert.equal(
      pgPlaceholders('SELECT "odd?col" FROM t WHERE x = ?'),
      'SELECT "odd?col" FROM t WHERE x = $1',
    );
    assert.equal(pgPlaceholders('SELECT ? -- why?\n, ?'), 'SELECT $1 -- why?\n, $2');
    assert.equal(pgPlaceholders('SELECT /* a ? b */ ?'), 'SELECT /* a ? b */ $1');
    assert.equal(pgPlaceholders('SELECT $$ ? $$, $q$?$q$, ?'), 'SELECT $$ ? $$, $q$?$q$, $1');
    // `$1` already in the text is not a dollar quote
    assert.equal(pgPlaceholders("SELECT ? || '$'"), "SELECT $1 || '$'");
  });

  test('an unterminated literal or comment runs to the end (PostgreSQL then reports it)', () => {
    assert.equal(pgPlaceholders("SELECT ? WHERE a = 'x?"), "SELECT $1 WHERE a = 'x?");
    assert.equal(pgPlaceholders('SELECT ? /* ?'), 'SELECT $1 /* ?');
  });

  test('the ESCAPE literal of the web view (a lone backslash) does not hide later placeholders', () => {
    assert.equal(
      pgPlaceholders("uuid ILIKE ? ESCAPE '\\' OR name ILIKE ? ESCAPE '\\'"),
      "uuid ILIKE $1 ESCAPE '\\' OR name ILIKE $2 ESCAPE '\\'",
    );
  });
});

describe('dialects', () => {
  test('JSON keys spliced into SQL must be constant names', () => {
    assert.throws(() => POSTGRES_DIALECT.jsonNumber('tags', "x' OR 1=1"), /not a constant name/);
    assert.equal(POSTGRES_DIALECT.jsonNumber('tags', 'total'), "((tags)::json ->> 'total')::float8");
  });

  test('a per-key join binds the key, never splices it', () => {
    const [sql, param] = POSTGRES_DIALECT.jsonKeyJoin('u.m', 'j0', "a'b");
    assert.ok(!sql.includes("a'b"), sql);
    assert.equal(param, "a'b");
  });
});

describe('sqliteReader', () => {
  test('reads rows as objects and arrays; reopen makes the next read use a new connection', async () => {
    const opened: ReturnType<typeof openDatabase>[] = [];
    const reader = sqliteReader(() => {
      const db = openDatabase(':memory:');
      db.exec(`CREATE TABLE t (a integer, b text); INSERT INTO t VALUES (${opened.length + 1}, 'x')`);
      opened.push(db);
      return db;
    });
    assert.deepEqual({ ...(await reader.get('SELECT a, b FROM t WHERE b = ?', ['x'])) }, { a: 1, b: 'x' });
    assert.deepEqual(
      await reader.withRows('SELECT a, b FROM t', [], (columns, rows) => ({ columns, rows: [...rows] })),
      { columns: ['a', 'b'], rows: [[1, 'x']] },
    );
    assert.equal(opened.length, 1);
    reader.reopen();
    assert.equal((await reader.all<{ a: number }>('SELECT a FROM t'))[0]!.a, 2);
    assert.equal(opened.length, 2);
    assert.equal(opened[0]!.isOpen, false);
    await reader.close();
    assert.equal(opened[1]!.isOpen, false);
  });
});
