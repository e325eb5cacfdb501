// node:fs for modules that read files beside themselves: embedded paths come from the executable.
const fs = require('node:fs');
const { embedded, embeddedPath, readEmbedded } = require('./assets.cjs');

function readFileSync(p, options) {
  const path = embeddedPath(p);
  return path === undefined ? fs.readFileSync(p, options) : readEmbedded(path, options);
}

function existsSync(p) {
  const path = embeddedPath(p);
  return path === undefined ? fs.existsSync(p) : embedded(path) !== undefined;
}

module.exports = { ...fs, readFileSync, existsSync };
