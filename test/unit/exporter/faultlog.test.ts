import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../../src/common/logger.js';
import { FaultLog } from '../../../src/exporter/faultlog.js';

function capture() {
  const records: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: 'debug',
    format: 'json',
    write: (l: string) => records.push(JSON.parse(l)),
  });
  const lines = () => records.map(({ time: _t, ...r }) => r);
  return { logger, lines };
}

describe('FaultLog', () => {
  it('logs a fault once per scrape for each unit, file and reason, however often it is met', () => {
    const { logger, lines } = capture();
    const faults = new FaultLog(logger, 'cannot read unit cgroup');
    const fifo = 'not a regular file (FIFO): /cg/job_1/cpu.stat';
    faults.nextScrape();
    assert.equal(faults.report('1', '/cg/job_1/cpu.stat', fifo), true);
    for (let i = 0; i < 1000; i++) assert.equal(faults.report('1', '/cg/job_1/cpu.stat', fifo), false);
    // another unit, another file or another reason is another fault
    assert.equal(faults.report('2', '/cg/job_2/cpu.stat', fifo), true);
    assert.equal(faults.report('1', '/cg/job_1/memory.current', 'EACCES'), true);
    assert.equal(faults.report('1', '/cg/job_1/cpu.stat', 'EIO: i/o error'), true);
    assert.deepEqual(lines(), [
      { level: 'ERROR', uuid: '1', file: '/cg/job_1/cpu.stat', err: fifo, msg: 'cannot read unit cgroup' },
      { level: 'ERROR', uuid: '2', file: '/cg/job_2/cpu.stat', err: fifo, msg: 'cannot read unit cgroup' },
      {
        level: 'ERROR',
        uuid: '1',
        file: '/cg/job_1/memory.current',
        err: 'EACCES',
        msg: 'cannot read unit cgroup',
      },
      {
        level: 'ERROR',
        uuid: '1',
        file: '/cg/job_1/cpu.stat',
        err: 'EIO: i/o error',
        msg: 'cannot read unit cgroup',
      },
    ]);
  });

  it('logs the same fault again in the next scrape and counts the repeats it left out at debug level', () => {
    const { logger, lines } = capture();
    const faults = new FaultLog(logger, 'cannot read unit cgroup');
    for (let scrape = 0; scrape < 3; scrape++) {
      faults.nextScrape();
      for (let i = 0; i < 5; i++) faults.report('1', '/f', 'EIO');
    }
    assert.deepEqual(
      lines().map((l) => `${l.level} ${l.msg}${l.repeats === undefined ? '' : ` ${l.repeats}`}`),
      [
        'ERROR cannot read unit cgroup',
        'DEBUG cannot read unit cgroup: repeats not logged 4',
        'ERROR cannot read unit cgroup',
        'DEBUG cannot read unit cgroup: repeats not logged 4',
        'ERROR cannot read unit cgroup',
      ],
    );
  });
});
