// /projects and /projects/admin (spec §7.5).

import { sendRows } from '../http.js';
import { PROJECT_STRUCT } from '../jsonenc.js';
import { PROJECT_FIELDS } from '../models.js';
import { projectsOfUsers, type Query, selectFields, userSet, values, Where } from '../query.js';
import { encodeQuery } from '../rowenc.js';
import { apiRoute, querySchema, type RouteContext, type RouteGroup } from './context.js';

const JSON_COLUMNS = new Set(['users', 'tags']);
const PARAMS = {
  project: { description: 'Projects', repeatable: true },
  cluster_id: { description: 'Cluster IDs', repeatable: true },
  field: { description: 'Fields to return', repeatable: true },
};

function queryProjects(ctx: RouteContext, q: Query, users: readonly string[]) {
  const fields = selectFields(q, PROJECT_FIELDS);
  const [sub, subParams] = projectsOfUsers(ctx.reader.d, users);
  const where = new Where()
    .add(`(cluster_id, name) IN (${sub})`, ...subParams)
    .inIfAny('name', values(q, 'project'))
    .inIfAny('cluster_id', values(q, 'cluster_id'));
  return encodeQuery(
    ctx.reader,
    `SELECT ${fields.join(', ')} FROM projects WHERE ${where.sql()} ORDER BY cluster_id ASC, name ASC`,
    where.params,
    PROJECT_STRUCT,
    { jsonColumns: JSON_COLUMNS },
  );
}

export const projectRoutes: RouteGroup = (app, ctx) => {
  apiRoute(
    app,
    `${ctx.api}/projects`,
    {
      access: 'user',
      summary: 'Projects of the logged user',
      tags: ['projects'],
      model: PROJECT_STRUCT,
      querystring: querySchema(PARAMS),
    },
    async (req, reply) => {
      const q = req.query as Query;
      const users = await userSet(ctx.reader, req.ceemsUser, values(q, 'project'));
      return sendRows(reply, await queryProjects(ctx, q, users));
    },
  );
  apiRoute(
    app,
    `${ctx.api}/projects/admin`,
    {
      access: 'admin',
      summary: 'Any projects having members (admin)',
      tags: ['projects'],
      model: PROJECT_STRUCT,
      querystring: querySchema(PARAMS),
    },
    async (req, reply) => {
      return sendRows(reply, await queryProjects(ctx, req.query as Query, []));
    },
  );
};
