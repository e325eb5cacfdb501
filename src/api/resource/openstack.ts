// OpenStack resource manager (spec api-server.md §11.2): servers (active and recently deleted) from Nova,
// users and projects from Keystone, with a Keystone token renewed before it expires and on a 401.

import { connect } from 'node:net';
import { z } from 'zod';
import { validate } from '../../common/config.js';
import { createHttpClient, type HttpClient, httpFetch } from '../../common/httpclient.js';
import type { Logger } from '../../common/logger.js';
import type { ClusterConfig } from '../config.js';
import type { Project, Unit, User } from '../models.js';
import { formatDatetimezone } from '../timefmt.js';
import {
  emptyUnit,
  formatElapsed,
  type ManagerContext,
  type ResourceManager,
  type UsersProjects,
} from './types.js';

const TOKEN_RENEW_MS = 55 * 60_000;
const USERS_TTL_MS = 12 * 3600_000;
const USER_CHUNK = 256;
const REQUEST_TIMEOUT_MS = 60_000;

export const openstackExtraConfigSchema = z.strictObject({
  api_service_endpoints: z.strictObject({
    compute: z.url().refine((u) => u.includes('/v2.1'), 'Nova endpoint must include /v2.1'),
    identity: z.url(),
  }),
  auth: z.record(z.string(), z.unknown()),
});

const POWER_STATES = [
  'NOSTATE',
  'RUNNING',
  '_UNUSED',
  'PAUSED',
  'SHUTDOWN',
  '_UNUSED',
  'CRASHED',
  'SUSPENDED',
];
const STOPPED = new Set(['SHUTOFF', 'SUSPENDED', 'SHELVED', 'SHELVED_OFFLOADED', 'ERROR']);
const DELETED = new Set(['DELETED', 'SOFT_DELETED']);

/** Nova times: RFC 3339 (`created`, `updated`) or `YYYY-MM-DDTHH:MM:SS.ffffff` in UTC (`launched_at`). */
export function parseNovaTime(v: unknown): number {
  if (typeof v !== 'string' || v === '') return 0;
  const ms = Date.parse(/[zZ]|[+-]\d{2}:?\d{2}$/.test(v) ? v : `${v}Z`);
  return Number.isNaN(ms) ? 0 : ms;
}

export interface NovaFlavor {
  id?: string;
  original_name?: string;
  name?: string;
  vcpus?: number;
  ram?: number;
  disk?: number;
  swap?: number | string;
  extra_specs?: Record<string, string>;
}

export interface NovaServer {
  id: string;
  name?: string;
  status?: string;
  tenant_id?: string;
  user_id?: string;
  created?: string;
  updated?: string;
  'OS-SRV-USG:launched_at'?: string | null;
  'OS-SRV-USG:terminated_at'?: string | null;
  'OS-EXT-STS:power_state'?: number;
  'OS-EXT-AZ:availability_zone'?: string;
  'OS-EXT-SRV-ATTR:reservation_id'?: string;
  metadata?: Record<string, string>;
  tags?: string[];
  flavor?: NovaFlavor;
}

/** Seconds of activity in `[start, end]` and end time of a server, by status (§11.2 table). */
export function serverActivity(
  s: { status: string; updated: number; terminated: number; launched: number },
  start: number,
  end: number,
): { active: number; ended: number; elapsed: number } {
  const secs = (ms: number) => Math.max(0, Math.floor(ms / 1000));
  if (DELETED.has(s.status)) {
    const active = s.terminated > start ? secs(s.terminated - start) : 0;
    return { active, ended: s.terminated, elapsed: s.launched > 0 ? secs(s.terminated - s.launched) : 0 };
  }
  const elapsed = s.launched > 0 ? secs(end - s.launched) : 0;
  if (STOPPED.has(s.status))
    return { active: s.updated > start ? secs(s.updated - start) : 0, ended: 0, elapsed };
  return { active: s.updated > start ? secs(end - s.updated) : secs(end - start), ended: 0, elapsed };
}

/** Builds the unit of one Nova server for the window `[start, end]`. */
export function serverToUnit(
  s: NovaServer,
  flavor: NovaFlavor,
  names: { project: string; user: string },
  opts: { clusterId: string; timeZone: string; start: number; end: number },
): Unit {
  const u = emptyUnit(opts.clusterId, 'openstack', s.id);
  const status = s.status ?? '';
  const created = parseNovaTime(s.created);
  const launched = parseNovaTime(s['OS-SRV-USG:launched_at']);
  const terminated = parseNovaTime(s['OS-SRV-USG:terminated_at']);
  const { active, ended, elapsed } = serverActivity(
    { status, updated: parseNovaTime(s.updated), terminated, launched },
    opts.start,
    opts.end,
  );
  const when = (ms: number): [string, number] =>
    ms > 0 ? [formatDatetimezone(ms, opts.timeZone), ms] : ['N/A', 0];
  u.name = s.name ?? '';
  u.project = names.project;
  u.username = names.user;
  [u.created_at, u.created_at_ts] = when(created);
  [u.started_at, u.started_at_ts] = when(launched);
  [u.ended_at, u.ended_at_ts] = when(ended);
  u.elapsed = formatElapsed(elapsed);
  u.state = status;
  const vcpus = Number(flavor.vcpus ?? 0);
  const ram = Number(flavor.ram ?? 0);
  const vgpus = Number.parseInt(flavor.extra_specs?.['resources:VGPU'] ?? '', 10);
  u.allocation = {
    vcpus,
    mem: ram,
    disk: Number(flavor.disk ?? 0),
    swap: Number(flavor.swap || 0),
    name: flavor.original_name ?? flavor.name ?? '',
    extra_specs: flavor.extra_specs ?? {},
    ...(Number.isFinite(vgpus) ? { vgpus } : {}),
  };
  const gpus = Number.isFinite(vgpus) ? vgpus : 0;
  u.total_time_seconds = {
    walltime: active,
    alloc_cputime: vcpus * active,
    alloc_cpumemtime: ram * active,
    alloc_gputime: gpus * active,
    alloc_gpumemtime: gpus * active,
  };
  const power = s['OS-EXT-STS:power_state'];
  u.tags = {
    metadata: s.metadata ?? {},
    tags: s.tags ?? [],
    reservation_id: s['OS-EXT-SRV-ATTR:reservation_id'] ?? '',
    power_state: typeof power === 'number' ? (POWER_STATES[power] ?? 'N/A') : 'N/A',
    az: s['OS-EXT-AZ:availability_zone'] ?? '',
  };
  return u;
}

/** TCP reachability of a URL's host (Nova is checked before each fetch, §11.2). */
function checkReachable(url: string, timeoutMs = 5000): Promise<void> {
  const u = new URL(url);
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  return new Promise((resolve, reject) => {
    const sock = connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port });
    const fail = (why: string) => {
      sock.destroy();
      reject(new Error(`compute API ${u.host} is unreachable: ${why}`));
    };
    sock.setTimeout(timeoutMs, () => fail('timeout'));
    sock.once('error', (e: NodeJS.ErrnoException) => fail(e.code ?? e.message));
    sock.once('connect', () => {
      sock.destroy();
      resolve();
    });
  });
}

interface Directory {
  users: Map<string, { name: string; projects: Set<string> }>;
  projects: Map<string, { name: string; users: Set<string> }>;
  at: number;
}

export class OpenstackManager implements ResourceManager {
  readonly manager = 'openstack';
  readonly clusterId: string;
  private readonly compute: string;
  private readonly identity: string;
  private readonly auth: Record<string, unknown>;
  private readonly client: HttpClient;
  private readonly novaVersionHeader: Record<string, string>;
  private readonly logger: Logger;
  private readonly tz: string;
  private token: { value: string; at: number } | undefined;
  private renewing: Promise<void> | undefined;
  private directory: Directory | undefined;

  private constructor(cluster: ClusterConfig, ctx: ManagerContext) {
    const extra = validate(
      openstackExtraConfigSchema,
      cluster.extra_config ?? {},
      `cluster '${cluster.id}' extra_config`,
    );
    this.clusterId = cluster.id;
    this.compute = extra.api_service_endpoints.compute.replace(/\/+$/, '');
    this.identity = extra.api_service_endpoints.identity.replace(/\/+$/, '');
    this.auth = extra.auth;
    const { url: _url, ...clientCfg } = cluster.web ?? {};
    this.client = createHttpClient(clientCfg, ctx.configDir);
    const configured = Object.keys(clientCfg.http_headers ?? {}).map((h) => h.toLowerCase());
    this.novaVersionHeader =
      configured.includes('x-openstack-nova-api-version') || configured.includes('openstack-api-version')
        ? {}
        : { 'X-OpenStack-Nova-API-Version': 'latest' };
    this.logger = ctx.logger;
    this.tz = ctx.timeZone;
  }

  /** Authenticates (fatal on failure) and loads the user/project directory (retried later on failure). */
  static async create(cluster: ClusterConfig, ctx: ManagerContext): Promise<OpenstackManager> {
    const m = new OpenstackManager(cluster, ctx);
    await m.authenticate();
    try {
      await m.loadDirectory();
    } catch (e) {
      ctx.logger.error(
        { cluster_id: cluster.id, err: (e as Error).message },
        'Cannot load OpenStack users and projects',
      );
    }
    return m;
  }

  private async authenticate(signal?: AbortSignal): Promise<void> {
    const url = `${this.identity}/v3/auth/tokens`;
    const res = await httpFetch(this.client, url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ auth: this.auth }),
      timeoutMs: REQUEST_TIMEOUT_MS,
      signal,
    });
    const token = res.headers['x-subject-token'];
    if (res.status !== 201 || typeof token !== 'string' || token === '')
      throw new Error(
        `Keystone authentication at ${url} failed: HTTP ${res.status}${res.status === 201 ? ' without X-Subject-Token' : `: ${res.body.slice(0, 200)}`}`,
      );
    this.token = { value: token, at: Date.now() };
  }

  /** One authentication at a time: concurrent requests rejected with the same token share the renewal. */
  private renew(signal?: AbortSignal): Promise<void> {
    this.renewing ??= this.authenticate(signal).finally(() => {
      this.renewing = undefined;
    });
    return this.renewing;
  }

  /** GET a JSON document with the current token; renews the token when old or rejected (401) once. */
  private async getJson<T>(url: string, signal?: AbortSignal, nova = false): Promise<T> {
    if (!this.token || Date.now() - this.token.at > TOKEN_RENEW_MS) await this.renew(signal);
    const get = (token: string) =>
      httpFetch(this.client, url, {
        headers: { 'X-Auth-Token': token, ...(nova ? this.novaVersionHeader : {}) },
        timeoutMs: REQUEST_TIMEOUT_MS,
        signal,
      });
    const used = this.token!.value;
    let res = await get(used);
    if (res.status === 401) {
      if (this.token?.value === used) {
        this.logger.info({ cluster_id: this.clusterId }, 'OpenStack token rejected; authenticating again');
        await this.renew(signal);
      }
      res = await get(this.token!.value);
    }
    if (res.status !== 200)
      throw new Error(`GET ${url} returned HTTP ${res.status}: ${res.body.slice(0, 200)}`);
    try {
      return JSON.parse(res.body) as T;
    } catch {
      throw new Error(`GET ${url}: response is not JSON`);
    }
  }

  /** Follows `next` links (Keystone `links.next`, Nova `<key>_links[rel=next]`) (D-API-13). */
  private async getAll<T>(url: string, key: string, signal?: AbortSignal, nova = false): Promise<T[]> {
    const out: T[] = [];
    const seen = new Set<string>();
    let next: string | undefined = url;
    while (next && !seen.has(next)) {
      seen.add(next);
      const page: Record<string, unknown> = await this.getJson<Record<string, unknown>>(next, signal, nova);
      const items = page[key];
      if (!Array.isArray(items)) throw new Error(`GET ${next}: no '${key}' list in the response`);
      out.push(...(items as T[]));
      const links = page.links as { next?: string | null } | undefined;
      const navLinks = page[`${key}_links`] as Array<{ rel?: string; href?: string }> | undefined;
      next = links?.next ?? navLinks?.find((l) => l.rel === 'next')?.href ?? undefined;
    }
    return out;
  }

  private async loadDirectory(signal?: AbortSignal): Promise<Directory> {
    const users = await this.getAll<{ id: string; name: string }>(
      `${this.identity}/v3/users`,
      'users',
      signal,
    );
    const dir: Directory = { users: new Map(), projects: new Map(), at: Date.now() };
    for (let i = 0; i < users.length; i += USER_CHUNK) {
      const chunk = users.slice(i, i + USER_CHUNK);
      const memberships = await Promise.all(
        chunk.map((u) =>
          this.getAll<{ id: string; name: string }>(
            `${this.identity}/v3/users/${encodeURIComponent(u.id)}/projects`,
            'projects',
            signal,
          ),
        ),
      );
      chunk.forEach((u, j) => {
        const entry = { name: u.name, projects: new Set<string>() };
        dir.users.set(u.id, entry);
        for (const p of memberships[j]!) {
          entry.projects.add(p.id);
          if (!dir.projects.has(p.id)) dir.projects.set(p.id, { name: p.name, users: new Set() });
          dir.projects.get(p.id)!.users.add(u.id);
        }
      });
    }
    this.directory = dir;
    return dir;
  }

  private async currentDirectory(signal?: AbortSignal): Promise<Directory> {
    if (this.directory && Date.now() - this.directory.at < USERS_TTL_MS) return this.directory;
    return this.loadDirectory(signal);
  }

  async fetchUnits(start: number, end: number, signal?: AbortSignal): Promise<Unit[]> {
    await checkReachable(this.compute);
    const dir = await this.currentDirectory(signal);
    const since = new URLSearchParams({
      all_tenants: 'true',
      deleted: 'true',
      'changes-since': formatDatetimezone(start, this.tz),
      'changes-before': formatDatetimezone(end, this.tz),
    });
    const [active, deleted] = await Promise.all([
      this.getAll<NovaServer>(`${this.compute}/servers/detail?all_tenants=true`, 'servers', signal, true),
      this.getAll<NovaServer>(`${this.compute}/servers/detail?${since}`, 'servers', signal, true),
    ]);
    const servers = new Map<string, NovaServer>();
    for (const s of [...active, ...deleted]) if (s?.id) servers.set(s.id, s);
    // Before microversion 2.47 servers only reference their flavor by id.
    let flavors: Map<string, NovaFlavor> | undefined;
    if ([...servers.values()].some((s) => s.flavor?.vcpus === undefined)) {
      const list = await this.getAll<NovaFlavor>(
        `${this.compute}/flavors/detail?is_public=None`,
        'flavors',
        signal,
        true,
      );
      flavors = new Map(list.map((f) => [String(f.id), f]));
    }
    const units: Unit[] = [];
    for (const s of servers.values()) {
      const flavor =
        s.flavor?.vcpus !== undefined ? s.flavor : (flavors?.get(String(s.flavor?.id)) ?? s.flavor ?? {});
      units.push(
        serverToUnit(
          s,
          flavor,
          {
            project: dir.projects.get(s.tenant_id ?? '')?.name ?? '',
            user: dir.users.get(s.user_id ?? '')?.name ?? '',
          },
          { clusterId: this.clusterId, timeZone: this.tz, start, end },
        ),
      );
    }
    return units;
  }

  async fetchUsersProjects(_now: number, signal?: AbortSignal): Promise<UsersProjects> {
    const dir = await this.currentDirectory(signal);
    const sorted = (ids: Set<string>, m: Map<string, { name: string }>) =>
      [...new Set([...ids].map((id) => m.get(id)?.name ?? ''))].filter((n) => n !== '').sort();
    const projects: Project[] = [...dir.projects.entries()].map(([id, p]) => ({
      uid: id,
      cluster_id: this.clusterId,
      resource_manager: 'openstack',
      name: p.name,
      users: sorted(p.users, dir.users),
      tags: [],
    }));
    // Users without projects keep their name (D-API-12).
    const users: User[] = [...dir.users.entries()].map(([id, u]) => ({
      uid: id,
      cluster_id: this.clusterId,
      resource_manager: 'openstack',
      name: u.name,
      projects: sorted(u.projects, dir.projects),
      tags: [],
    }));
    return { users, projects };
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
