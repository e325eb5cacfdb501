// `npm run bench` runs every benchmark module of bench/ (each exports `run(small: boolean)` and prints its
// own figures with ratios against a baseline measured in the same run). `--small` is the CI smoke mode:
// tiny inputs, no thresholds asserted. `--only <name>` runs one module.

import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const small = args.includes('--small');
const onlyIdx = args.indexOf('--only');
const only = onlyIdx >= 0 ? args[onlyIdx + 1] : undefined;

const dir = import.meta.dirname;
const modules = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .map((f) => basename(f, '.ts'))
  .filter((name) => only === undefined || name === only)
  .sort();
if (modules.length === 0) {
  console.error(only ? `no benchmark named '${only}' in bench/` : 'no benchmarks in bench/');
  process.exit(1);
}
let failed = 0;
for (const name of modules) {
  console.log(`\n=== ${name}${small ? ' (small)' : ''}`);
  const started = performance.now();
  try {
    const mod = (await import(pathToFileURL(join(dir, `${name}.ts`)).href)) as {
      run(small: boolean): Promise<void> | void;
    };
    await mod.run(small);
    console.log(`--- ${name} done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } catch (e) {
    failed++;
    console.error(`--- ${name} FAILED: ${(e as Error).stack ?? e}`);
  }
}
process.exit(failed > 0 ? 1 : 0);
