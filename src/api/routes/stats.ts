// /stats/current/admin and /stats/global/admin (spec §7.8): per-cluster unit, project and user counts.

import { sendSuccess } from '../http.js';
import { STAT_STRUCT } from '../jsonenc.js';
import { type Query, timeWindow, values, Where, windowClause } from '../query.js';
import { apiRoute, querySchema, type RouteGroup } from './context.js';

const STATS_SQL = `SELECT cluster_id, resource_manager, COUNT(*) AS num_units,
  COUNT(CASE WHEN ended_at_ts > 0 THEN 1 END) AS num_inactive_units,
  COUNT(CASE WHEN ended_at_ts = 0 THEN 1 END) AS num_active_units,
  COUNT(DISTINCT project) AS num_projects, COUNT(DISTINCT username) AS num_users
FROM units WHERE`;

export const statsRoutes: RouteGroup = (app, ctx) => {
  for (const mode of ['current', 'global'] as const) {
    apiRoute(
      app,
      `${ctx.api}/stats/${mode}/admin`,
      {
        access: 'admin',
        summary: `Per-cluster statistics, ${mode === 'current' ? 'units ended in the window or running' : 'all units'} (admin)`,
        tags: ['stats'],
        model: STAT_STRUCT,
        querystring: querySchema({
          cluster_id: { description: 'Cluster IDs', repeatable: true },
          user: { description: 'Accepted and ignored', repeatable: true },
          ...(mode === 'current'
            ? {
                from: { description: 'Window start, Unix seconds' },
                to: { description: 'Window end, Unix seconds' },
              }
            : {}),
        }),
      },
      async (req, reply) => {
        const q = req.query as Query;
        const where = new Where();
        if (mode === 'current') {
          const w = timeWindow(q, ctx.now(), ctx.maxPeriodMs);
          const [sql, params] = windowClause('ended_at', w, ctx.timeZone, { running: true });
          where.add(sql, ...params);
        }
        where.inIfAny('cluster_id', values(q, 'cluster_id'));
        const rows = ctx
          .db()
          .prepare(`${STATS_SQL} ${where.sql()} GROUP BY cluster_id ORDER BY cluster_id ASC`)
          .all(...where.params) as Record<string, unknown>[];
        return sendSuccess(reply, STAT_STRUCT, rows);
      },
    );
  }
};
