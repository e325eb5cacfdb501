// /users and /users/admin (spec §7.4).

import { sendRows } from '../http.js';
import { USER_STRUCT } from '../jsonenc.js';
import { USER_FIELDS } from '../models.js';
import { type Query, selectFields, userSet, values, Where } from '../query.js';
import { encodeQuery } from '../rowenc.js';
import { apiRoute, querySchema, type RouteContext, type RouteGroup } from './context.js';

const JSON_COLUMNS = new Set(['projects', 'tags']);

function queryUsers(ctx: RouteContext, q: Query, table: 'users' | 'admin_users', users?: readonly string[]) {
  const fields = selectFields(q, USER_FIELDS);
  const where = new Where();
  if (users) where.in('name', users);
  if (table === 'users') where.inIfAny('cluster_id', values(q, 'cluster_id'));
  return encodeQuery(
    ctx.reader,
    `SELECT ${fields.join(', ')} FROM ${table} WHERE ${where.sql()} ORDER BY cluster_id ASC, name ASC`,
    where.params,
    USER_STRUCT,
    { jsonColumns: JSON_COLUMNS },
  );
}

export const userRoutes: RouteGroup = (app, ctx) => {
  apiRoute(
    app,
    `${ctx.api}/users`,
    {
      access: 'user',
      summary: 'User records of the logged user',
      tags: ['users'],
      model: USER_STRUCT,
      querystring: querySchema({
        cluster_id: { description: 'Cluster IDs', repeatable: true },
        project: { description: 'Projects (adds their service-account pseudo-users)', repeatable: true },
        field: { description: 'Fields to return', repeatable: true },
      }),
    },
    async (req, reply) => {
      const q = req.query as Query;
      const users = await userSet(ctx.reader, req.ceemsUser, values(q, 'project'));
      return sendRows(reply, await queryUsers(ctx, q, 'users', users));
    },
  );

  apiRoute(
    app,
    `${ctx.api}/users/admin`,
    {
      access: 'admin',
      summary: 'Any users, or the admin users with role=admin (admin)',
      tags: ['users'],
      model: USER_STRUCT,
      querystring: querySchema({
        user: { description: 'Users (absent = all)', repeatable: true },
        cluster_id: { description: 'Cluster IDs', repeatable: true },
        role: { description: '`admin` lists the admin users' },
        field: { description: 'Fields to return', repeatable: true },
      }),
    },
    async (req, reply) => {
      const q = req.query as Query;
      const users = values(q, 'user');
      const table = values(q, 'role')[0] === 'admin' ? 'admin_users' : 'users';
      return sendRows(reply, await queryUsers(ctx, q, table, users.length > 0 ? users : undefined));
    },
  );
};
