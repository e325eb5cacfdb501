// koffi's native addon, loaded straight with process.dlopen. koffi's package entry is CommonJS: it only finds
// this file (glibc or musl build), checks its version and adds deprecated aliases, but require() of it brings
// in Node's CommonJS loader and node:util's deprecation wrappers: in a bare `node` 6.7 MiB of RSS against 0.9
// MiB for the addon alone; the exporter with the slurm collector starts 6.5 MiB smaller without it
// (docs/privileges.md). Every call the project makes (load, struct, pointer, decode, errno) is the addon's
// own. Inside a single executable, packaging/sea/koffi.cjs stands in for this module: it loads the same
// addon, embedded in the executable.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type KoffiModule = typeof import('koffi');

/** The addon of koffi's platform package for this machine: the glibc build, else the musl one (as koffi). */
export function loadKoffi(): KoffiModule {
  const { platform, arch } = process;
  const pkg = dirname(fileURLToPath(import.meta.resolve(`@koromix/koffi-${platform}-${arch}/package.json`)));
  let firstError: unknown;
  for (const build of [`${platform}_${arch}`, `musl_${arch}`]) {
    const addon = { exports: {} as KoffiModule };
    try {
      process.dlopen(addon, join(pkg, build, 'koffi.node'));
      return addon.exports;
    } catch (e) {
      firstError ??= e;
    }
  }
  throw firstError;
}
