// @fastify/static for an embedded directory (Swagger UI's files): GET (and HEAD) <prefix>/<file> answer
// the embedded file with its content type; anything else is the app's 404. Real directories go to
// @fastify/static itself.
const { extname } = require('node:path');
const fp = require('fastify-plugin');
const fastifyStatic = require('@fastify/static');
const { embedded, embeddedPath } = require('./assets.cjs');

const TYPES = {
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.js': 'application/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

async function embeddedStatic(fastify, opts) {
  const root = embeddedPath(opts.root);
  if (root === undefined) return fastify.register(fastifyStatic, opts);
  if (opts.serve === false) return;
  const prefix = (opts.prefix ?? '').replace(/\/$/, '');
  fastify.get(`${prefix}/*`, { schema: { hide: true } }, (req, reply) => {
    const name = req.params['*'];
    const data = /^[\w.-]+$/.test(name) ? embedded(`${root}/${name}`) : undefined;
    if (!data) return reply.callNotFound();
    return reply.type(TYPES[extname(name)] ?? 'application/octet-stream').send(data);
  });
}

module.exports = fp(embeddedStatic, { fastify: '5.x', name: '@fastify/static' });
