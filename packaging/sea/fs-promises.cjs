// node:fs/promises for modules that read files beside themselves (Swagger UI's logo).
const fsp = require('node:fs/promises');
const { embeddedPath, readEmbedded } = require('./assets.cjs');

async function readFile(p, options) {
  const path = embeddedPath(p);
  return path === undefined ? fsp.readFile(p, options) : readEmbedded(path, options);
}

module.exports = { ...fsp, readFile };
