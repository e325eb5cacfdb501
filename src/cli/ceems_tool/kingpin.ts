// kingpin's boolean flag syntax, which the original ceems_tool accepts, on top of commander's parser.

import type { Command } from 'commander';
import { CliError } from '../http.js';

const BOOL_VALUES: Record<string, boolean> = {
  true: true,
  t: true,
  '1': true,
  false: false,
  f: false,
  '0': false,
};

/**
 * kingpin's boolean syntax, which the original accepts: `--flag=true|false` (any case, or t/f/1/0) becomes
 * `--flag` or `--no-flag` (dropped when the flag has no negation: false is then its default).
 */
export function kingpinBooleans(root: Command, argv: string[]): string[] {
  const flags = new Map<string, boolean>(); // boolean long flag → has a --no- form
  const visit = (c: Command) => {
    for (const opt of c.options) {
      if (opt.long && opt.negate) flags.set(opt.long.replace(/^--no-/, '--'), true);
      else if (opt.long && opt.isBoolean() && !flags.has(opt.long)) flags.set(opt.long, false);
    }
    c.commands.forEach(visit);
  };
  visit(root);
  return argv.flatMap((arg) => {
    const m = /^(--[^=]+)=(.*)$/.exec(arg);
    if (!m || !flags.has(m[1]!)) return [arg];
    const value = BOOL_VALUES[m[2]!.toLowerCase()];
    if (value === undefined) throw new CliError(`invalid ${m[1]} '${m[2]}': expected true or false`);
    if (value) return [m[1]!];
    return flags.get(m[1]!) ? [`--no-${m[1]!.slice(2)}`] : [];
  });
}
