// Packages a single executable loads only when first required (scripts/package.ts, LAZY_PACKAGES): each is a
// CommonJS bundle of its own, embedded as the asset <root>/lazy/<package>.cjs and compiled at first use; its
// exports map each specifier in use (the package, its subpaths) to a getter of that module.
// V8 keeps the main script's whole source in memory from start-up, so a package inlined there costs memory
// on every node even when nothing uses it (the exporter's bundle: 4.7 MB, of which 4.3 MB such packages).
// A package bundle requires built-in modules and the other lazy packages through lazyRequire, so each is
// loaded once and shared.
const { compileFunction } = require('node:vm');
const { embedded } = require('./assets.cjs');

/* global __CEEMS_SEA_ROOT__ */
const ROOT = `${__CEEMS_SEA_ROOT__}/lazy`;
const loaded = new Map();

function notFound(id) {
  return Object.assign(new Error(`Cannot find module '${id}' in this executable`), { code: 'MODULE_NOT_FOUND' });
}

function lazyRequire(id) {
  const builtin = process.getBuiltinModule(id);
  if (builtin) return builtin;
  return loadLazy(id);
}

/** The package a specifier names: `name` or `@scope/name`, without a subpath. */
function packageOf(id) {
  const parts = id.split('/');
  return parts.slice(0, id.startsWith('@') ? 2 : 1).join('/');
}

/** The exports of the embedded package bundle of `pkg`: specifier → getter. */
function packageBundle(pkg) {
  const done = loaded.get(pkg);
  if (done) return done.exports;
  const filename = `${ROOT}/${pkg}.cjs`;
  const code = embedded(filename);
  if (!code) return undefined;
  const module = { exports: {}, id: pkg, filename, loaded: false };
  loaded.set(pkg, module);
  const run = compileFunction(code.toString('utf8'), ['exports', 'require', 'module', '__filename', '__dirname'], {
    filename,
  });
  run.call(module.exports, module.exports, lazyRequire, module, filename, ROOT);
  module.loaded = true;
  return module.exports;
}

/** The module `id` (a lazy package or a subpath of one) names. */
function loadLazy(id) {
  const specifiers = packageBundle(packageOf(id));
  if (!specifiers || !(id in specifiers)) throw notFound(id);
  return specifiers[id];
}

module.exports = { loadLazy };
