// node:worker_threads for modules that start a worker from a script beside themselves (the API server's DB
// writer): the script is embedded, already bundled, and runs as an eval worker.
const wt = require('node:worker_threads');
const { embeddedPath, readEmbedded } = require('./assets.cjs');

class Worker extends wt.Worker {
  constructor(file, options = {}) {
    const path = options.eval ? undefined : embeddedPath(file);
    if (path === undefined) {
      super(file, options);
      return;
    }
    super(readEmbedded(path, 'utf8'), { ...options, eval: true });
  }
}

module.exports = { ...wt, Worker };
