// bench/lb.ts finds the testbed wherever the shared folder is: the environment first (as scripts/test.sh
// sets it), then `shared/testbed` next to the checkout or next to any folder above it.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { findTestbed } from '../../../bench/lb.js';
import { tempDir } from '../../fixtures/lb/setup.js';

function makeTestbed(dir: string): string {
  mkdirSync(join(dir, 'prometheus'), { recursive: true });
  writeFileSync(join(dir, 'prometheus', 'up.sh'), '#!/bin/sh\n');
  return dir;
}

describe('bench/lb.ts testbed discovery', () => {
  const tmp = tempDir('ceems-lb-testbed-');
  after(() => tmp.cleanup());
  const checkout = join(tmp.dir, 'work', 'trees', 'feature', 'main');
  mkdirSync(checkout, { recursive: true });

  it('prefers CEEMS_TESTBED_DIR, then CEEMS_SHARED_DIR/testbed', () => {
    const explicit = makeTestbed(join(tmp.dir, 'elsewhere', 'tb'));
    const shared = makeTestbed(join(tmp.dir, 'shared-copy', 'testbed'));
    assert.equal(findTestbed(checkout, { CEEMS_TESTBED_DIR: explicit, CEEMS_SHARED_DIR: shared }), explicit);
    assert.equal(findTestbed(checkout, { CEEMS_SHARED_DIR: join(tmp.dir, 'shared-copy') }), shared);
  });

  it('refuses an environment that names no testbed instead of guessing another one', () => {
    assert.throws(
      () => findTestbed(checkout, { CEEMS_TESTBED_DIR: join(tmp.dir, 'nothing') }),
      /no testbed at .*nothing/,
    );
  });

  it('finds shared/testbed next to the checkout or next to a folder above a nested worktree', () => {
    assert.throws(() => findTestbed(checkout, {}), /testbed not found .* set CEEMS_TESTBED_DIR/);
    const high = makeTestbed(join(tmp.dir, 'work', 'shared', 'testbed'));
    assert.equal(findTestbed(checkout, {}), high);
    const sibling = makeTestbed(join(tmp.dir, 'work', 'trees', 'feature', 'shared', 'testbed'));
    assert.equal(findTestbed(checkout, {}), sibling, 'the nearest one wins');
  });
});
