// /stats/current/admin and /stats/global/admin (spec §7.8): per-cluster unit, project and user counts,
// and the energy of the cluster's nodes with the share no unit got (issue 20, B4).

import { sendSuccess } from '../http.js';
import { STAT_STRUCT } from '../jsonenc.js';
import { NODE_ENERGY_FIELD } from '../models.js';
import { type Query, timeWindow, values, Where, windowClause } from '../query.js';
import { formatDatetime, midnightDatetime } from '../timefmt.js';
import { apiRoute, querySchema, type RouteGroup } from './context.js';

// MAX(resource_manager): one manager per cluster, and PostgreSQL takes no bare column beside GROUP BY.
const STATS_SQL = `SELECT cluster_id, MAX(resource_manager) AS resource_manager, COUNT(*) AS num_units,
  COUNT(CASE WHEN ended_at_ts > 0 THEN 1 END) AS num_inactive_units,
  COUNT(CASE WHEN ended_at_ts = 0 THEN 1 END) AS num_active_units,
  COUNT(DISTINCT project) AS num_projects, COUNT(DISTINCT username) AS num_users
FROM units WHERE`;

/** Node energy per cluster: the days of the window (`current`) or all of them (`global`). */
const ENERGY_SQL = `SELECT cluster_id, MAX(resource_manager) AS resource_manager,
  sum_metric_map_agg(${NODE_ENERGY_FIELD}) AS energy FROM cluster_energy WHERE`;

interface EnergyRow {
  cluster_id: string;
  resource_manager: string;
  energy: string;
}

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
        const energyWhere = new Where();
        if (mode === 'current') {
          const w = timeWindow(q, ctx.now(), ctx.maxPeriodMs);
          const [sql, params] = windowClause('ended_at', w, ctx.timeZone, { running: true });
          where.add(sql, ...params);
          energyWhere.add(
            'last_updated_at BETWEEN ? AND ?',
            midnightDatetime(w.from * 1000, ctx.timeZone),
            formatDatetime(w.to * 1000, ctx.timeZone),
          );
        }
        where.inIfAny('cluster_id', values(q, 'cluster_id'));
        energyWhere.inIfAny('cluster_id', values(q, 'cluster_id'));
        const rows = await ctx.reader.all(
          `${STATS_SQL} ${where.sql()} GROUP BY cluster_id ORDER BY cluster_id ASC`,
          where.params,
        );
        const energyRows = await ctx.reader.all<EnergyRow>(
          `${ENERGY_SQL} ${energyWhere.sql()} GROUP BY cluster_id`,
          energyWhere.params,
        );
        const energy = new Map(energyRows.map((r) => [r.cluster_id, r]));
        for (const r of rows) {
          const e = energy.get(r.cluster_id as string);
          if (e) r[NODE_ENERGY_FIELD] = JSON.parse(e.energy);
          energy.delete(r.cluster_id as string);
        }
        // a cluster whose nodes drew power while it had no unit in the window (idle): no units, its energy
        for (const e of energy.values())
          rows.push({
            cluster_id: e.cluster_id,
            resource_manager: e.resource_manager,
            num_units: 0,
            num_inactive_units: 0,
            num_active_units: 0,
            num_projects: 0,
            num_users: 0,
            [NODE_ENERGY_FIELD]: JSON.parse(e.energy),
          });
        // the SQL's order (cluster_id ASC, binary) with those added
        if (energy.size > 0)
          rows.sort((a, b) => {
            const [x, y] = [String(a.cluster_id), String(b.cluster_id)];
            return x < y ? -1 : x > y ? 1 : 0;
          });
        return sendSuccess(reply, STAT_STRUCT, rows);
      },
    );
  }
};
