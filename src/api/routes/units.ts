// /units, /units/admin and /units/verify (spec §7.2, §7.3).

import { firstColumn, type SQLInputValue } from '../../common/sqlite.js';
import { ApiError, sendRows, sendSuccess } from '../http.js';
import { UNIT_STRUCT } from '../jsonenc.js';
import { METRIC_FIELDS, UNIT_FIELDS } from '../models.js';
import {
  ownUnitsClause,
  present,
  projectsOfUsers,
  type Query,
  selectFields,
  timeWindow,
  values,
  Where,
  windowClause,
} from '../query.js';
import { encodeQuery } from '../rowenc.js';
import { convertDatetimezone, isValidZone } from '../timefmt.js';
import { apiRoute, querySchema, type RouteContext, type RouteGroup } from './context.js';

const JSON_COLUMNS = new Set<string>(['allocation', 'tags', ...METRIC_FIELDS]);
const TIME_COLUMNS = new Set(['created_at', 'started_at', 'ended_at']);

const COMMON_PARAMS = {
  cluster_id: { description: 'Cluster ID', repeatable: true },
  uuid: { description: 'Unit UUID (disables the time window)', repeatable: true },
  project: { description: 'Project', repeatable: true },
  running: { description: 'Presence flag: include running units' },
  from: { description: 'Window start, Unix seconds' },
  to: { description: 'Window end, Unix seconds' },
  timezone: { description: 'IANA time zone of the returned times' },
  field: { description: 'Fields to return', repeatable: true },
};

/** Runs the unit query of §7.2 restricted by `owner` (SQL and parameters; undefined = every user). */
function queryUnits(ctx: RouteContext, q: Query, owner: [string, SQLInputValue[]] | undefined) {
  const fields = selectFields(q, UNIT_FIELDS);
  const where = new Where().add('ignore = 0');
  if (owner) where.add(owner[0], ...owner[1]);
  where.inIfAny('project', values(q, 'project'));
  where.inIfAny('cluster_id', values(q, 'cluster_id'));
  const uuids = values(q, 'uuid');
  if (uuids.length > 0) {
    where.in('uuid', uuids);
  } else {
    const w = timeWindow(q, ctx.now(), ctx.maxPeriodMs);
    const [sql, params] = windowClause('ended_at', w, ctx.timeZone, { running: present(q, 'running') });
    where.add(sql, ...params);
  }
  const zone = values(q, 'timezone')[0];
  const convert = zone !== undefined && zone !== '' && isValidZone(zone) ? zone : undefined;
  return encodeQuery(
    ctx.db(),
    `SELECT ${fields.join(', ')} FROM units WHERE ${where.sql()} ORDER BY cluster_id ASC, uuid ASC`,
    where.params,
    UNIT_STRUCT,
    {
      jsonColumns: JSON_COLUMNS,
      convert: convert ? { columns: TIME_COLUMNS, fn: (v) => convertDatetimezone(v, convert) } : undefined,
    },
  );
}

export const unitRoutes: RouteGroup = (app, ctx) => {
  apiRoute(
    app,
    `${ctx.api}/units`,
    {
      access: 'user',
      summary: 'Units of the logged user',
      description:
        'Units owned by the logged user (and service-account pods of the projects given with `project` the user is a member of). The window applies to `ended_at`; `uuid` disables it.',
      tags: ['units'],
      model: UNIT_STRUCT,
      querystring: querySchema(COMMON_PARAMS),
    },
    async (req, reply) => {
      const q = req.query as Query;
      return sendRows(reply, queryUnits(ctx, q, ownUnitsClause(req.ceemsUser, values(q, 'project'))));
    },
  );

  apiRoute(
    app,
    `${ctx.api}/units/admin`,
    {
      access: 'admin',
      summary: 'Units of any user (admin)',
      tags: ['units'],
      model: UNIT_STRUCT,
      querystring: querySchema({ ...COMMON_PARAMS, user: { description: 'Users', repeatable: true } }),
    },
    async (req, reply) => {
      const q = req.query as Query;
      const users = values(q, 'user');
      const owner: [string, SQLInputValue[]] | undefined =
        users.length > 0 ? [`username IN (${users.map(() => '?').join(', ')})`, users] : undefined;
      return sendRows(reply, queryUnits(ctx, q, owner));
    },
  );

  apiRoute(
    app,
    `${ctx.api}/units/verify`,
    {
      access: 'user',
      summary: 'Verify that the logged user may access units',
      description:
        'Passes when every requested uuid belongs to a project the logged user is a member of, in one of the given clusters.',
      tags: ['units'],
      querystring: querySchema({
        uuid: { description: 'Unit UUIDs', repeatable: true },
        cluster_id: { description: 'Cluster IDs (required)', repeatable: true },
      }),
    },
    async (req, reply) => {
      const q = req.query as Query;
      // Empty values (`uuid=`) name nothing: they count as missing.
      const uuids = values(q, 'uuid').filter((u) => u !== '');
      if (uuids.length === 0) throw new ApiError('bad_data', 'uuids missing in the request');
      const clusters = values(q, 'cluster_id').filter((c) => c !== '');
      // A missing parameter is the client's mistake, not a denial [D-API-19]: say which one.
      if (clusters.length === 0) throw new ApiError('bad_data', 'cluster_id missing in the request');
      const user = req.ceemsUser;
      let ok = user !== '';
      if (ok) {
        const [projects, pparams] = projectsOfUsers([user]);
        const where = new Where()
          .add(`(cluster_id, project) IN (${projects})`, ...pparams)
          .in('cluster_id', clusters)
          .in('uuid', uuids);
        const found = new Set(
          firstColumn<string>(
            ctx.db().prepare(`SELECT uuid FROM units WHERE ${where.sql()}`),
            ...where.params,
          ),
        );
        ok = uuids.every((u) => found.has(u));
      }
      if (!ok) throw new ApiError('forbidden', 'user do not have permissions on uuids');
      return sendSuccess(reply, undefined, null);
    },
  );
};
