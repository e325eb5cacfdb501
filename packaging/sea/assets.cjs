// Files the bundled code reads beside its own module (build stamp, .proto, worker script, Swagger UI),
// embedded in the single executable as SEA assets under a directory that exists nowhere on disk.
// scripts/package.ts rewrites those modules' import.meta / __dirname to paths under that directory and
// points their fs, worker and loader imports at the shims of this folder, which serve these paths.

const { posix } = require('node:path');
const { fileURLToPath } = require('node:url');

/* global __CEEMS_SEA_ROOT__ */
const ROOT = __CEEMS_SEA_ROOT__;

/** The embedded path named by `p` (path, file: URL string or URL), or undefined for a real file. */
function embeddedPath(p) {
  let s;
  if (p instanceof URL) s = p.protocol === 'file:' ? fileURLToPath(p) : undefined;
  else if (typeof p === 'string') s = p.startsWith('file:') ? fileURLToPath(p) : p;
  if (s === undefined) return undefined;
  const n = posix.normalize(s);
  return n.startsWith(`${ROOT}/`) ? n : undefined;
}

/** Content of an embedded file, or undefined when the executable does not carry it. */
function embedded(path) {
  try {
    return Buffer.from(require('node:sea').getAsset(path));
  } catch {
    return undefined;
  }
}

/** The error fs would throw for a missing file. */
function enoent(path, syscall = 'open') {
  return Object.assign(new Error(`ENOENT: no such file or directory, ${syscall} '${path}'`), {
    code: 'ENOENT',
    errno: -2,
    syscall,
    path,
  });
}

/** Content of an embedded file as fs would give it (`encoding`: a string or fs options); ENOENT if absent. */
function readEmbedded(path, encoding) {
  const data = embedded(path);
  if (!data) throw enoent(path);
  const enc = typeof encoding === 'string' ? encoding : encoding?.encoding;
  return enc ? data.toString(enc) : data;
}

module.exports = { embeddedPath, embedded, readEmbedded };
