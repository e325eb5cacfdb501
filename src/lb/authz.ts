// Who may read what (spec lb.md §7.5, §7.6): admin check and unit ownership, answered either from the API
// server's database (preferred: its SQLite file opened read-only, or its PostgreSQL [D-LB-20]) or through
// its HTTP API. Positive ownership answers are
// cached per (cluster, user, uuid) for a short time; admin status is never cached (server.ts asks for it
// whenever it can change the outcome [D-LB-16]).

import { createHttpClient, type HttpClient, type HttpClientConfig, httpFetch } from '../common/httpclient.js';
import { openDatabase } from '../common/sqlite.js';
import { type SqlReader, sqliteReader } from '../common/sqlreader.js';

/** The API server's service account, always admin there. */
export const SERVICE_USER = 'ceems-int-svc';
const ADMIN_TIMEOUT_MS = 1000;
const VERIFY_TIMEOUT_MS = 5000;

export interface Cluster {
  id: string;
  manager: string;
}

export interface AuthzSource {
  readonly kind: 'db' | 'api';
  isAdmin(user: string): Promise<boolean>;
  /** True iff every id is a unit of a project the user is a member of, in that cluster. */
  owns(user: string, clusterId: string, ids: readonly string[]): Promise<boolean>;
  clusters(): Promise<Cluster[]>;
  close(): Promise<void>;
}

export class DbAuthzSource implements AuthzSource {
  readonly kind = 'db';
  private readonly reader: SqlReader;
  private readonly ownsSql: string;

  /** `db`: the API server's SQLite file, or a reader of its PostgreSQL. */
  constructor(db: string | SqlReader) {
    this.reader =
      typeof db === 'string'
        ? sqliteReader(() => openDatabase(db, { readOnly: true, busyTimeoutMs: ADMIN_TIMEOUT_MS }))
        : db;
    const { d } = this.reader;
    // Same rule as the API server's /units/verify [D-LB-13]: every uuid must match. The ids come as one
    // bound JSON array.
    this.ownsSql = `SELECT COUNT(DISTINCT u.uuid) AS n FROM units u
       WHERE u.cluster_id = ? AND u.uuid IN (SELECT ids.value FROM ${d.jsonArrayValues('?', 'ids')})
         AND EXISTS (SELECT 1 FROM projects p, ${d.jsonArrayValues('p.users', 'm')}
                     WHERE p.cluster_id = u.cluster_id AND p.name = u.project AND m.value = ?)`;
  }

  async isAdmin(user: string): Promise<boolean> {
    return (await this.reader.get('SELECT 1 FROM admin_users WHERE name = ? LIMIT 1', [user])) !== undefined;
  }

  async owns(user: string, clusterId: string, ids: readonly string[]): Promise<boolean> {
    const unique = [...new Set(ids)];
    if (unique.length === 0 || user === '' || clusterId === '') return false;
    const row = await this.reader.get<{ n: number }>(this.ownsSql, [clusterId, JSON.stringify(unique), user]);
    return row?.n === unique.length;
  }

  async clusters(): Promise<Cluster[]> {
    return this.reader.all<Cluster>(
      'SELECT DISTINCT cluster_id AS id, resource_manager AS manager FROM units ORDER BY cluster_id',
    );
  }

  async close(): Promise<void> {
    await this.reader.close();
  }
}

export class ApiAuthzSource implements AuthzSource {
  readonly kind = 'api';
  private readonly base: string;
  private readonly client: HttpClient;

  constructor(url: string, cfg: HttpClientConfig, baseDir: string) {
    this.base = url.replace(/\/+$/, '');
    this.client = createHttpClient(cfg, baseDir);
  }

  private async getJson(path: string, user: string, timeoutMs: number): Promise<unknown> {
    const res = await httpFetch(this.client, `${this.base}${path}`, {
      headers: { 'x-grafana-user': user },
      timeoutMs,
      maxBytes: 16 * 1024 * 1024,
    });
    if (res.status !== 200) throw new Error(`GET ${path}: HTTP ${res.status}`);
    return JSON.parse(res.body);
  }

  async isAdmin(user: string): Promise<boolean> {
    const body = (await this.getJson('/api/v1/users/admin?role=admin', SERVICE_USER, ADMIN_TIMEOUT_MS)) as {
      data?: Array<{ name?: unknown }> | null;
    };
    return (body.data ?? []).some((u) => u.name === user);
  }

  async owns(user: string, clusterId: string, ids: readonly string[]): Promise<boolean> {
    const qs = new URLSearchParams();
    for (const id of new Set(ids)) qs.append('uuid', id);
    qs.append('cluster_id', clusterId);
    const res = await httpFetch(this.client, `${this.base}/api/v1/units/verify?${qs}`, {
      headers: { 'x-grafana-user': user },
      timeoutMs: VERIFY_TIMEOUT_MS,
      maxBytes: 1024 * 1024,
    });
    return res.status === 200;
  }

  async clusters(): Promise<Cluster[]> {
    const body = (await this.getJson('/api/v1/clusters/admin', SERVICE_USER, ADMIN_TIMEOUT_MS)) as {
      data?: Array<{ id: string; manager: string }> | null;
    };
    return body.data ?? [];
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** Wraps a source with a bounded cache of positive per-uuid ownership answers; errors deny. */
export class Authorizer {
  private readonly owned = new Map<string, number>();

  constructor(
    readonly source: AuthzSource,
    private readonly ttlMs = 30_000,
    private readonly maxEntries = 100_000,
  ) {}

  async isAdmin(user: string): Promise<boolean> {
    try {
      return await this.source.isAdmin(user);
    } catch {
      return false;
    }
  }

  /** True iff a fresh positive answer for every id is in memory: no source is asked. */
  ownsCached(user: string, clusterId: string, ids: Iterable<string>): boolean {
    return this.notCached(user, clusterId, ids, Date.now()).length === 0;
  }

  private notCached(user: string, clusterId: string, ids: Iterable<string>, now: number): string[] {
    const missing: string[] = [];
    for (const id of ids) {
      const until = this.owned.get(`${clusterId}\0${user}\0${id}`);
      if (until === undefined || until < now) missing.push(id);
    }
    return missing;
  }

  async owns(user: string, clusterId: string, ids: Iterable<string>): Promise<boolean> {
    const now = Date.now();
    const missing = this.notCached(user, clusterId, ids, now);
    if (missing.length === 0) return true;
    let ok: boolean;
    try {
      ok = await this.source.owns(user, clusterId, missing);
    } catch {
      return false;
    }
    if (ok) {
      for (const id of missing) {
        if (this.owned.size >= this.maxEntries) this.owned.delete(this.owned.keys().next().value!);
        this.owned.set(`${clusterId}\0${user}\0${id}`, now + this.ttlMs);
      }
    }
    return ok;
  }
}
