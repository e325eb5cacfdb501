// node:fs/promises for modules that read files beside themselves (Swagger UI's logo).
const fsp = require('node:fs/promises');
const { embedded, embeddedPath, enoent } = require('./assets.cjs');

async function readFile(p, options) {
  const path = embeddedPath(p);
  if (path === undefined) return fsp.readFile(p, options);
  const data = embedded(path);
  if (!data) throw enoent(path);
  const encoding = typeof options === 'string' ? options : options?.encoding;
  return encoding ? data.toString(encoding) : data;
}

module.exports = { ...fsp, readFile };
