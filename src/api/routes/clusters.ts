// /clusters/admin (spec §7.6): clusters known from their units.

import { sendSuccess } from '../http.js';
import { CLUSTER_STRUCT } from '../jsonenc.js';
import { apiRoute, type RouteGroup } from './context.js';

export const clusterRoutes: RouteGroup = (app, ctx) => {
  apiRoute(
    app,
    `${ctx.api}/clusters/admin`,
    {
      access: 'admin',
      summary: 'Clusters and their resource managers (admin)',
      tags: ['clusters'],
      model: CLUSTER_STRUCT,
    },
    async (_req, reply) => {
      const rows = await ctx.reader.all(
        'SELECT DISTINCT cluster_id AS id, resource_manager AS manager FROM units ORDER BY cluster_id ASC',
      );
      return sendSuccess(reply, CLUSTER_STRUCT, rows);
    },
  );
};
