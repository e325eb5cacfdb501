// What the web view reads from the API server's database: one page of units (sorted, filtered and
// counted in SQL, so a user with 10,000 units costs one indexed scan, not 10,000 rows sent to the
// browser), one unit, project totals and the cluster overview. Every query of a non-admin is bounded by
// `username = ?` (units) or the user's project memberships (totals): the only ownership rules here.

import { addMetricMaps, parseMetricMap } from '../api/db/functions.js';
import { energySources, type Provenance, provenanceOf } from '../api/footprint.js';
import type { MetricMap } from '../api/models.js';
import { projectsOfUsers, Where } from '../api/query.js';
import type { SQLInputValue } from '../common/sqlite.js';
import { SQLITE_DIALECT, type SqlDialect, type SqlReader } from '../common/sqlreader.js';
import type { EnergySource } from './lb.js';

/** Host + GPU energy of a unit (kWh); absent keys count as 0. */
const energySql = (d: SqlDialect) =>
  `(COALESCE(${d.jsonNumber('total_cpu_energy_usage_kwh', 'total')}, 0) + COALESCE(${d.jsonNumber('total_gpu_energy_usage_kwh', 'total')}, 0))`;
/** Emission providers in order of preference: real-time grids first, the static OWID table last. */
export const PROVIDERS = ['emaps', 'rte', 'owid'] as const;
const emissionsOf = (d: SqlDialect, col: string) =>
  `COALESCE(${PROVIDERS.map((p) => d.jsonNumber(col, `${p}_total`)).join(', ')}, 0)`;
const emissionsSql = (d: SqlDialect) =>
  `(${emissionsOf(d, 'total_cpu_emissions_gms')} + ${emissionsOf(d, 'total_gpu_emissions_gms')})`;

/** Sortable columns: the only text of a request that reaches SQL other than bound values. */
const sorts = (d: SqlDialect): Record<string, string> => ({
  uuid: 'length(uuid) {dir}, uuid {dir}',
  name: 'name {dir}',
  project: 'project {dir}',
  user: 'username {dir}',
  state: 'state {dir}',
  start: 'started_at_ts {dir}',
  end: 'CASE WHEN ended_at_ts = 0 THEN 1 ELSE 0 END {dir}, ended_at_ts {dir}',
  energy: `${energySql(d)} {dir}`,
  emissions: `${emissionsSql(d)} {dir}`,
  cpu: `COALESCE(${d.jsonNumber('avg_cpu_usage', 'global')}, 0) {dir}`,
});
export const SORT_KEYS = Object.keys(sorts(SQLITE_DIALECT));

export interface UnitRow {
  cluster_id: string;
  resource_manager: string;
  uuid: string;
  name: string;
  project: string;
  username: string;
  state: string;
  started_at: string;
  ended_at: string;
  started_at_ts: number;
  ended_at_ts: number;
  elapsed: string;
  energy_kwh: number;
  emissions_g: number;
  /** Provider of `emissions_g` (`emaps`, `rte`, `owid`), '' when the unit has no emissions. */
  emissions_provider: string;
  avg_cpu_usage: number | null;
  avg_cpu_mem_usage: number | null;
  avg_gpu_usage: number | null;
  /** Nodes of the unit (SLURM `nodelistexp`), for the measured/estimated flag. */
  hosts: string[];
  /** Measured or estimated from the stored provenance of its energy (issue 20); `unknown` without it. */
  energy_source: EnergySource;
}

export interface UnitQuery {
  /** Only this user's units; undefined = every user (admin). */
  owner?: string;
  /** Free text matched against uuid, name, project, user and state. */
  text?: string;
  project?: string;
  cluster?: string;
  sort: string;
  desc: boolean;
  page: number;
  size: number;
}

export interface UnitPage {
  total: number;
  page: number;
  size: number;
  rows: UnitRow[];
}

const LIST_COLUMNS = `cluster_id, resource_manager, uuid, name, project, username, state, started_at, ended_at,
  started_at_ts, ended_at_ts, elapsed, total_cpu_energy_usage_kwh, total_gpu_energy_usage_kwh,
  total_cpu_emissions_gms, total_gpu_emissions_gms, avg_cpu_usage, avg_cpu_mem_usage, avg_gpu_usage, tags,
  total_cpu_energy_by_source_kwh, total_gpu_energy_by_source_kwh`;

/** `%…%` LIKE pattern of a user's text with `%`, `_` and `\` taken literally. */
const likePattern = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

function parseMap(text: unknown): Record<string, unknown> {
  if (typeof text !== 'string' || text === '') return {};
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** Energy, emissions (preferred provider) and averages of a stored row. */
export function toUnitRow(r: Record<string, unknown>): UnitRow {
  const cpuE = parseMap(r.total_cpu_energy_usage_kwh);
  const gpuE = parseMap(r.total_gpu_energy_usage_kwh);
  const cpuC = parseMap(r.total_cpu_emissions_gms);
  const gpuC = parseMap(r.total_gpu_emissions_gms);
  let provider = '';
  let grams = 0;
  for (const p of PROVIDERS) {
    const a = num(cpuC[`${p}_total`]);
    const b = num(gpuC[`${p}_total`]);
    if (a === null && b === null) continue;
    provider = p;
    grams = (a ?? 0) + (b ?? 0);
    break;
  }
  const tags = parseMap(r.tags);
  const hostText = typeof tags.nodelistexp === 'string' ? tags.nodelistexp : '';
  return {
    cluster_id: String(r.cluster_id ?? ''),
    resource_manager: String(r.resource_manager ?? ''),
    uuid: String(r.uuid ?? ''),
    name: String(r.name ?? ''),
    project: String(r.project ?? ''),
    username: String(r.username ?? ''),
    state: String(r.state ?? ''),
    started_at: String(r.started_at ?? ''),
    ended_at: String(r.ended_at ?? ''),
    started_at_ts: Number(r.started_at_ts ?? 0),
    ended_at_ts: Number(r.ended_at_ts ?? 0),
    elapsed: String(r.elapsed ?? ''),
    energy_kwh: (num(cpuE.total) ?? 0) + (num(gpuE.total) ?? 0),
    emissions_g: grams,
    emissions_provider: provider,
    avg_cpu_usage: num(parseMap(r.avg_cpu_usage).global),
    avg_cpu_mem_usage: num(parseMap(r.avg_cpu_mem_usage).global),
    avg_gpu_usage: num(parseMap(r.avg_gpu_usage).global),
    hosts: hostText ? hostText.split('|').filter(Boolean) : [],
    energy_source: storedSource([
      [num(cpuE.total) ?? 0, parseMetricMap(r.total_cpu_energy_by_source_kwh)],
      [num(gpuE.total) ?? 0, parseMetricMap(r.total_gpu_energy_by_source_kwh)],
    ]),
  };
}

const PROVENANCE_SOURCE: Partial<Record<Provenance, EnergySource>> = {
  measured: 'measured',
  estimated: 'estimated',
  partly_estimated: 'mixed',
};

/** The flag of a unit from each part's kWh and kWh by power source. */
function storedSource(parts: [number, MetricMap][]): EnergySource {
  const sources = parts.reduce<MetricMap>(
    (all, [kwh, bySource]) => addMetricMaps(all, energySources(kwh, bySource)),
    {},
  );
  return PROVENANCE_SOURCE[provenanceOf(sources)] ?? 'unknown';
}

function unitWhere(d: SqlDialect, q: Omit<UnitQuery, 'sort' | 'desc' | 'page' | 'size'>): Where {
  const where = new Where().add('ignore = 0');
  if (q.owner !== undefined) where.add('username = ?', q.owner);
  if (q.project) where.add('project = ?', q.project);
  if (q.cluster) where.add('cluster_id = ?', q.cluster);
  if (q.text) {
    const p = likePattern(q.text);
    const like = (column: string) => `${column} ${d.like} ? ESCAPE '\\'`;
    where.add(`(${['uuid', 'name', 'project', 'username', 'state'].map(like).join(' OR ')})`, p, p, p, p, p);
  }
  return where;
}

/** One page of units, sorted (ties broken by row id) and counted. */
export async function listUnits(reader: SqlReader, q: UnitQuery): Promise<UnitPage> {
  const where = unitWhere(reader.d, q);
  const order = sorts(reader.d);
  const orderBy = (order[q.sort] ?? order.start!).replaceAll('{dir}', q.desc ? 'DESC' : 'ASC');
  const count = await reader.get<{ n: number }>(
    `SELECT COUNT(*) AS n FROM units WHERE ${where.sql()}`,
    where.params,
  );
  const rows = await reader.all(
    `SELECT ${LIST_COLUMNS} FROM units WHERE ${where.sql()} ORDER BY ${orderBy}, id ${q.desc ? 'DESC' : 'ASC'} LIMIT ? OFFSET ?`,
    [...where.params, q.size, (q.page - 1) * q.size],
  );
  return { total: Number(count?.n ?? 0), page: q.page, size: q.size, rows: rows.map(toUnitRow) };
}

/** The latest stored row of a unit (SLURM ids can repeat across start times), or undefined. */
export async function getUnit(
  reader: SqlReader,
  cluster: string,
  uuid: string,
): Promise<UnitRow | undefined> {
  const r = await reader.get(
    `SELECT ${LIST_COLUMNS} FROM units WHERE cluster_id = ? AND uuid = ? AND ignore = 0 ORDER BY started_at_ts DESC, id DESC LIMIT 1`,
    [cluster, uuid],
  );
  return r ? toUnitRow(r) : undefined;
}

export interface ProjectTotal {
  cluster_id: string;
  project: string;
  units: number;
  energy_kwh: number;
  emissions_g: number;
  /** The asking user's own share (equal to the totals for an admin's view of every user). */
  own_units: number;
  own_energy_kwh: number;
  own_emissions_g: number;
}

/**
 * Totals of every project the user is a member of (all members' units, as `/usage` shows a project's
 * members to each other), with the user's own share; `user` undefined = every project (admin).
 */
export async function projectTotals(reader: SqlReader, user: string | undefined): Promise<ProjectTotal[]> {
  const { d } = reader;
  // Driven from the user's memberships into units by (cluster_id, project): an index search per project,
  // never a scan of every unit (CROSS JOIN keeps SQLite from reordering; an admin reads them all anyway).
  const [members, params] =
    user === undefined
      ? ['SELECT DISTINCT cluster_id, project AS name FROM units', [] as SQLInputValue[]]
      : projectsOfUsers(d, [user]);
  const mine = user === undefined ? '1 = 1' : 'u.username = ?';
  const own: SQLInputValue[] = user === undefined ? [] : [user, user, user];
  const energy = energySql(d);
  const emissions = emissionsSql(d);
  const rows = await reader.all(
    `SELECT u.cluster_id AS cluster_id, u.project AS project, COUNT(*) AS units,
         SUM(${energy}) AS energy_kwh, SUM(${emissions}) AS emissions_g,
         SUM(CASE WHEN ${mine} THEN 1 ELSE 0 END) AS own_units,
         SUM(CASE WHEN ${mine} THEN ${energy} ELSE 0 END) AS own_energy_kwh,
         SUM(CASE WHEN ${mine} THEN ${emissions} ELSE 0 END) AS own_emissions_g
       FROM (${members}) AS p ${d.fixedJoin} units AS u ON u.cluster_id = p.cluster_id AND u.project = p.name
       WHERE u.ignore = 0 GROUP BY u.cluster_id, u.project ORDER BY energy_kwh DESC, u.cluster_id, u.project`,
    [...own, ...params],
  );
  return rows.map((r) => {
    const o = r as Record<string, unknown>;
    return {
      cluster_id: String(o.cluster_id),
      project: String(o.project),
      units: Number(o.units),
      energy_kwh: Number(o.energy_kwh ?? 0),
      emissions_g: Number(o.emissions_g ?? 0),
      own_units: Number(o.own_units),
      own_energy_kwh: Number(o.own_energy_kwh ?? 0),
      own_emissions_g: Number(o.own_emissions_g ?? 0),
    };
  });
}

export interface ClusterOverview {
  clusters: Array<{
    cluster_id: string;
    resource_manager: string;
    units: number;
    running: number;
    users: number;
    projects: number;
    energy_kwh: number;
    emissions_g: number;
  }>;
  topUsers: Array<{
    cluster_id: string;
    name: string;
    units: number;
    energy_kwh: number;
    emissions_g: number;
  }>;
  topProjects: Array<{
    cluster_id: string;
    name: string;
    units: number;
    energy_kwh: number;
    emissions_g: number;
  }>;
}

/** Per-cluster counts and the ten users and projects with the most energy (admin page). */
export async function clusterOverview(reader: SqlReader): Promise<ClusterOverview> {
  const energy = energySql(reader.d);
  const emissions = emissionsSql(reader.d);
  // MAX(resource_manager): one manager per cluster, and PostgreSQL takes no bare column beside GROUP BY.
  const clusters = await reader.all<ClusterOverview['clusters'][number]>(
    `SELECT cluster_id, MAX(resource_manager) AS resource_manager, COUNT(*) AS units, COUNT(CASE WHEN ended_at_ts = 0 THEN 1 END) AS running,
         COUNT(DISTINCT username) AS users, COUNT(DISTINCT project) AS projects,
         SUM(${energy}) AS energy_kwh, SUM(${emissions}) AS emissions_g
       FROM units WHERE ignore = 0 GROUP BY cluster_id ORDER BY cluster_id`,
  );
  const top = (col: 'username' | 'project') =>
    reader.all<ClusterOverview['topUsers'][number]>(
      `SELECT cluster_id, ${col} AS name, COUNT(*) AS units, SUM(${energy}) AS energy_kwh, SUM(${emissions}) AS emissions_g
         FROM units WHERE ignore = 0 GROUP BY cluster_id, ${col} ORDER BY energy_kwh DESC, emissions_g DESC, name LIMIT 10`,
    );
  const plain = <T>(rows: T[]) => rows.map((r) => ({ ...r }));
  return {
    clusters: plain(clusters),
    topUsers: plain(await top('username')),
    topProjects: plain(await top('project')),
  };
}

/** Whether `user` is listed in `admin_users` (read on every request, as the API server does). */
export async function isAdmin(reader: SqlReader, user: string): Promise<boolean> {
  return (await reader.get('SELECT 1 FROM admin_users WHERE name = ? LIMIT 1', [user])) !== undefined;
}
