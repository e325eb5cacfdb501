// --help-long and --help-man, which every --help advertises (kingpin's help flag text): the parser's
// result, kingpin's man page shape, and every server binary answering both (the man page set by groff
// without a warning, every flag of --help findable in the rendered page as typed).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type FlagSpec, helpText, manPage, parseFlags, usage } from '../../src/common/flags.js';
import { runCommand, runProgram } from '../helpers/process.js';

const specs: FlagSpec[] = [
  { name: 'web.listen-address', type: 'string', repeatable: true, default: [':9010'], help: 'Addresses.' },
  { name: 'web.config.file', type: 'string', default: '', help: 'Web config.' },
  { name: 'config.file', type: 'string', help: 'Config.' },
  { name: 'log.level', type: 'enum', values: ['debug', 'info'], default: 'info', help: 'Level.' },
  { name: 'collector.timeout', type: 'duration', default: '10s', help: 'Timeout.' },
  { name: 'collector.cpu', type: 'bool', default: true, help: '.cpu \\d collector ≥ 1' },
  { name: 'path.procfs', type: 'string', default: '/proc', hidden: true, help: 'procfs' },
];

describe('--help-long and --help-man', () => {
  it('are help requests of their own kind; --help wins, then the first of them', () => {
    const parse = (argv: string[]) => {
      const r = parseFlags(specs, argv, { env: {} });
      return [r.help, r.helpFormat];
    };
    assert.deepEqual(parse([]), [false, 'usage']);
    assert.deepEqual(parse(['--help']), [true, 'usage']);
    assert.deepEqual(parse(['--help-long']), [true, 'long']);
    assert.deepEqual(parse(['--help-man']), [true, 'man']);
    assert.deepEqual(parse(['--help-man', '--help-long']), [true, 'man']);
    assert.deepEqual(parse(['--help-long', '-h']), [true, 'usage']);
  });

  it('--help-long prints the usage (kingpin adds to it only for programs with commands)', () => {
    assert.equal(
      helpText('long', 'prog', 'Does things.', '1.2.3', specs),
      usage('prog', 'Does things.', specs),
    );
  });

  it('--help-man prints kingpin ManPageTemplate roff: visible flags in order, placeholders from defaults', () => {
    assert.equal(
      manPage('prog', 'Does things.', '1.2.3', specs),
      [
        '.TH prog 1 1.2.3 ""',
        '.SH "NAME"',
        'prog',
        '.SH "SYNOPSIS"',
        '.TP',
        '\\fBprog [<flags>]\\fR',
        '.SH "DESCRIPTION"',
        'Does things.',
        '.SH "OPTIONS"',
        '.TP',
        '\\fB\\%\\-h, \\%\\-\\-help\\fR',
        'Show context\\-sensitive help (also try \\-\\-help\\-long and \\-\\-help\\-man).',
        '.TP',
        '\\fB\\%\\-\\-web.listen\\-address=:9010\\fR',
        'Addresses.',
        '.TP',
        '\\fB\\%\\-\\-web.config.file=""\\fR',
        'Web config.',
        '.TP',
        '\\fB\\%\\-\\-config.file=CONFIG.FILE\\fR',
        'Config.',
        '.TP',
        '\\fB\\%\\-\\-log.level=info\\fR',
        'Level.',
        '.TP',
        '\\fB\\%\\-\\-collector.timeout=10s\\fR',
        'Timeout.',
        '.TP',
        '\\fB\\%\\-\\-collector.cpu\\fR',
        // roff control characters of the help text are neutralised, dashes are ASCII minus signs
        '\\&.cpu \\ed collector \\[u2265] 1',
        '.TP',
        '\\fB\\%\\-\\-version\\fR',
        'Show application version.',
        '',
      ].join('\n'),
    );
  });
});

describe('every server binary answers the help flags its --help advertises', { timeout: 120_000 }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ceems-help-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  const programs = [
    'ceems_exporter',
    'ceems_api_server',
    'ceems_lb',
    'redfish_proxy',
    'ceems_k8s_admission_controller',
  ];

  for (const program of programs)
    it(program, async () => {
      const help = await runProgram(program, ['--help']);
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, /also try --help-long and --help-man/);

      const long = await runProgram(program, ['--help-long']);
      assert.equal(long.code, 0, long.stderr);
      assert.equal(long.stdout, help.stdout);

      const man = await runProgram(program, ['--help-man']);
      assert.equal(man.code, 0, man.stderr);
      assert.match(man.stdout, new RegExp(`^\\.TH ${program} 1 \\S+ ""\\n\\.SH "NAME"\\n${program}\\n`));
      assert.match(man.stdout, /\n\.TP\n\\fB\\%\\-h, \\%\\-\\-help\\fR\n/);
      const file = join(tmp, `${program}.1`);
      writeFileSync(file, man.stdout);
      // -ww: every groff warning but -Wbreak (long flag names that cannot be justified); -z: check only
      const set = await runCommand('groff', ['-man', '-Tutf8', '-ww', '-Wbreak', '-z', file]);
      assert.equal(set.code, 0, set.stderr);
      assert.equal(set.stderr, '', `groff warnings for ${program}:\n${set.stderr}`);
      // -P -cbou: plain text, no overstriking for bold and underline
      const rendered = await runCommand('groff', ['-man', '-Tutf8', '-P', '-cbou', file]);
      for (const line of help.stdout.matchAll(/^ {2}(?:-h, )? *(--\S+)/gm)) {
        const flag = line[1]!.replace('[no-]', '').replace(/=.*/, '');
        assert.ok(rendered.stdout.includes(flag), `${program}: ${flag} missing from the man page`);
      }
    });
});
