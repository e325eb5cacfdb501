// Shared set-up of the node collector tests: a context on the fixture tree, a mutable copy of it, and
// one update rendered as exposition text.

import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { encode } from '../../../../src/common/exposition.js';
import { parseFlags } from '../../../../src/common/flags.js';
import { createLogger } from '../../../../src/common/logger.js';
import type { Collector, CollectorContext, CollectorDefinition } from '../../../../src/exporter/collector.js';
import { FamilySet } from '../../../../src/exporter/collector.js';
import { ROOT } from '../../../helpers/process.js';

export const FIXTURE = resolve(ROOT, 'test/fixtures/node');

export interface TestContext extends CollectorContext {
  /** Log records written so far (JSON records). */
  readonly logs: { level: string; msg: string; [k: string]: unknown }[];
}

/** Context for one collector on `root` (default: the fixture tree) with the collector's own flags. */
export function context(def: CollectorDefinition, argv: string[] = [], root = FIXTURE): TestContext {
  const logs: TestContext['logs'] = [];
  const logger = createLogger({
    level: 'debug',
    format: 'json',
    write: (l: string) => logs.push(JSON.parse(l)),
  });
  return {
    hostname: 'node1',
    procfs: join(root, 'proc'),
    sysfs: join(root, 'sys'),
    cgroupfs: join(root, 'sys/fs/cgroup'),
    flags: parseFlags(def.flags, argv, { env: {} }).flags,
    logger,
    logs,
  };
}

/** Runs one update and renders what it emitted. */
export async function collect(c: Collector): Promise<string> {
  const set = new FamilySet();
  await c.update(set, new AbortController().signal);
  if (set.duplicates.length > 0) throw new Error(`duplicate series: ${set.duplicates.join(', ')}`);
  return encode([...set.families.values()]);
}

/** Lines of `text` for the metric `name` (its HELP, TYPE and samples). */
export function family(text: string, name: string): string[] {
  return text
    .split('\n')
    .filter((l) =>
      [`${name}{`, `${name} `, `# HELP ${name} `, `# TYPE ${name} `].some((p) => l.startsWith(p)),
    );
}

/** Copy of the fixture tree (symlinks kept as they are) for tests that mutate it; removed by `cleanup`. */
export function copyFixture(): { root: string; cleanup(): void } {
  const root = mkdtempSync(join(tmpdir(), 'ceems-node-'));
  cpSync(FIXTURE, root, { recursive: true, verbatimSymlinks: true });
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** A fresh tree with the given files (`proc/meminfo` → content); removed by `cleanup`. */
export function writeTree(files: Record<string, string>): { root: string; cleanup(): void } {
  const root = mkdtempSync(join(tmpdir(), 'ceems-node-'));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** A read function that fails like the kernel would for the files selected by `match`. */
export function failingRead(
  read: (path: string) => string,
  match: (path: string) => boolean,
  code: 'ENOENT' | 'EACCES',
): (path: string) => string {
  return (path) => {
    if (match(path)) throw Object.assign(new Error(`${code}: open '${path}'`), { code });
    return read(path);
  };
}
