// What the exporter loads: with the default collectors it must not load the packages only some collectors,
// a web config file or the API server need (fastify 18 MB of RSS, undici 20, zod 13, gRPC 10, ...), nor
// let an ESM `import 'node:http'` pull Node's internal undici. Recorded by a module hook in the real
// process (`node --import`), written when it exits.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { awaitListening, ROOT } from '../helpers/process.js';

const HOOK = `import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
const urls = [];
registerHooks({ load(url, ctx, next) { urls.push(url); return next(url, ctx); } });
process.on('exit', () => writeFileSync(process.env.CEEMS_TRACE_OUT, JSON.stringify({ urls, builtins: process.moduleLoadList })));
`;

const HEAVY = [
  'fastify',
  'undici',
  'zod',
  '@grpc/grpc-js',
  'prom-client',
  'pino',
  'yaml',
  'fast-xml-parser',
  'i18n-iso-countries',
  '@tgwf/co2',
  'bcryptjs',
];

/** The exporter's own modules among `urls`, as paths under dist/exporter/ (e.g. `units/slurm.js`). */
function exporterModules(urls: readonly string[]): string[] {
  return urls.flatMap((u) => {
    const m = /\/dist\/exporter\/(.+)$/.exec(u);
    return m ? [m[1]!] : [];
  });
}

/** Modules that only an enabled unit collector or sub-collector needs; their flags modules excepted. */
const UNIT_CODE =
  /^(units\/|cgroup\/collector|gpu\/(?!flags)|perf\/(?!flags|events|attr)|ebpf\/(?!flags)|rdma\/(?!flags)|k8s\/(?!flags)|unitenergy\/)/;

/** Packages (node_modules/<name>) and builtins loaded by an exporter run with `args` until it listens. */
async function loaded(
  args: string[],
): Promise<{ packages: Set<string>; builtins: string[]; urls: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'ceems-footprint-'));
  chmodSync(dir, 0o777); // written at exit, after the switch to nobody
  const hook = join(dir, 'hook.mjs');
  const out = join(dir, 'trace.json');
  writeFileSync(hook, HOOK);
  const proc = spawn(
    process.execPath,
    ['--import', hook, resolve(ROOT, 'bin/ceems_exporter'), '--web.listen-address=127.0.0.1:0', ...args],
    { env: { ...process.env, CEEMS_TRACE_OUT: out }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exp = await awaitListening(proc, 'ceems_exporter');
  // one scrape: what serving it needs counts too
  assert.equal((await fetch(`${exp.url}/metrics`, { headers: { 'accept-encoding': 'gzip' } })).status, 200);
  assert.equal(await exp.stop(), 0);
  const trace = JSON.parse(readFileSync(out, 'utf8')) as { urls: string[]; builtins: string[] };
  const packages = new Set<string>();
  for (const u of trace.urls) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u);
    if (m) packages.add(m[1]!);
  }
  return { packages, builtins: trace.builtins, urls: trace.urls };
}

describe('ceems_exporter module footprint', () => {
  const fixtures = join(ROOT, 'test/fixtures/node');
  it('default collectors load none of the heavy packages and not Node’s internal undici', async () => {
    const { packages, builtins, urls } = await loaded([
      `--path.procfs=${fixtures}/proc`,
      `--path.sysfs=${fixtures}/sys`,
    ]);
    assert.deepEqual(
      HEAVY.filter((p) => packages.has(p)),
      [],
    );
    assert.ok(
      !builtins.includes('NativeModule internal/deps/undici/undici'),
      'ESM node:http facade loaded undici',
    );
    assert.ok(!builtins.includes('NativeModule https'), 'no TLS without a web config');
    assert.ok(
      urls.some((u) => u.endsWith('/dist/exporter/main.js')),
      'the trace sees the modules loaded',
    );
    // the unit collectors and their sub-collectors load with the collector that uses them (issue 15)
    assert.deepEqual(
      exporterModules(urls).filter((m) => UNIT_CODE.test(m)),
      [],
    );
  });

  it('the slurm collector without GPUs loads no XML parser, HTTP client or gRPC, nor a sub-collector it does not run', async () => {
    const { packages, urls } = await loaded([
      '--collector.disable-defaults',
      '--collector.slurm',
      '--collector.cgroups.force-version=v2',
      `--path.cgroupfs=${join(ROOT, 'test/fixtures/cgroup/v2')}`,
      `--path.procfs=${join(ROOT, 'test/fixtures/cgroup/proc')}`,
      `--path.sysfs=${fixtures}/sys`,
    ]);
    assert.deepEqual(
      HEAVY.filter((p) => packages.has(p)),
      [],
    );
    const mine = exporterModules(urls);
    assert.ok(mine.includes('units/slurm.js') && mine.includes('cgroup/collector.js'), mine.join(' '));
    assert.deepEqual(
      mine.filter((m) => /^(perf|ebpf|rdma)\/collector|^units\/(?!slurm)|^k8s\/(?!flags)/.test(m)),
      [],
    );
  });

  it('bin/ceems_exporter runs Node.js with the small young generation and early old-generation GC', async () => {
    const proc = spawn(resolve(ROOT, 'bin/ceems_exporter'), [
      '--web.listen-address=127.0.0.1:0',
      '--collector.disable-defaults',
      '--collector.cpu',
    ]);
    const exp = await awaitListening(proc, 'ceems_exporter');
    try {
      const args = readFileSync(`/proc/${exp.pid}/cmdline`, 'utf8').split('\0');
      assert.ok(args.includes('--max-semi-space-size=1'), args.join(' '));
      assert.ok(args.includes('--heap-growing-percent=50'), args.join(' '));
      const env = readFileSync(`/proc/${exp.pid}/environ`, 'utf8').split('\0');
      assert.ok(env.includes('MALLOC_ARENA_MAX=1'), env.filter((e) => e.startsWith('MALLOC')).join(' '));
    } finally {
      await exp.stop();
    }
  });

  it('bin/ceems_exporter keeps a MALLOC_ARENA_MAX already set; the packaged unit sets it too', async () => {
    const proc = spawn(
      resolve(ROOT, 'bin/ceems_exporter'),
      ['--web.listen-address=127.0.0.1:0', '--collector.disable-defaults', '--collector.cpu'],
      { env: { ...process.env, MALLOC_ARENA_MAX: '3' } },
    );
    const exp = await awaitListening(proc, 'ceems_exporter');
    try {
      const env = readFileSync(`/proc/${exp.pid}/environ`, 'utf8').split('\0');
      assert.ok(env.includes('MALLOC_ARENA_MAX=3'), env.filter((e) => e.startsWith('MALLOC')).join(' '));
    } finally {
      await exp.stop();
    }
    const unit = readFileSync(resolve(ROOT, 'packaging/systemd/ceems_exporter.service'), 'utf8');
    assert.match(unit, /^Environment=MALLOC_ARENA_MAX=1$/m);
  });
});
