// Landing page at `/` (spec §5.1): program name and links to the API description and health.

import { buildInfo } from '../../common/buildinfo.js';
import type { RouteGroup } from './context.js';

const PAGE = `<!DOCTYPE html>
<html lang="en">
<head><meta charset="UTF-8"><title>ceems_api_server</title>
<style>body{font-family:sans-serif;margin:0}header{background:#3cc9beff;padding:1em}main{padding:1em}</style></head>
<body><header><h1>ceems_api_server</h1></header><main>
<p>CEEMS API server: compute units, usage and statistics of the Compute Energy &amp; Emissions Monitoring Stack.</p>
<p>Version: ${buildInfo.version} (revision ${buildInfo.revision})</p>
<ul><li><a href="swagger/index.html">API documentation</a></li><li><a href="health">Health</a></li></ul>
</main></body></html>
`;

export const landingRoutes: RouteGroup = (app) => {
  app.all('/', { schema: { hide: true } as never, config: { access: 'public' } }, async (_req, reply) =>
    reply.type('text/html; charset=utf-8').send(PAGE),
  );
};
