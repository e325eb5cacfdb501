// @grpc/proto-loader for modules that load a .proto beside themselves (kubelet pod resources): an embedded
// file is parsed from its text with the options loadSync would use, then defined like loadSync does.
const loader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');
const { embeddedPath, readEmbedded } = require('./assets.cjs');

function loadSync(file, options = {}) {
  const path = embeddedPath(file);
  if (path === undefined) return loader.loadSync(file, options);
  const root = new protobuf.Root();
  protobuf.parse(readEmbedded(path, 'utf8'), root, options);
  root.resolveAll();
  return loader.fromJSON(root.toJSON(), options);
}

module.exports = { ...loader, loadSync };
