import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FlagError, type FlagSpec, parseFlags, usage } from '../../../src/common/flags.js';

const specs: FlagSpec[] = [
  { name: 'collector.cpu', type: 'bool', default: true, help: 'cpu' },
  { name: 'collector.slurm', type: 'bool', default: false, help: 'slurm' },
  { name: 'web.listen-address', type: 'string', repeatable: true, default: [':9010'], help: 'addr' },
  { name: 'web.max-requests', type: 'int', default: '40', help: 'max' },
  { name: 'log.level', type: 'enum', values: ['debug', 'info'], default: 'info', help: 'lvl' },
  { name: 'web.config.file', type: 'string', default: '', env: 'TEST_WEB_CONFIG', help: 'cfg' },
  {
    name: 'collector.slurm.psi-metrics',
    type: 'bool',
    aliases: ['collector.slurm.psi.metrics'],
    help: 'psi',
  },
  { name: 'path.procfs', type: 'string', default: '/proc', hidden: true, help: 'procfs' },
  { name: 'collector.timeout', type: 'duration', default: '10s', help: 'timeout' },
  { name: 'collector.netdev.device-include', type: 'regex', default: '', help: 'include' },
];
const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseFlags(specs, argv, { env }).flags;

describe('kingpin-style flags', () => {
  it('applies defaults', () => {
    const f = parse([]);
    assert.equal(f.bool('collector.cpu'), true);
    assert.deepEqual(f.strings('web.listen-address'), [':9010']);
    assert.equal(f.number('web.max-requests'), 40);
    assert.equal(f.number('collector.timeout'), 10_000);
    assert.equal(f.regex('collector.netdev.device-include'), undefined);
    assert.equal(f.isSet('collector.cpu'), false);
  });
  it('accepts --x=v, --x v, --[no-]bool and --bool=false', () => {
    const f = parse([
      '--no-collector.cpu',
      '--collector.slurm=true',
      '--web.max-requests',
      '3',
      '--log.level=debug',
    ]);
    assert.equal(f.bool('collector.cpu'), false);
    assert.equal(f.bool('collector.slurm'), true);
    assert.equal(f.number('web.max-requests'), 3);
    assert.equal(f.string('log.level'), 'debug');
    assert.ok(f.isSet('collector.cpu'));
    assert.equal(parse(['--collector.cpu=false']).bool('collector.cpu'), false);
  });
  it('repeatable flags replace the default on first use', () => {
    assert.deepEqual(
      parse(['--web.listen-address=:1', '--web.listen-address', ':2']).strings('web.listen-address'),
      [':1', ':2'],
    );
  });
  it('takes env defaults, overridden by the command line', () => {
    assert.equal(parse([], { TEST_WEB_CONFIG: '/a' }).string('web.config.file'), '/a');
    assert.equal(parse(['--web.config.file=/b'], { TEST_WEB_CONFIG: '/a' }).string('web.config.file'), '/b');
  });
  it('accepts hidden deprecated aliases and reports their use', () => {
    const r = parseFlags(specs, ['--collector.slurm.psi.metrics'], { env: {} });
    assert.equal(r.flags.bool('collector.slurm.psi-metrics'), true);
    assert.deepEqual(r.flags.usedAliases, ['collector.slurm.psi.metrics']);
  });
  it('compiles regex flags unanchored, as Go does', () => {
    const re = parse(['--collector.netdev.device-include=^eth']).regex('collector.netdev.device-include')!;
    assert.ok(re.test('eth0'));
    assert.ok(!re.test('veth0'));
    assert.ok(
      parse(['--collector.netdev.device-include=eth'])
        .regex('collector.netdev.device-include')!
        .test('veth0'),
    );
  });
  const bad: [string[], RegExp][] = [
    [['--nope'], /unknown long flag '--nope'/],
    [['--no-web.max-requests'], /unknown long flag '--no-web.max-requests'/],
    [['--web.max-requests=x'], /invalid value 'x' for flag '--web.max-requests'/],
    [['--log.level=loud'], /invalid value 'loud' for flag '--log.level': must be one of 'debug', 'info'/],
    [['--collector.cpu=maybe'], /invalid value 'maybe' for flag '--collector.cpu'/],
    [['--web.max-requests'], /expected argument for flag '--web.max-requests'/],
    [['--collector.timeout=10'], /invalid value '10' for flag '--collector.timeout'/],
    [
      ['--collector.netdev.device-include=('],
      /invalid value '\(' for flag '--collector.netdev.device-include'/,
    ],
    [['stray'], /unexpected argument 'stray'/],
    [['-x'], /unknown short flag '-x'/],
  ];
  for (const [argv, re] of bad) {
    it(`rejects ${argv.join(' ')}`, () =>
      assert.throws(
        () => parse(argv),
        (e: Error) => e instanceof FlagError && re.test(e.message),
      ));
  }
  it('usage lists visible flags with defaults and env vars, not hidden ones', () => {
    const u = usage('prog', 'Desc.', specs);
    assert.match(u, /--\[no-\]collector\.cpu/);
    assert.match(u, /--web\.max-requests=INT\s+max \("40"\)/);
    assert.match(u, /\(\$TEST_WEB_CONFIG\)/);
    assert.doesNotMatch(u, /path\.procfs/);
    assert.doesNotMatch(u, /psi\.metrics/);
  });
});
