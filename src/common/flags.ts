// Command-line parsing with kingpin's syntax, shared by every server binary of the stack:
// `--name=value` / `--name value`, `--[no-]bool`, `--bool=true|false`, repeatable flags,
// env-var defaults, hidden flags and hidden deprecated aliases. Commander cannot express
// `--no-` for dotted names together with `--bool=false`, so this small parser is ours.

import { parseDuration } from './duration.js';

export type FlagType = 'bool' | 'string' | 'int' | 'float' | 'enum' | 'duration' | 'regex';

export interface FlagSpec {
  readonly name: string;
  readonly help: string;
  readonly type: FlagType;
  /** Default as it would be typed on the command line (string), or boolean for bool flags. */
  readonly default?: string | boolean | readonly string[];
  readonly repeatable?: boolean;
  readonly env?: string;
  readonly hidden?: boolean;
  readonly values?: readonly string[];
  /** Hidden deprecated names that behave exactly like this flag. */
  readonly aliases?: readonly string[];
  readonly placeholder?: string;
}

export type FlagValue = boolean | string | number | RegExp | undefined;

export class FlagError extends Error {}

export class ParsedFlags {
  constructor(
    private readonly values: Map<string, FlagValue[]>,
    /** Flags given on the command line (by main name), for "explicitly set" semantics. */
    readonly explicit: ReadonlySet<string>,
    /** Deprecated aliases that were used, for a warning. */
    readonly usedAliases: readonly string[],
  ) {}

  private one(name: string): FlagValue {
    const v = this.values.get(name);
    if (!v) throw new Error(`flag --${name} is not defined`);
    return v[v.length - 1];
  }
  bool(name: string): boolean {
    return this.one(name) === true;
  }
  string(name: string): string {
    const v = this.one(name);
    return v === undefined ? '' : String(v);
  }
  number(name: string): number {
    return this.one(name) as number;
  }
  regex(name: string): RegExp | undefined {
    return this.one(name) as RegExp | undefined;
  }
  strings(name: string): string[] {
    const v = this.values.get(name);
    if (!v) throw new Error(`flag --${name} is not defined`);
    return v.filter((x) => x !== undefined).map(String);
  }
  isSet(name: string): boolean {
    return this.explicit.has(name);
  }
}

function convert(spec: FlagSpec, raw: string, given: string): FlagValue {
  const bad = (why: string) => new FlagError(`invalid value '${raw}' for flag '--${given}': ${why}`);
  switch (spec.type) {
    case 'bool':
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw bad('expected true or false');
    case 'int': {
      if (!/^[+-]?\d+$/.test(raw)) throw bad('expected an integer');
      return Number(raw);
    }
    case 'float': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw bad('expected a number');
      return n;
    }
    case 'enum':
      if (!spec.values?.includes(raw))
        throw bad(`must be one of ${spec.values?.map((v) => `'${v}'`).join(', ')}`);
      return raw;
    case 'duration':
      try {
        return parseDuration(raw);
      } catch (e) {
        throw bad((e as Error).message);
      }
    case 'regex':
      if (raw === '') return undefined;
      try {
        return new RegExp(raw); // unanchored, like Go's regexp.MustCompile in kingpin's Regexp()
      } catch (e) {
        throw bad((e as Error).message);
      }
    default:
      return raw;
  }
}

function defaults(spec: FlagSpec, env: NodeJS.ProcessEnv): FlagValue[] {
  const fromEnv = spec.env ? env[spec.env] : undefined;
  if (fromEnv !== undefined && fromEnv !== '') {
    return spec.repeatable
      ? fromEnv.split(',').map((v) => convert(spec, v, spec.name))
      : [convert(spec, fromEnv, spec.name)];
  }
  const d = spec.default;
  if (d === undefined) return spec.type === 'bool' ? [false] : spec.repeatable ? [] : [undefined];
  if (typeof d === 'boolean') return [d];
  if (Array.isArray(d)) return d.map((v) => convert(spec, v, spec.name));
  return [convert(spec, d as string, spec.name)];
}

/** What a help flag asks for: `--help` (usage), `--help-long` (kingpin's long help), `--help-man` (roff). */
export type HelpFormat = 'usage' | 'long' | 'man';

export interface ParseResult {
  flags: ParsedFlags;
  positional: string[];
  /** True for any of --help, --help-long, --help-man; `helpFormat` says which. */
  help: boolean;
  helpFormat: HelpFormat;
  version: boolean;
}

export function parseFlags(
  specs: readonly FlagSpec[],
  argv: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; allowPositional?: boolean } = {},
): ParseResult {
  const env = opts.env ?? process.env;
  const byName = new Map<string, FlagSpec>();
  const aliasOf = new Map<string, string>();
  for (const s of specs) {
    if (byName.has(s.name)) throw new Error(`flag --${s.name} defined twice`);
    byName.set(s.name, s);
    for (const a of s.aliases ?? []) aliasOf.set(a, s.name);
  }
  const values = new Map<string, FlagValue[]>();
  for (const s of specs) values.set(s.name, defaults(s, env));
  const explicit = new Set<string>();
  const usedAliases: string[] = [];
  const positional: string[] = [];
  let help = false;
  let helpFormat: HelpFormat | undefined;
  let version = false;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '-h' || arg === '--help') {
      help = true;
      continue;
    }
    // kingpin: --help wins over the hidden --help-long/--help-man, and of those the first given runs.
    if (arg === '--help-long' || arg === '--help-man') {
      helpFormat ??= arg === '--help-man' ? 'man' : 'long';
      continue;
    }
    if (arg === '--version') {
      version = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      if (arg.startsWith('-') && arg.length > 1) throw new FlagError(`unknown short flag '${arg}'`);
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const given = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    let inline: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    let negated = false;
    let name = aliasOf.get(given) ?? given;
    let spec = byName.get(name);
    if (!spec && given.startsWith('no-')) {
      const base = given.slice(3);
      name = aliasOf.get(base) ?? base;
      spec = byName.get(name);
      if (spec?.type === 'bool') negated = true;
      else spec = undefined;
    }
    if (!spec) throw new FlagError(`unknown long flag '--${given}'`);
    if (aliasOf.has(negated ? given.slice(3) : given)) usedAliases.push(given);
    let value: FlagValue;
    if (spec.type === 'bool') {
      if (negated && inline !== undefined) throw new FlagError(`flag '--${given}' does not take a value`);
      value = inline === undefined ? !negated : convert(spec, inline, given);
    } else {
      if (inline === undefined) {
        if (i + 1 >= argv.length) throw new FlagError(`expected argument for flag '--${given}'`);
        inline = argv[++i]!;
      }
      value = convert(spec, inline, given);
    }
    if (spec.repeatable && !explicit.has(name)) values.set(name, []);
    if (spec.repeatable) values.get(name)!.push(value);
    else values.set(name, [value]);
    explicit.add(name);
  }
  if (positional.length > 0 && !opts.allowPositional) {
    throw new FlagError(`unexpected argument '${positional[0]}'`);
  }
  return {
    flags: new ParsedFlags(values, explicit, usedAliases),
    positional,
    help: help || helpFormat !== undefined,
    helpFormat: help ? 'usage' : (helpFormat ?? 'usage'),
    version,
  };
}

const HELP_FLAG_HELP = 'Show context-sensitive help (also try --help-long and --help-man).';
const VERSION_FLAG_HELP = 'Show application version.';

/** kingpin-style usage text of the visible flags. */
export function usage(program: string, description: string, specs: readonly FlagSpec[]): string {
  const rows: [string, string][] = [['-h, --[no-]help', HELP_FLAG_HELP]];
  for (const s of specs) {
    if (s.hidden) continue;
    const left =
      s.type === 'bool'
        ? `    --[no-]${s.name}`
        : `    --${s.name}=${s.placeholder ?? (s.type === 'enum' ? s.values?.join('|') : s.type.toUpperCase())}${s.repeatable ? ' ...' : ''}`;
    let right = s.help;
    const d = s.default;
    if (d !== undefined && d !== '' && !(Array.isArray(d) && d.length === 0) && s.type !== 'bool') {
      right += ` ("${Array.isArray(d) ? d.join('", "') : String(d)}")`;
    }
    if (s.env) right += ` ($${s.env})`;
    rows.push([left, right]);
  }
  rows.push(['    --[no-]version', VERSION_FLAG_HELP]);
  const width = Math.max(...rows.map((r) => r[0].length)) + 2;
  return `usage: ${program} [<flags>]\n\n${description}\n\nFlags:\n${rows
    .map(([l, r]) => `  ${l.padEnd(width)}${r}`)
    .join('\n')}\n`;
}

/**
 * kingpin's FormatPlaceHolder: the placeholder, else the first default (quoted for single string flags,
 * `...` after it when there are more), else the NAME in capitals.
 */
function placeholderOf(s: FlagSpec): string {
  if (s.placeholder) return s.placeholder;
  const d = s.default;
  const list = d === undefined || typeof d === 'boolean' ? [] : Array.isArray(d) ? d : [d as string];
  if (list.length === 0) return s.name.toUpperCase();
  const first = s.type === 'string' && !s.repeatable ? JSON.stringify(list[0]) : list[0]!;
  return list.length > 1 ? `${first}...` : first;
}

/**
 * Text set in roff as typed: backslashes escaped, `-` as `\\-` (a plain `-` is a hyphen that UTF-8 man
 * renders as U+2010, so flags copied from the page would not work), non-ASCII characters as `\\[uXXXX]`,
 * a leading control character neutralised.
 */
function roff(text: string): string {
  return (
    text
      .replace(/\\/g, '\\e')
      .replace(/-/g, '\\-')
      // groff reads bytes (Latin-1): other characters by their Unicode names
      .replace(
        /[^\x00-\x7f]/gu,
        (c) => `\\[u${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}]`,
      )
      .split('\n')
      .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
      .join('\n')
  );
}

/**
 * kingpin's `--help-man` output (its ManPageTemplate) for a program without commands: NAME, SYNOPSIS,
 * DESCRIPTION and one `.TP` entry per visible flag (`-h, --help` first, `--version` last, as kingpin orders them).
 */
export function manPage(
  program: string,
  description: string,
  version: string,
  specs: readonly FlagSpec[],
): string {
  // `\\%`: groff must not hyphenate flag names (the rendered page would split them where none is typed)
  const flag = (text: string) =>
    text
      .split(' ')
      .map((word) => `\\%${roff(word)}`)
      .join(' ');
  const entry = (left: string, help: string) => `.TP\n\\fB${flag(left)}\\fR\n${roff(help)}\n`;
  const flags = specs
    .filter((s) => !s.hidden)
    .map((s) => entry(s.type === 'bool' ? `--${s.name}` : `--${s.name}=${placeholderOf(s)}`, s.help));
  return [
    `.TH ${program} 1 ${version} ""\n`,
    '.SH "NAME"\n',
    `${roff(program)}\n`,
    '.SH "SYNOPSIS"\n',
    '.TP\n',
    `\\fB${roff(program)} [<flags>]\\fR\n`,
    '.SH "DESCRIPTION"\n',
    `${roff(description)}\n`,
    '.SH "OPTIONS"\n',
    entry('-h, --help', HELP_FLAG_HELP),
    ...flags,
    entry('--version', VERSION_FLAG_HELP),
  ].join('');
}

/**
 * The text a help flag prints: `--help` and `--help-long` give the same usage (kingpin's long help differs
 * only for programs with commands), `--help-man` the man page.
 */
export function helpText(
  format: HelpFormat,
  program: string,
  description: string,
  version: string,
  specs: readonly FlagSpec[],
): string {
  return format === 'man'
    ? manPage(program, description, version, specs)
    : usage(program, description, specs);
}
