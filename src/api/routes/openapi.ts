// API description (spec §5.1): a Swagger 2.0 document generated from the route schemas at
// `/swagger/doc.json` (base path `/api/v1`) with Swagger UI under `/swagger/`.

import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { buildInfo } from '../../common/buildinfo.js';
import type { RouteAccessRegistry } from '../auth.js';

/** Must be registered before the routes so that their schemas are collected. */
export async function registerOpenApi(
  app: FastifyInstance,
  api: string,
  externalUrl: string,
  registry: RouteAccessRegistry,
): Promise<void> {
  let host: string | undefined;
  let schemes: string[] | undefined;
  if (externalUrl !== '') {
    const u = new URL(externalUrl);
    host = u.host;
    schemes = [u.protocol.replace(':', '')];
  }
  await app.register(swagger, {
    swagger: {
      info: {
        title: 'CEEMS API',
        description:
          'OpenAPI specification (Swagger) for CEEMS API server. The user is identified by the X-Grafana-User header (or the configured user headers). `from`/`to` are Unix seconds.',
        version: buildInfo.version,
      },
      basePath: api,
      host,
      schemes,
      produces: ['application/json'],
      securityDefinitions: {
        UserHeader: { type: 'apiKey', in: 'header', name: 'X-Grafana-User' },
      },
      security: [{ UserHeader: [] }],
    },
    stripBasePath: true,
  });
  // Swagger UI's routes cannot declare their access level themselves: all public (§5.1).
  await registry.thirdParty('public', () => app.register(swaggerUi, { routePrefix: '/swagger' }));
  const opts = { schema: { hide: true } as never, config: { access: 'public' as const } };
  app.get('/swagger/doc.json', opts, async (_req, reply) =>
    reply.type('application/json; charset=utf-8').send(JSON.stringify(app.swagger())),
  );
  app.get('/swagger/index.html', opts, async (_req, reply) => reply.redirect('./'));
}
