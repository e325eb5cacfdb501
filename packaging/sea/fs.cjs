// node:fs for modules that read files beside themselves: embedded paths come from the executable.
const fs = require('node:fs');
const { embedded, embeddedPath, enoent } = require('./assets.cjs');

function readFileSync(p, options) {
  const path = embeddedPath(p);
  if (path === undefined) return fs.readFileSync(p, options);
  const data = embedded(path);
  if (!data) throw enoent(path);
  const encoding = typeof options === 'string' ? options : options?.encoding;
  return encoding ? data.toString(encoding) : data;
}

function existsSync(p) {
  const path = embeddedPath(p);
  return path === undefined ? fs.existsSync(p) : embedded(path) !== undefined;
}

module.exports = { ...fs, readFileSync, existsSync };
