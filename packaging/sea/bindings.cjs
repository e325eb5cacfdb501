// Transitional, while better-sqlite3 is still a dependency (the move to node:sqlite removes it): its
// native addon is embedded; a single executable cannot require a .node file, so it is written to a
// private temporary directory, loaded with process.dlopen and the file removed at once.
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { embedded } = require('./assets.cjs');

/* global __CEEMS_SEA_ROOT__ */
module.exports = function bindings(name) {
  const data = embedded(`${__CEEMS_SEA_ROOT__}/native/${name}`);
  if (!data) throw new Error(`native addon ${name} is not embedded in this executable`);
  const dir = mkdtempSync(join(tmpdir(), 'ceems-addon-'));
  try {
    const file = join(dir, name);
    writeFileSync(file, data, { mode: 0o500 });
    const addon = { exports: {} };
    process.dlopen(addon, file);
    return addon.exports;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
