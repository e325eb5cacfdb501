// /units, /units/admin and /units/verify (spec §7.2, §7.3).

import type { SQLInputValue } from '../../common/sqlite.js';
import { parseMetricMap } from '../db/functions.js';
import { FOOTPRINT_SCHEMA_VERSION, footprintRecord } from '../footprint.js';
import { FOOTPRINT_RECORD_SCHEMA } from '../footprint-schema.js';
import { ApiError, sendJson, sendRows, sendSuccess } from '../http.js';
import { UNIT_STRUCT } from '../jsonenc.js';
import { METRIC_FIELDS, UNIT_FIELDS, type Unit } from '../models.js';
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

/** The WHERE clause of the unit query of §7.2 restricted by `owner` (SQL and parameters; undefined = every user). */
function unitsWhere(ctx: RouteContext, q: Query, owner: [string, SQLInputValue[]] | undefined): Where {
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
  return where;
}

/** The `timezone` parameter when it names a zone the times can be converted to. */
function outputZone(q: Query): string | undefined {
  const zone = values(q, 'timezone')[0];
  return zone !== undefined && zone !== '' && isValidZone(zone) ? zone : undefined;
}

/** Runs the unit query of §7.2 restricted by `owner`. */
function queryUnits(ctx: RouteContext, q: Query, owner: [string, SQLInputValue[]] | undefined) {
  const fields = selectFields(q, UNIT_FIELDS);
  const where = unitsWhere(ctx, q, owner);
  const convert = outputZone(q);
  return encodeQuery(
    ctx.reader,
    `SELECT ${fields.join(', ')} FROM units WHERE ${where.sql()} ORDER BY cluster_id ASC, uuid ASC`,
    where.params,
    UNIT_STRUCT,
    {
      jsonColumns: JSON_COLUMNS,
      convert: convert ? { columns: TIME_COLUMNS, fn: (v) => convertDatetimezone(v, convert) } : undefined,
    },
  );
}

const { field: _field, ...FOOTPRINT_PARAMS } = COMMON_PARAMS;
const ADMIN_PARAMS = { user: { description: 'Users', repeatable: true } };

/** The admin routes' owner restriction: the listed users, or everybody. */
function usersClause(users: string[]): [string, SQLInputValue[]] | undefined {
  return users.length > 0 ? [`username IN (${users.map(() => '?').join(', ')})`, users] : undefined;
}

/** The units of §7.2 restricted by `owner`, as footprint records. */
async function queryFootprints(ctx: RouteContext, q: Query, owner: [string, SQLInputValue[]] | undefined) {
  const where = unitsWhere(ctx, q, owner);
  const zone = outputZone(q);
  const rows = await ctx.reader.all(
    `SELECT ${UNIT_FIELDS.join(', ')} FROM units WHERE ${where.sql()} ORDER BY cluster_id ASC, uuid ASC`,
    where.params,
  );
  return rows.map((row) => {
    const unit = decodeUnitRow(row, zone);
    return footprintRecord(unit, ctx.embodied(unit.cluster_id ?? ''));
  });
}

/** A stored unit row as the model: JSON columns decoded (metric maps leniently), times in `zone`. */
function decodeUnitRow(row: Record<string, unknown>, zone: string | undefined): Unit {
  const unit: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    if ((METRIC_FIELDS as readonly string[]).includes(k)) unit[k] = parseMetricMap(v);
    else if (JSON_COLUMNS.has(k)) unit[k] = parseObject(v);
    else if (zone && TIME_COLUMNS.has(k) && typeof v === 'string') unit[k] = convertDatetimezone(v, zone);
    else unit[k] = v;
  }
  return unit as unknown as Unit;
}

/** A stored JSON object column (`allocation`, `tags`); anything else counts as empty. */
function parseObject(text: unknown): Record<string, unknown> {
  try {
    const v = typeof text === 'string' ? JSON.parse(text) : null;
    return v && typeof v === 'object' && !Array.isArray(v) ? v : {};
  } catch {
    return {};
  }
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
      const owner = ownUnitsClause(ctx.reader.d, req.ceemsUser, values(q, 'project'));
      return sendRows(reply, await queryUnits(ctx, q, owner));
    },
  );

  const footprintDoc = {
    tags: ['units'],
    dataSchema: FOOTPRINT_RECORD_SCHEMA,
    description: `The units of the matching unit route (same parameters but \`field\`, same access rule) as footprint records of schema version ${FOOTPRINT_SCHEMA_VERSION} (docs/footprint-schema.json): energy with its power source and PUE, operational emissions per provider with their factor.`,
  };
  apiRoute(
    app,
    `${ctx.api}/units/footprint`,
    {
      ...footprintDoc,
      access: 'user',
      summary: 'Footprint records of the units of the logged user',
      querystring: querySchema(FOOTPRINT_PARAMS),
    },
    async (req, reply) => {
      const q = req.query as Query;
      const owner = ownUnitsClause(ctx.reader.d, req.ceemsUser, values(q, 'project'));
      return sendJson(reply, await queryFootprints(ctx, q, owner));
    },
  );

  apiRoute(
    app,
    `${ctx.api}/units/footprint/admin`,
    {
      ...footprintDoc,
      access: 'admin',
      summary: 'Footprint records of the units of any user (admin)',
      querystring: querySchema({ ...FOOTPRINT_PARAMS, user: ADMIN_PARAMS.user }),
    },
    async (req, reply) => {
      const q = req.query as Query;
      return sendJson(reply, await queryFootprints(ctx, q, usersClause(values(q, 'user'))));
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
      querystring: querySchema({ ...COMMON_PARAMS, ...ADMIN_PARAMS }),
    },
    async (req, reply) => {
      const q = req.query as Query;
      return sendRows(reply, await queryUnits(ctx, q, usersClause(values(q, 'user'))));
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
        const [projects, pparams] = projectsOfUsers(ctx.reader.d, [user]);
        const where = new Where()
          .add(`(cluster_id, project) IN (${projects})`, ...pparams)
          .in('cluster_id', clusters)
          .in('uuid', uuids);
        const rows = await ctx.reader.all<{ uuid: string }>(
          `SELECT uuid FROM units WHERE ${where.sql()}`,
          where.params,
        );
        const found = new Set(rows.map((r) => r.uuid));
        ok = uuids.every((u) => found.has(u));
      }
      if (!ok) throw new ApiError('forbidden', 'user do not have permissions on uuids');
      return sendSuccess(reply, undefined, null);
    },
  );
};
