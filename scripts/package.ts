// `npm run package`: one self-contained executable per program (a Node.js single executable application:
// esbuild bundles the sources into one CommonJS file, `node --experimental-sea-config` turns it into a
// preparation blob, postject injects it into a copy of the node binary running this script) and one Debian
// package per program (`dpkg-deb --build`), in dist/packages/ or the folder given as argument.
//
// Why one executable per program and not one multi-call binary (measured with node 24.21): the stripped
// node runtime is 103.5 MiB of every file, the bundles 2.2-5.9 MiB (+4.5 MiB of Swagger UI for the API
// server). One binary of all six would be ~117 MiB (bundle of all six: 7.5 MiB) against 110 MiB for the
// exporter alone: it saves disk only where several programs share a host (the API/LB host), while the
// exporter, the only program of the 1,400 compute nodes, would carry the API server's database code.
//
// Files the code reads beside its own modules (build stamp, kubelet .proto, the DB writer's worker script,
// Swagger UI, koffi's native addon) are embedded as SEA assets under a directory that exists nowhere on disk;
// the shims in packaging/sea/ serve them to the modules that read them (see packaging/sea/assets.cjs and, for
// the addon, packaging/sea/koffi.cjs).

import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Metafile, Plugin } from 'esbuild';
import * as esbuild from 'esbuild';
import { STATIC_ASSETS } from '../src/web/assets.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SHIMS = join(ROOT, 'packaging/sea');
/** Where embedded files live for the bundled code; no such directory exists on any machine. */
const SEA_ROOT = '/__ceems_sea__';
// Fixed sentinel of Node's SEA fuse (documented in the Node.js "Single executable applications" guide).
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

export interface Program {
  name: string;
  /** Debian package name (no underscores in Debian names). */
  pkg: string;
  /** Module exporting `main(argv): Promise<number>`. */
  entry: string;
  /** Like bin/<name>: servers exit explicitly, CLIs set the exit code and let pending output drain. */
  exit: 'exit' | 'exitCode';
  summary: string;
  description: string;
  /** System user and group of the unit (servers only; the unit is packaging/systemd/<name>.service). */
  user?: string;
  /** Group of the setgid executable that may read the config (cacct, cli.md §1.1). */
  setgidGroup?: string;
  /** Data directory owned by the user, kept until purge. */
  dataDir?: string;
  /** Node.js flags the executable starts with (SEA `execArgv`), as bin/<name> passes them. */
  execArgv?: readonly string[];
  /** Example configuration files: etc/<path> installed as /etc/<path>, conffiles. */
  etc: string[];
  /** Of those, files holding secrets: mode 0640, group `user` (or `setgidGroup`). */
  secret: string[];
  /** Bundle inputs this program must not carry. */
  forbidden: RegExp[];
  /** Debian packages of libraries an optional feature loads at run time (the feature logs why it is off without them). */
  recommends?: string[];
}

// Every program: no dev tools, tests or benchmarks.
const DEV = [
  /(^|\/)node_modules\/(esbuild|typescript|tsx|@biomejs|postject|@types|node)\//,
  /^(test|bench|scripts)\//,
];
// Only the API server and the LB (ownership checks) open the API database. (node:sqlite itself is no mark:
// undici names it for an HTTP cache store nothing here uses.)
const NO_DB = [/^src\/api\/db\//, /^src\/common\/sqlite\.ts$/];

export const PROGRAMS: Program[] = [
  {
    name: 'ceems_exporter',
    pkg: 'ceems-exporter',
    entry: 'src/exporter/main.ts',
    exit: 'exit',
    summary: 'CEEMS exporter: node and compute-unit energy, usage and emissions metrics',
    description:
      'Prometheus exporter for every compute node: CPU, memory and power of the node, per-unit cgroup\nmetrics of SLURM jobs, libvirt VMs and Kubernetes pods, GPU to unit mapping and emission factors.',
    user: 'ceems-exporter',
    // V8's young generation capped at 2 x 1 MiB, the old one collected once it grew by half, as in
    // bin/ceems_exporter (why and what it costs: there): 10,000 jobs peak at 147 instead of 326 MiB (commit
    // c8abec6, 2 x 4 MiB), 1,000 jobs 5 MiB lower with 2 x 1 MiB (bench/exporter-cgroup.ts)
    execArgv: ['--max-semi-space-size=1', '--heap-growing-percent=50'],
    etc: ['ceems_exporter/web-config.yml', 'ceems_exporter/redfish-config.yml', 'default/ceems_exporter'],
    secret: ['ceems_exporter/web-config.yml', 'ceems_exporter/redfish-config.yml'],
    forbidden: [...DEV, ...NO_DB, /^src\/(api|lb|cli|redfish_proxy)\//],
    // the ebpf sub-collector loads its programs with libbpf (koffi, src/exporter/ebpf/libbpf.ts)
    recommends: ['libbpf1'],
  },
  {
    name: 'ceems_api_server',
    pkg: 'ceems-api-server',
    entry: 'src/api/main.ts',
    exit: 'exit',
    summary: 'CEEMS API server: compute units, usage and aggregates of energy and emissions',
    description:
      'Fetches units, users and projects from SLURM, OpenStack or Kubernetes, aggregates their metrics\nfrom Prometheus into SQLite and serves them over a REST API to Grafana and cacct.',
    user: 'ceems-api',
    dataDir: '/var/lib/ceems',
    etc: ['ceems_api_server/config.yml', 'ceems_api_server/web-config.yml', 'default/ceems_api_server'],
    secret: ['ceems_api_server/config.yml', 'ceems_api_server/web-config.yml'],
    forbidden: [...DEV, /^src\/(exporter|lb|cli|redfish_proxy)\//],
  },
  {
    name: 'ceems_lb',
    pkg: 'ceems-lb',
    entry: 'src/lb/main.ts',
    exit: 'exit',
    summary: 'CEEMS load balancer: Prometheus and Pyroscope access limited to the users own units',
    description:
      'Load balancer in front of Prometheus and Pyroscope that lets each Grafana user query only the\nseries of the compute units of their own projects.',
    user: 'ceems-lb',
    etc: ['ceems_lb/config.yml', 'ceems_lb/web-config.yml', 'default/ceems_lb'],
    secret: ['ceems_lb/config.yml', 'ceems_lb/web-config.yml'],
    forbidden: [...DEV, /^src\/(exporter|cli|redfish_proxy)\//],
  },
  {
    name: 'redfish_proxy',
    pkg: 'ceems-redfish-proxy',
    entry: 'src/redfish_proxy/main.ts',
    exit: 'exit',
    summary: 'CEEMS Redfish proxy: compute nodes reach their BMC through one host',
    description:
      'Reverse proxy relaying the Redfish requests of the exporters on compute nodes to their BMC.',
    user: 'ceems-redfish',
    etc: ['redfish_proxy/config.yml', 'redfish_proxy/web-config.yml', 'default/redfish_proxy'],
    secret: ['redfish_proxy/config.yml', 'redfish_proxy/web-config.yml'],
    forbidden: [...DEV, ...NO_DB, /^src\/(exporter|api|lb|cli)\//],
  },
  {
    name: 'ceems_k8s_admission_controller',
    pkg: 'ceems-k8s-admission-controller',
    entry: 'src/k8s_admission_controller/main.ts',
    exit: 'exit',
    summary: 'CEEMS Kubernetes admission controller: annotates workloads with their creator',
    description:
      'Mutating and validating webhook of the Kubernetes API server that records who created each pod\n(directly or through a Deployment, Job, CronJob, StatefulSet or DaemonSet) for per-user accounting.',
    user: 'ceems-k8s-admission',
    etc: ['ceems_k8s_admission_controller/web-config.yml', 'default/ceems_k8s_admission_controller'],
    secret: ['ceems_k8s_admission_controller/web-config.yml'],
    forbidden: [...DEV, ...NO_DB, /^src\/(exporter|api|lb|cli|redfish_proxy|web)\//],
  },
  {
    name: 'cacct',
    pkg: 'ceems-cacct',
    entry: 'src/cli/cacct/main.ts',
    exit: 'exitCode',
    summary: 'cacct: energy, emissions and usage of a users own jobs',
    description:
      'sacct-like command showing the calling user their compute units with energy and emissions, read\nfrom the CEEMS API server. Installed setgid to the group that may read its configuration.',
    setgidGroup: 'ceems-cacct',
    etc: ['ceems/config.yml'],
    secret: ['ceems/config.yml'],
    forbidden: [...DEV, ...NO_DB, /^src\/(exporter|api|lb|redfish_proxy)\//],
  },
  {
    name: 'ceems_tool',
    pkg: 'ceems-tool',
    entry: 'src/cli/ceems_tool/main.ts',
    exit: 'exitCode',
    summary: 'ceems_tool: CEEMS health checks, web configs, recording rules and updater queries',
    description:
      'Operator tool of CEEMS: checks the API server and the load balancer, creates web configurations,\nPrometheus recording rules, relabel configs and TSDB updater queries.',
    etc: [],
    secret: [],
    // `ceems_tool db migrate` reads the API server's SQLite schema and writes its PostgreSQL one (src/api/db
    // and the models and time formats the rows use); nothing else of the API server
    forbidden: [
      ...DEV,
      /^src\/(exporter|lb|redfish_proxy)\//,
      /^src\/api\/(?!db\/|models\.ts$|timefmt\.ts$)/,
    ],
  },
];

/** The program called `name`. */
export function program(name: string): Program {
  const p = PROGRAMS.find((x) => x.name === name);
  if (!p) throw new Error(`no program ${name}`);
  return p;
}

// ---------------------------------------------------------------------------------------------- bundling

/** Where a source file would be if compiled to dist/, under the embedded root (src/a/b.ts → /…/a/b.js). */
function virtualPath(file: string): string {
  return `${SEA_ROOT}/${relative(join(ROOT, 'src'), file).replace(/\.ts$/, '.js')}`;
}

/** node_modules files that find their own data files through __dirname. */
const DIRNAME_READERS = /node_modules\/@fastify\/swagger-ui\/(index|lib\/routes)\.js$/;

/** The one module that loads koffi's addon; inside the executable packaging/sea/koffi.cjs replaces it. */
const KOFFI_LOADER = join(ROOT, 'src/common/koffi.ts');

/**
 * koffi's native addon for this machine (glibc build), embedded in executables whose bundle carries the
 * syscall module: an executable cannot load an addon from its own blob, so the shim copies it out at first
 * use (packaging/sea/koffi.cjs). Shipping it in the .deb instead would make the executable need a second
 * file at a fixed path; embedded, it stays one file and always matches the koffi JS it was bundled with.
 */
export function koffiAddon(): string {
  const { platform, arch } = process;
  return join(
    ROOT,
    'node_modules/@koromix',
    `koffi-${platform}-${arch}`,
    `${platform}_${arch}`,
    'koffi.node',
  );
}

/** Optional dependencies of dependencies (debug → supports-color) that this project does not install. */
const OPTIONAL_ABSENT = /^supports-color$/;

/** Imports served by a shim (packaging/sea/) for modules that read files beside themselves. */
const SHIMMED: Record<string, string> = {
  'node:fs': 'fs.cjs',
  fs: 'fs.cjs',
  'node:fs/promises': 'fs-promises.cjs',
  'fs/promises': 'fs-promises.cjs',
  'node:worker_threads': 'worker-threads.cjs',
  worker_threads: 'worker-threads.cjs',
  '@grpc/proto-loader': 'proto-loader.cjs',
  '@fastify/static': 'fastify-static.cjs',
};

/**
 * Gives each module that locates files relative to itself (`import.meta` in our sources, `__dirname` in
 * DIRNAME_READERS) its place under the embedded root, and its fs/worker/loader imports to the shims.
 */
function seaPlugin(): Plugin {
  const located = new Set<string>();
  return {
    name: 'ceems-sea',
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, (args) => {
        if (args.path.includes('/node_modules/')) return undefined;
        let text = readFileSync(args.path, 'utf8');
        if (!text.includes('import.meta')) return undefined;
        const url = `file://${virtualPath(args.path)}`;
        const file = virtualPath(args.path);
        text = text
          .replaceAll('import.meta.url', JSON.stringify(url))
          .replaceAll('import.meta.dirname', JSON.stringify(dirname(file)))
          .replaceAll('import.meta.filename', JSON.stringify(file))
          .replaceAll(
            'import.meta.resolve',
            "((s: string): string => { throw new Error('cannot resolve ' + s + ' inside a single executable'); })",
          );
        if (text.includes('import.meta'))
          throw new Error(
            `${relative(ROOT, args.path)}: unhandled use of import.meta in a single executable`,
          );
        located.add(args.path);
        return { contents: text, loader: 'ts' };
      });
      build.onLoad({ filter: DIRNAME_READERS }, (args) => {
        located.add(args.path);
        const dir = `${SEA_ROOT}/${relative(ROOT, dirname(args.path))}`;
        return { contents: readFileSync(args.path, 'utf8').replaceAll('__dirname', JSON.stringify(dir)) };
      });
      build.onResolve({ filter: /\/koffi\.js$/ }, (args) =>
        join(args.resolveDir, args.path.replace(/\.js$/, '.ts')) === KOFFI_LOADER
          ? { path: join(SHIMS, 'koffi.cjs') }
          : undefined,
      );
      build.onResolve(
        { filter: /^(node:)?(fs|fs\/promises|worker_threads)$|^@grpc\/proto-loader$|^@fastify\/static$/ },
        (args) => (located.has(args.importer) ? { path: join(SHIMS, SHIMMED[args.path]!) } : undefined),
      );
      // optional packages required inside try/catch and not installed: missing, as under node, without the
      // SEA's "require() only loads built-in modules" warning at every start
      build.onResolve({ filter: OPTIONAL_ABSENT }, (args) => ({ path: args.path, namespace: 'absent' }));
      build.onLoad({ filter: /.*/, namespace: 'absent' }, (args) => ({
        contents: `throw Object.assign(new Error(${JSON.stringify(`Cannot find module '${args.path}'`)}), { code: 'MODULE_NOT_FOUND' });`,
        loader: 'js',
      }));
    },
  };
}

/**
 * Packages each executable loads only when first required (packaging/sea/lazy.cjs): bundled apart and embedded
 * instead of inlined in the main script, whose whole source V8 holds from start-up. They are the big ones the
 * programs reach only through a feature or a dynamic import (exporter: emission providers, Redfish, GPUs,
 * Kubernetes; measured: the exporter's executable starts at 80 instead of 94 MiB RSS). Packages two of them
 * share are listed too, so that each is loaded once; bundleLazy refuses a module found in two bundles.
 */
export const LAZY_PACKAGES = [
  'undici',
  'zod',
  'yaml',
  'i18n-iso-countries',
  '@tgwf/co2',
  '@grpc/grpc-js',
  '@grpc/proto-loader',
  'protobufjs',
  'long',
  'fast-xml-parser',
  'bcryptjs',
];

/** The lazy package (or subpath of one) `specifier` names, if any. */
function lazyPackageOf(specifier: string): string | undefined {
  return LAZY_PACKAGES.find((p) => specifier === p || specifier.startsWith(`${p}/`));
}

/** Imports of lazy packages become `loadLazy(specifier)`; `used` collects the specifiers. */
function lazyPlugin(used: Set<string>): Plugin {
  return {
    name: 'ceems-lazy',
    setup(build) {
      build.onResolve({ filter: /^[@a-z]/ }, (args) => {
        if (!lazyPackageOf(args.path)) return undefined;
        used.add(args.path);
        return { path: args.path, namespace: 'ceems-lazy' };
      });
      build.onLoad({ filter: /.*/, namespace: 'ceems-lazy' }, (args) => ({
        contents: `module.exports = require(${JSON.stringify(join(SHIMS, 'lazy.cjs'))}).loadLazy(${JSON.stringify(args.path)});`,
        resolveDir: ROOT,
        loader: 'js',
      }));
    },
  };
}

interface Bundle {
  code: string;
  metafile: Metafile;
  /** Embedded files: virtual path → file on this machine. */
  assets: Record<string, string>;
}

/** Files a bundle reads beside its modules, by the bundle input that reads them. */
async function assetsOf(
  metafile: Metafile,
  work: string,
  buildinfo: string,
  lazy: { used: Set<string> } | { self: string },
): Promise<Record<string, string>> {
  const inputs = Object.keys(metafile.inputs);
  const has = (re: RegExp) => inputs.some((f) => re.test(f));
  const assets: Record<string, string> = { [`${SEA_ROOT}/buildinfo.json`]: buildinfo };
  if (has(/^src\/exporter\/k8s\/podresources\.ts$/)) {
    const proto = join(ROOT, 'src/exporter/k8s/podresources.proto');
    assets[virtualPath(proto)] = proto;
  }
  if (has(/^src\/api\/db\/writer\.ts$/)) {
    const entry = join(ROOT, 'src/api/db/writer-thread.ts');
    // the thread's lazy packages join the executable's (`lazy`)
    const thread = await bundle({ stdin: undefined, entry }, work, buildinfo, lazy);
    const file = join(work, 'writer-thread.js');
    writeFileSync(file, thread.code);
    Object.assign(assets, thread.assets, { [virtualPath(entry)]: file });
  }
  if (has(/^src\/common\/syscall\.ts$/)) assets[`${SEA_ROOT}/koffi.node`] = koffiAddon();
  if (has(/^src\/exporter\/ebpf\/loader\.ts$/)) {
    // the ebpf sub-collector's BPF programs, read beside the loader (libbpf1 itself comes from the system)
    const object = join(ROOT, 'src/exporter/ebpf/bpf/ceems.bpf.o');
    assets[virtualPath(object)] = object;
  }
  if (has(/^src\/web\/assets\.ts$/))
    for (const [name, asset] of Object.entries(STATIC_ASSETS))
      assets[`${dirname(virtualPath(join(ROOT, 'src/web/assets.ts')))}/static/${name}`] = join(
        ROOT,
        asset.path,
      );
  if (has(/node_modules\/@fastify\/swagger-ui\/index\.js$/)) {
    const dir = join(ROOT, 'node_modules/@fastify/swagger-ui/static');
    for (const f of readdirSync(dir))
      assets[`${SEA_ROOT}/node_modules/@fastify/swagger-ui/static/${f}`] = join(dir, f);
  }
  return assets;
}

/**
 * One CommonJS bundle of `what` for a single executable. `lazy`: imports of LAZY_PACKAGES go through the lazy
 * loader and are collected there (main scripts); otherwise they stay external requires, served by the lazy
 * loader at run time, except the package being bundled (package bundles).
 */
async function bundle(
  what: { stdin: string | undefined; entry: string },
  work: string,
  buildinfo: string,
  lazy: { used: Set<string> } | { self: string },
): Promise<Bundle> {
  const self = 'self' in lazy ? lazy.self : undefined;
  const result = await esbuild.build({
    ...(what.stdin
      ? { stdin: { contents: what.stdin, resolveDir: ROOT, sourcefile: what.entry, loader: 'ts' as const } }
      : { entryPoints: [what.entry] }),
    absWorkingDir: ROOT,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: `node${process.versions.node.split('.')[0]}`,
    write: false,
    outdir: work,
    metafile: true,
    // not minified: stack traces keep their lines and names; minifying saved 2 of ~90 MiB and no start-up time
    legalComments: 'none',
    define: { __CEEMS_SEA_ROOT__: JSON.stringify(SEA_ROOT) },
    // seaPlugin first: its shims take the lazy packages' imports of the modules it locates
    plugins: 'used' in lazy ? [seaPlugin(), lazyPlugin(lazy.used)] : [seaPlugin()],
    external: self === undefined ? [] : LAZY_PACKAGES.filter((p) => p !== self).flatMap((p) => [p, `${p}/*`]),
    logLevel: 'silent',
  });
  if (result.warnings.length > 0) {
    const lines = await esbuild.formatMessages(result.warnings, { kind: 'warning' });
    throw new Error(
      `esbuild warnings (each one is a file or module the executable would miss):\n${lines.join('')}`,
    );
  }
  const code = result.outputFiles.find((f) => f.path.endsWith('.js'))!.text;
  return {
    code,
    metafile: result.metafile,
    assets: await assetsOf(result.metafile, work, buildinfo, lazy),
  };
}

/** Inputs and external imports of a bundle matching one of `forbidden`. */
export function forbiddenInputs(metafile: Metafile, forbidden: RegExp[]): string[] {
  const names = new Set(Object.keys(metafile.inputs));
  for (const out of Object.values(metafile.outputs))
    for (const imp of out.imports) if (imp.external) names.add(imp.path);
  return [...names].filter((n) => forbidden.some((re) => re.test(n)));
}

/**
 * The lazy package bundles `used` (and the lazy packages they use in turn) as embedded files, with their
 * inputs and assets added to `main`'s. One bundle per package, holding every specifier of it in use (the
 * package and subpaths such as protobufjs/ext/descriptor, which must share the package's modules): its
 * exports map each specifier to a getter. A module bundled twice (into the main script and a package bundle,
 * or into two package bundles) would run as two instances: refused, naming the package to add to
 * LAZY_PACKAGES (JSON data excepted).
 */
async function bundleLazy(
  main: Bundle,
  used: Set<string>,
  work: string,
  buildinfo: string,
): Promise<{ packages: string[]; bytes: number }> {
  const specs = new Map<string, Set<string>>();
  const add = (spec: string) => {
    const pkg = lazyPackageOf(spec)!;
    const set = specs.get(pkg) ?? new Set<string>();
    specs.set(pkg, set);
    if (set.has(spec)) return false;
    set.add(spec);
    return true;
  };
  for (const spec of used) add(spec);
  const built = new Map<string, Bundle>();
  // a package bundle may use a subpath of a package built already: build that one again, until none is new
  for (let stale = [...specs.keys()]; stale.length > 0; ) {
    const again = new Set<string>();
    for (const pkg of stale) {
      const getters = [...specs.get(pkg)!]
        .map((spec) => `  get ${JSON.stringify(spec)}() { return require(${JSON.stringify(spec)}); },`)
        .join('\n');
      const b = await bundle(
        { stdin: `module.exports = {\n${getters}\n};\n`, entry: `lazy:${pkg}` },
        work,
        buildinfo,
        { self: pkg },
      );
      built.set(pkg, b);
      for (const out of Object.values(b.metafile.outputs))
        for (const imp of out.imports)
          if (imp.external && lazyPackageOf(imp.path) && add(imp.path)) again.add(lazyPackageOf(imp.path)!);
    }
    stale = [...again];
  }
  const owner = new Map(Object.keys(main.metafile.inputs).map((f) => [f, 'the main script']));
  let bytes = 0;
  for (const [pkg, b] of built) {
    for (const f of Object.keys(b.metafile.inputs)) {
      const other = owner.get(f);
      // a JSON file is data, not state: two copies of it are harmless
      if (other !== undefined && !f.startsWith('lazy:') && !f.endsWith('.json'))
        throw new Error(`${f} is in ${other} and in the bundle of ${pkg}: add its package to LAZY_PACKAGES`);
      owner.set(f, pkg);
    }
    const file = join(work, 'lazy', `${pkg}.cjs`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, b.code);
    bytes += Buffer.byteLength(b.code);
    Object.assign(main.metafile.inputs, b.metafile.inputs);
    Object.assign(main.assets, b.assets, { [`${SEA_ROOT}/lazy/${pkg}.cjs`]: file });
  }
  return { packages: [...built.keys()].sort(), bytes };
}

// ------------------------------------------------------------------------------------------- executables

export interface Executable {
  program: Program;
  path: string;
  bytes: number;
  bundleBytes: number;
  /** Inputs of the main script (`metafile` has those of the lazy package bundles too). */
  mainInputs: string[];
  /** Packages embedded as lazy package bundles, and the bytes of those bundles. */
  lazyPackages: string[];
  lazyBytes: number;
  assetBytes: number;
  metafile: Metafile;
  /** Whether the node binary was stripped of its symbols first. */
  stripped: boolean;
}

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function hasCommand(cmd: string): boolean {
  try {
    run('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

/**
 * The build stamp that `--version` prints, made by scripts/buildinfo.mjs (as `npm run build` makes it) in a
 * copy under `work`, so that builds running at the same time never read each other's half-written file.
 */
function buildStamp(work: string): string {
  mkdirSync(join(work, 'stamp/scripts'), { recursive: true });
  copyFileSync(join(ROOT, 'package.json'), join(work, 'stamp/package.json'));
  copyFileSync(join(ROOT, 'scripts/buildinfo.mjs'), join(work, 'stamp/scripts/buildinfo.mjs'));
  execFileSync(process.execPath, [join(work, 'stamp/scripts/buildinfo.mjs')], { cwd: ROOT, stdio: 'pipe' });
  return join(work, 'stamp/dist/buildinfo.json');
}

/** Builds `program` as one executable at `output`, with the node binary running this script. */
export async function buildExecutable(program: Program, output: string): Promise<Executable> {
  const work = mkdtempSync(join(tmpdir(), `${program.name}-sea-`));
  try {
    const buildinfo = buildStamp(work);
    const end =
      program.exit === 'exit'
        ? '.then((code) => process.exit(code))'
        : '.then((code) => {\n  process.exitCode = code;\n})';
    const entry = `import { main } from './${program.entry}';\nmain(process.argv.slice(2))${end};\n`;
    const used = new Set<string>();
    const b = await bundle({ stdin: entry, entry: `${program.name}-sea-entry.ts` }, work, buildinfo, {
      used,
    });
    const mainInputs = Object.keys(b.metafile.inputs);
    const lazy = await bundleLazy(b, used, work, buildinfo);
    const bad = forbiddenInputs(b.metafile, program.forbidden);
    if (bad.length > 0) throw new Error(`${program.name} must not carry: ${bad.join(', ')}`);
    // relative names, resolved in `work`: stack traces name the file `<program>.cjs`
    writeFileSync(join(work, `${program.name}.cjs`), b.code);
    const blob = join(work, `${program.name}.blob`);
    writeFileSync(
      join(work, 'sea-config.json'),
      JSON.stringify({
        main: `${program.name}.cjs`,
        output: blob,
        disableExperimentalSEAWarning: true,
        // V8 code cache of the bundle: `--version` of the exporter 193 ms instead of 251 ms (20 runs each)
        useCodeCache: true,
        ...(program.execArgv ? { execArgv: program.execArgv } : {}),
        assets: b.assets,
      }),
    );
    // the code cache is only accepted by a V8 started with the same flags as the one that made it
    execFileSync(
      process.execPath,
      [...(program.execArgv ?? []), '--experimental-sea-config', 'sea-config.json'],
      {
        cwd: work,
        stdio: 'pipe',
      },
    );
    const out = resolve(output);
    mkdirSync(dirname(out), { recursive: true });
    rmSync(out, { force: true });
    copyFileSync(process.execPath, out);
    chmodSync(out, 0o755);
    // debug symbols are ~15% of the official node binary; nothing at run time needs them
    const stripped = hasCommand('strip');
    if (stripped) run('strip', [out]);
    const postject = join(ROOT, 'node_modules/postject/dist/cli.js');
    run(process.execPath, [postject, out, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE]);
    return {
      program,
      path: out,
      bytes: statSync(out).size,
      bundleBytes: Buffer.byteLength(b.code),
      mainInputs,
      lazyPackages: lazy.packages,
      lazyBytes: lazy.bytes,
      assetBytes: Object.values(b.assets).reduce((n, f) => n + statSync(f).size, 0),
      metafile: b.metafile,
      stripped,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------- Debian packages

function template(name: string, vars: Record<string, string>): string {
  return readFileSync(join(ROOT, 'packaging/debian', name), 'utf8').replace(
    /@([A-Z_]+)@/g,
    (m, k: string) => {
      if (!(k in vars)) throw new Error(`packaging/debian/${name}: unknown placeholder ${m}`);
      return vars[k]!;
    },
  );
}

function duKiB(dir: string): number {
  let bytes = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) bytes += statSync(join(e.parentPath, e.name)).size;
  return Math.ceil(bytes / 1024);
}

/** Builds the Debian package of `exe` in `outDir`; returns the .deb path. */
export function buildDeb(exe: Executable, version: string, outDir: string): string {
  const p = exe.program;
  const arch = run('dpkg', ['--print-architecture']).trim();
  const stage = mkdtempSync(join(tmpdir(), `${p.pkg}-deb-`));
  try {
    const put = (dest: string, from: string, mode: number) => {
      const f = join(stage, dest);
      mkdirSync(dirname(f), { recursive: true });
      copyFileSync(from, f);
      chmodSync(f, mode);
    };
    put(`usr/bin/${p.name}`, exe.path, 0o755);
    for (const f of p.etc) put(`etc/${f}`, join(ROOT, 'etc', f), 0o644);
    if (p.user)
      put(
        `lib/systemd/system/${p.name}.service`,
        join(ROOT, 'packaging/systemd', `${p.name}.service`),
        0o644,
      );
    const group = p.user ?? p.setgidGroup ?? '';
    const vars: Record<string, string> = {
      PACKAGE: p.pkg,
      PROGRAM: p.name,
      VERSION: version,
      ARCH: arch,
      INSTALLED_SIZE: String(duKiB(stage)),
      // Depends, and Recommends for what an optional feature loads at run time
      RELATIONS: [
        `Depends: libc6 (>= 2.28), libstdc++6, libgcc-s1${group ? ', adduser' : ''}`,
        ...(p.recommends ? [`Recommends: ${p.recommends.join(', ')}`] : []),
      ].join('\n'),
      SUMMARY: p.summary,
      DESCRIPTION: p.description
        .split('\n')
        .map((l) => ` ${l}`)
        .join('\n'),
      USER: p.user ?? '',
      GROUP: group,
      DATA_DIR: p.dataDir ?? '',
      UNIT: p.user ? `${p.name}.service` : '',
      SECRET_FILES: p.secret.map((f) => `/etc/${f}`).join(' '),
      SETGID_BIN: p.setgidGroup ? `/usr/bin/${p.name}` : '',
    };
    const debian = join(stage, 'DEBIAN');
    mkdirSync(debian);
    writeFileSync(join(debian, 'control'), template('control.in', vars));
    if (p.etc.length > 0) writeFileSync(join(debian, 'conffiles'), p.etc.map((f) => `/etc/${f}\n`).join(''));
    for (const script of ['postinst', 'prerm', 'postrm']) {
      writeFileSync(join(debian, script), template(`${script}.in`, vars));
      chmodSync(join(debian, script), 0o755);
    }
    mkdirSync(outDir, { recursive: true });
    const deb = join(resolve(outDir), `${p.pkg}_${version}_${arch}.deb`);
    // zstd -9, measured on one executable (84 MiB): 28 MB in 3 s; xz -6: 22 MB in 68 s; zstd -19: 25 MB
    // in 81 s. Packages build inside the test run, so speed wins (dpkg reads zstd since 1.21.18).
    run('dpkg-deb', ['--root-owner-group', '-Zzstd', '-z9', '--build', stage, deb]);
    return deb;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------------------- main

export interface Built {
  exe: Executable;
  deb: string;
  debBytes: number;
}

/** Builds every program's executable (outDir/bin/) and Debian package (outDir/). */
export async function packageAll(outDir: string, programs = PROGRAMS): Promise<Built[]> {
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string })
    .version;
  const built: Built[] = [];
  for (const p of programs) {
    const exe = await buildExecutable(p, join(outDir, 'bin', p.name));
    const deb = buildDeb(exe, version, outDir);
    built.push({ exe, deb, debBytes: statSync(deb).size });
  }
  return built;
}

const MiB = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outDir = resolve(process.argv[2] ?? join(ROOT, 'dist/packages'));
  const started = Date.now();
  packageAll(outDir).then(
    (built) => {
      const node = `node ${process.version} (${process.execPath}, ${MiB(statSync(process.execPath).size)})`;
      process.stdout.write(`Built with ${node}${built[0]?.exe.stripped ? ', symbols stripped' : ''}:\n`);
      for (const b of built)
        process.stdout.write(
          `  ${b.exe.program.name.padEnd(17)} ${MiB(b.exe.bytes).padStart(10)} (bundle ${MiB(b.exe.bundleBytes)}, embedded files ${MiB(b.exe.assetBytes)} of which lazy packages ${MiB(b.exe.lazyBytes)})  ${relative(process.cwd(), b.deb)} ${MiB(b.debBytes)}\n`,
        );
      process.stdout.write(`in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    },
    (e: Error & { stderr?: string }) => {
      process.stderr.write(`npm run package: ${e.stderr || e.message}\n`);
      process.exitCode = 1;
    },
  );
}
