import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../../src/common/logger.js';

function capture(level: string, format: string) {
  const lines: string[] = [];
  return { lines, logger: createLogger({ level, format, write: (l) => lines.push(l) }) };
}

const TIME = /^time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /;

describe('logger', () => {
  it('logfmt: time, level, msg, then fields; values quoted when they need it; errors as their message', () => {
    const { lines, logger } = capture('info', 'logfmt');
    logger.info({ address: '127.0.0.1:9010', tls: false }, 'Listening on');
    logger.warn(
      { err: new Error('open /x: permission denied'), file: '/x', empty: '', n: 3, gone: undefined },
      'cannot read',
    );
    logger.error({ labels: { a: 'b' }, text: 'say "hi"', accent: 'é' }, 'odd values');
    assert.equal(lines.length, 3);
    for (const l of lines) assert.match(l, TIME);
    assert.equal(
      lines[0]!.replace(TIME, ''),
      'level=INFO msg="Listening on" address=127.0.0.1:9010 tls=false\n',
    );
    assert.equal(
      lines[1]!.replace(TIME, ''),
      'level=WARN msg="cannot read" err="open /x: permission denied" file=/x empty="" n=3\n',
    );
    assert.equal(
      lines[2]!.replace(TIME, ''),
      'level=ERROR msg="odd values" labels="{\\"a\\":\\"b\\"}" text="say \\"hi\\"" accent="é"\n',
    );
  });

  it('json: promslog record shape with string levels and ISO times', () => {
    const { lines, logger } = capture('debug', 'json');
    logger.debug({ err: new Error('boom'), uuid: '1' }, 'cannot read unit cgroup');
    logger.info('started');
    const [a, b] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(Object.keys(a!), ['time', 'level', 'msg', 'err', 'uuid']);
    assert.deepEqual(
      { ...a, time: undefined },
      {
        time: undefined,
        level: 'DEBUG',
        msg: 'cannot read unit cgroup',
        err: 'boom',
        uuid: '1',
      },
    );
    assert.ok(!Number.isNaN(Date.parse(a!.time as string)));
    assert.deepEqual({ ...b, time: undefined }, { time: undefined, level: 'INFO', msg: 'started' });
    assert.ok(lines.every((l) => l.endsWith('}\n') && !l.slice(0, -1).includes('\n')));
  });

  it('levels below the configured one and everything when silent are dropped', () => {
    const warn = capture('warn', 'logfmt');
    warn.logger.debug('d');
    warn.logger.info('i');
    warn.logger.warn('w');
    warn.logger.error('e');
    assert.deepEqual(
      warn.lines.map((l) => /level=(\w+)/.exec(l)![1]),
      ['WARN', 'ERROR'],
    );
    const silent = capture('silent', 'logfmt');
    silent.logger.error('e');
    silent.logger.child({ a: 1 }).error('e');
    assert.deepEqual(silent.lines, []);
    assert.throws(() => createLogger({ level: 'verbose' }), /unknown log level "verbose"/);
  });

  it('child loggers add their fields before the record’s own, which win on a clash', () => {
    const { lines, logger } = capture('info', 'json');
    const child = logger.child({ collector: 'slurm' }).child({ subcollector: 'perf' });
    child.info({ uuid: '7', subcollector: 'override' }, 'x');
    logger.info('root');
    const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.deepEqual(Object.keys(rec), ['time', 'level', 'msg', 'collector', 'subcollector', 'uuid']);
    assert.equal(rec.subcollector, 'override');
    assert.deepEqual(Object.keys(JSON.parse(lines[1]!)), ['time', 'level', 'msg']);
  });
});
