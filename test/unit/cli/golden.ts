// Golden-file comparison: `UPDATE_GOLDEN=1` rewrites the expected files (review the diff before committing).

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FIXTURES } from './fake-api.js';

export function assertGolden(actual: string, name: string): void {
  const path = join(FIXTURES, name);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(path)) {
    if (process.env.UPDATE_GOLDEN !== '1')
      assert.fail(`golden file ${path} missing (run with UPDATE_GOLDEN=1)`);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
    return;
  }
  assert.equal(actual, readFileSync(path, 'utf8'), `output differs from ${path}`);
}
