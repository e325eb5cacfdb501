// Minimal Redfish client for chassis power readings (spec exporter.md §5.7): session-token login with
// re-login on 401, or basic auth; every request carries `X-Redfish-Url` so a redfish_proxy can route it.

import { createHttpClient, type HttpClient, httpFetch } from '../../common/httpclient.js';
import type { RedfishConfig } from './config.js';

export const SESSIONS_PATH = '/redfish/v1/SessionService/Sessions';

export class RedfishError extends Error {}

export interface ChassisPower {
  current: number;
  min: number;
  max: number;
  avg: number;
}

interface Session {
  token: string;
  /** Path of the session resource, for logout. */
  path: string | undefined;
}

type Json = Record<string, unknown>;

const odataId = (v: unknown): string | undefined => {
  const id = v && typeof v === 'object' ? (v as Json)['@odata.id'] : undefined;
  return typeof id === 'string' ? id : undefined;
};
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** Sums the chassis power of a Redfish `Power` resource over its `PowerControl[]` entries. */
export function sumPowerControl(power: unknown): ChassisPower {
  const out = { current: 0, min: 0, max: 0, avg: 0 };
  const controls = power && typeof power === 'object' ? (power as Json).PowerControl : undefined;
  if (!Array.isArray(controls)) return out;
  for (const pc of controls) {
    if (!pc || typeof pc !== 'object') continue;
    const c = pc as Json;
    out.current += num(c.PowerConsumedWatts);
    const m = c.PowerMetrics && typeof c.PowerMetrics === 'object' ? (c.PowerMetrics as Json) : {};
    out.min += num(m.MinConsumedWatts);
    out.max += num(m.MaxConsumedWatts);
    out.avg += num(m.AverageConsumedWatts);
  }
  return out;
}

export class RedfishClient {
  private readonly http: HttpClient;
  private session: Session | undefined;
  /** Power resource path per chassis Id, found at connection time. */
  private chassis: Map<string, string> | undefined;
  private pendingLogin: Promise<void> | undefined;
  private pendingConnect: Promise<void> | undefined;

  constructor(private readonly cfg: RedfishConfig) {
    this.http = createHttpClient(cfg.http, cfg.baseDir, { timeoutMs: cfg.timeoutMs });
  }

  get connected(): boolean {
    return this.chassis !== undefined;
  }

  private async request(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    opts: { body?: Json; auth: boolean; signal?: AbortSignal; headers?: Record<string, string> },
  ) {
    const headers: Record<string, string> = {
      'x-redfish-url': this.cfg.bmcUrl,
      accept: 'application/json',
      ...opts.headers,
    };
    if (opts.body) headers['content-type'] = 'application/json';
    if (opts.auth) {
      if (this.cfg.useSessionToken) {
        if (this.session) headers['x-auth-token'] = this.session.token;
      } else {
        headers.authorization = `Basic ${Buffer.from(`${this.cfg.username}:${this.cfg.password}`).toString('base64')}`;
      }
    }
    const url = `${this.cfg.requestUrl}${path}`;
    try {
      return await httpFetch(this.http, url, {
        method,
        headers,
        body: opts.body ? JSON.stringify(opts.body) : undefined,
        timeoutMs: this.cfg.timeoutMs,
        maxBytes: 16 * 1024 * 1024,
        signal: opts.signal,
      });
    } catch (e) {
      const err = e as Error;
      const why = err.name === 'TimeoutError' ? `timed out after ${this.cfg.timeoutMs} ms` : err.message;
      throw new RedfishError(`${method} ${url}: ${why}`);
    }
  }

  private async login(signal?: AbortSignal): Promise<void> {
    const res = await this.request('POST', SESSIONS_PATH, {
      body: { UserName: this.cfg.username, Password: this.cfg.password },
      auth: false,
      signal,
    });
    if (res.status !== 200 && res.status !== 201)
      throw new RedfishError(`session login at ${SESSIONS_PATH} failed with HTTP ${res.status}`);
    const token = res.headers['x-auth-token'];
    if (typeof token !== 'string' || token === '')
      throw new RedfishError(`session login at ${SESSIONS_PATH} returned no X-Auth-Token header`);
    const location = res.headers.location;
    let path: string | undefined;
    if (typeof location === 'string' && location !== '') {
      // Keep the path only: through a proxy the BMC's absolute URL is not reachable.
      path = new URL(location, 'http://bmc').pathname;
    } else {
      path = odataId(safeJson(res.body));
    }
    this.session = { token, path };
  }

  /** GET returning JSON; a 401 with a session token means it expired: log in again once and retry. */
  private async getJson(path: string, signal?: AbortSignal): Promise<Json> {
    const used = this.session?.token;
    let res = await this.request('GET', path, { auth: true, signal });
    if (res.status === 401 && this.cfg.useSessionToken) {
      // Concurrent requests that hit the same expired token share one new login.
      if (this.session?.token === used) {
        this.pendingLogin ??= this.login(signal).finally(() => {
          this.pendingLogin = undefined;
        });
      }
      await this.pendingLogin;
      res = await this.request('GET', path, { auth: true, signal });
    }
    if (res.status !== 200) throw new RedfishError(`GET ${path} failed with HTTP ${res.status}`);
    const doc = safeJson(res.body);
    if (!doc) throw new RedfishError(`GET ${path}: response is not a JSON object`);
    return doc;
  }

  /** Service root, login and chassis discovery. */
  async connect(signal?: AbortSignal): Promise<void> {
    const root = await this.request('GET', '/redfish/v1/', { auth: false, signal });
    if (root.status !== 200) throw new RedfishError(`GET /redfish/v1/ failed with HTTP ${root.status}`);
    if (this.cfg.useSessionToken) await this.login(signal);
    const coll = await this.getJson('/redfish/v1/Chassis', signal);
    const members = Array.isArray(coll.Members) ? coll.Members.map(odataId) : [];
    const chassis = new Map<string, string>();
    for (const member of members) {
      if (!member) continue;
      const c = await this.getJson(member, signal);
      const id = typeof c.Id === 'string' ? c.Id : member.split('/').filter(Boolean).pop()!;
      const power = odataId(c.Power);
      // Chassis without a Power resource (e.g. enclosures of some BMCs) have nothing to read.
      if (power) chassis.set(id, power);
    }
    if (chassis.size === 0) throw new RedfishError('no chassis with a Power resource found');
    this.chassis = chassis;
  }

  /** Power readings of every chassis, connecting first when needed. */
  async powerReadings(signal?: AbortSignal): Promise<Map<string, ChassisPower>> {
    if (!this.chassis) {
      // Concurrent scrapes share one connection attempt instead of opening two sessions.
      this.pendingConnect ??= this.connect(signal).finally(() => {
        this.pendingConnect = undefined;
      });
      await this.pendingConnect;
    }
    const entries = [...(this.chassis ?? [])];
    const readings = await Promise.all(
      entries.map(async ([, path]) => sumPowerControl(await this.getJson(path, signal))),
    );
    return new Map(entries.map(([id], i) => [id, readings[i]!]));
  }

  /** Deletes the session (best effort) and forgets the chassis so the next call reconnects. */
  async logout(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    this.chassis = undefined;
    if (!s?.path) return;
    await this.request('DELETE', s.path, { auth: false, headers: { 'x-auth-token': s.token } }).catch(
      () => undefined,
    );
  }

  async close(): Promise<void> {
    await this.logout();
    await this.http.close();
  }
}

function safeJson(text: string): Json | undefined {
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
  } catch {
    return undefined;
  }
}
