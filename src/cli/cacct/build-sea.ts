// Builds cacct as one native executable (Node.js single executable application), so that it can be
// installed setgid to the group that may read the config file (cli.md §1.1: Linux ignores setgid on
// scripts). Usage: node --import tsx src/cli/cacct/build-sea.ts <output file>
//
// Steps: esbuild bundles the sources into one CommonJS file, `node --experimental-sea-config` turns it
// into a preparation blob, and postject injects the blob into a copy of the running node binary.
// Under setgid, Node ignores NODE_OPTIONS and other NODE_* variables (secure-execution mode), and
// os.userInfo() still reports the real (calling) user.

import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const HERE = dirname(fileURLToPath(import.meta.url));
// Fixed sentinel of Node's SEA fuse (documented in the Node.js "Single executable applications" guide).
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

export async function buildCacctExecutable(output: string): Promise<void> {
  const esbuild = require('esbuild') as typeof import('esbuild');
  const work = mkdtempSync(join(tmpdir(), 'cacct-sea-'));
  try {
    const bundle = join(work, 'cacct.cjs');
    // sources (.ts) when run with tsx, compiled .js when run from dist/
    const entry = ['sea-entry.ts', 'sea-entry.js']
      .map((f) => join(HERE, f))
      .find((f) => {
        try {
          require.resolve(f);
          return true;
        } catch {
          return false;
        }
      });
    if (!entry) throw new Error(`sea-entry not found next to ${HERE}`);
    await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      outfile: bundle,
      logLevel: 'error',
    });
    const blob = join(work, 'cacct.blob');
    const seaConfig = join(work, 'sea-config.json');
    writeFileSync(
      seaConfig,
      JSON.stringify({
        main: bundle,
        output: blob,
        disableExperimentalSEAWarning: true,
        useCodeCache: false,
      }),
    );
    execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: 'pipe' });
    const out = resolve(output);
    copyFileSync(process.execPath, out);
    chmodSync(out, 0o755);
    const postject = require.resolve('postject/dist/cli.js');
    execFileSync(process.execPath, [postject, out, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], {
      stdio: 'pipe',
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const output = process.argv[2];
  if (!output) {
    process.stderr.write('usage: node --import tsx src/cli/cacct/build-sea.ts <output file>\n');
    process.exitCode = 2;
  } else {
    buildCacctExecutable(output).then(
      () => process.stderr.write(`cacct executable written to ${output}\n`),
      (e: Error & { stderr?: Buffer }) => {
        process.stderr.write(`cannot build the cacct executable: ${e.stderr?.toString() || e.message}\n`);
        process.exitCode = 1;
      },
    );
  }
}
