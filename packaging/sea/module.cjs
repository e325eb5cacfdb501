// node:module for src/common/syscall.ts inside a single executable, where require() reaches only built-in
// modules and a native addon cannot be loaded from the executable's own blob. require('koffi') gives koffi's
// native addon instead: koffi.node is embedded as an asset (scripts/package.ts), copied at first use into a
// fresh directory only this process' user can enter (mkdtemp: 0700), loaded with process.dlopen and deleted
// at once (the mapping stays). The native module exports every call syscall.ts uses (load, struct, pointer,
// decode, errno); koffi's JS wrapper only adds deprecated aliases and a version check, which is moot since
// the addon and this bundle come from the same node_modules. $TMPDIR decides where the copy is made: it must
// allow executable mappings (not mounted noexec).
const Module = require('node:module');
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { embedded } = require('./assets.cjs');

/* global __CEEMS_SEA_ROOT__ */
const ADDON = `${__CEEMS_SEA_ROOT__}/koffi.node`;
let koffi;

function loadKoffi() {
  const data = embedded(ADDON);
  if (!data)
    throw Object.assign(new Error("Cannot find module 'koffi': this executable carries no koffi.node"), {
      code: 'MODULE_NOT_FOUND',
    });
  const dir = mkdtempSync(join(tmpdir(), 'ceems-koffi-'));
  try {
    const file = join(dir, 'koffi.node');
    writeFileSync(file, data, { mode: 0o500, flag: 'wx' });
    const addon = { exports: {} };
    process.dlopen(addon, file);
    return addon.exports;
  } catch (e) {
    throw new Error(`cannot load the FFI addon (koffi.node) from ${dir}: ${e.message}; set TMPDIR to a directory that allows executable mappings`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function createRequire(from) {
  const real = Module.createRequire(from);
  const req = (id) => {
    if (id !== 'koffi') return real(id);
    koffi ??= loadKoffi();
    return koffi;
  };
  return Object.assign(req, { resolve: real.resolve, cache: real.cache });
}

module.exports = { ...Module, createRequire };
