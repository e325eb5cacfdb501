// src/common/koffi.ts inside a single executable, where a native addon cannot be loaded from the executable's
// own blob: koffi.node is embedded as an asset (scripts/package.ts), copied at first use into a fresh
// directory only this process' user can enter (mkdtemp: 0700), loaded with process.dlopen and deleted at once
// (the mapping stays). It is the same glibc addon of the node_modules the bundle was built from. $TMPDIR
// decides where the copy is made: it must allow executable mappings (not mounted noexec).
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { embedded } = require('./assets.cjs');

/* global __CEEMS_SEA_ROOT__ */
const ADDON = `${__CEEMS_SEA_ROOT__}/koffi.node`;

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

module.exports = { loadKoffi };
