// The floor of any Node.js reverse proxy (bench/lb): node:http in front, undici dispatch to one backend
// behind, the response streamed back as it arrives, no checks, no header rewriting. Whatever the LB costs
// above this per query is its own work; this much any proxy on this runtime pays.
// Usage: node bench/lib/bare-proxy.ts <backend origin>; prints `listening <port>` on stdout.

import { createServer, type IncomingHttpHeaders } from 'node:http';
import { Agent, type Dispatcher } from 'undici';

const origin = process.argv[2];
if (!origin) throw new Error('usage: bare-proxy.ts <backend origin>');
const agent = new Agent();

const server = createServer((req, res) => {
  const headers: Record<string, string | string[]> = {};
  for (const k in req.headers) if (k !== 'host' && k !== 'connection') headers[k] = req.headers[k]!;
  agent.dispatch(
    { origin, path: req.url!, method: req.method as Dispatcher.HttpMethod, headers },
    {
      onRequestStart() {}, // marks the handler as undici's v2 dispatch interface
      onResponseStart(_c, status: number, h: IncomingHttpHeaders) {
        const out: Record<string, string | string[]> = {};
        for (const k in h) if (k !== 'connection' && k !== 'keep-alive') out[k] = h[k]!;
        res.writeHead(status, out);
      },
      onResponseData(c, chunk: Buffer) {
        if (!res.write(chunk)) {
          c.pause();
          res.once('drain', () => c.resume());
        }
      },
      onResponseEnd() {
        res.end();
      },
      onResponseError(_c, err: Error) {
        if (!res.headersSent) res.writeHead(502).end(err.message);
        else res.destroy();
      },
    },
  );
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  console.log(`listening ${typeof address === 'object' && address ? address.port : ''}`);
});
process.on('SIGTERM', () => process.exit(0));
