import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClusterConfig } from '../../../../src/api/config.js';
import { clusterUpdaters, createUpdaters } from '../../../../src/api/updater/index.js';
import { createLogger } from '../../../../src/common/logger.js';

describe('updater registry', () => {
  it('resolves cluster updater ids in order and skips unknown ones with a warning', () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', format: 'json', write: (l) => lines.push(l) });
    const all = createUpdaters(
      [
        { id: 'tsdb-0', updater: 'tsdb', web: { url: 'http://127.0.0.1:9' }, extra_config: null },
        { id: 'tsdb-1', updater: 'tsdb', extra_config: { cutoff_duration: '5m' } },
      ],
      logger,
      '.',
    );
    const cluster: ClusterConfig = { id: 'c', manager: 'slurm', updaters: ['tsdb-1', 'nope', 'tsdb-0'] };
    const list = clusterUpdaters(cluster, all, logger);
    assert.deepEqual(
      list.map((u) => u.id),
      ['tsdb-1', 'tsdb-0'],
    );
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /"level":"WARN","msg":"Unknown updater id.*","updater":"nope"/);
  });

  it('rejects an invalid updater configuration at start-up', () => {
    assert.throws(
      () =>
        createUpdaters(
          [{ id: 'bad', updater: 'tsdb', extra_config: { query_max_series: 0 } }],
          createLogger({ level: 'silent' }),
          '.',
        ),
      /updater 'bad': extra_config.query_max_series/,
    );
  });
});
