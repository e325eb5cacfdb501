// /health (spec §5.1): 200 when the DB answers, 503 `KO` otherwise.

import type { RouteGroup } from './context.js';

export const healthRoutes: RouteGroup = (app, ctx) => {
  app.all(
    '/health',
    { schema: { summary: 'Health of the API server', tags: ['health'] }, config: { access: 'public' } },
    async (req, reply) => {
      // CORS preflight: answered without running the check (§5.3).
      if (req.method === 'OPTIONS') return reply.code(200).header('Content-Length', '0').send();
      reply.header('X-Content-Type-Options', 'nosniff').type('text/plain; charset=utf-8');
      try {
        await ctx.reader.get('SELECT 1');
      } catch (e) {
        ctx.log.error({ err: (e as Error).message }, 'DB ping failed');
        return reply.code(503).send('KO');
      }
      return reply.code(200).send('CEEMS API Server is healthy');
    },
  );
};
