// Minimal Redfish client for chassis power readings (spec exporter.md §5.7): session-token login with
// re-login on 401, or basic auth (also when the BMC has no session service or answers the login without a
// token, as the original carries on then); every request carries `X-Redfish-Url` so a redfish_proxy can
// route it. Power comes from a chassis' `Power` resource, else from the newer `EnvironmentMetrics` or
// `PowerSubsystem` ones.

import { createHttpClient, type HttpClient, httpFetch } from '../../common/httpclient.js';
import type { Logger } from '../../common/logger.js';
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
const field = (v: unknown, key: string): unknown =>
  v && typeof v === 'object' ? (v as Json)[key] : undefined;
/** `Reading` of a Redfish sensor excerpt such as `EnvironmentMetrics.PowerWatts`. */
const reading = (v: unknown): number => num(field(v, 'Reading'));

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

/**
 * Where a chassis' power is read: the `Power` resource (what the original reads), else the newer
 * `EnvironmentMetrics.PowerWatts`, else the sum of the power supplies' input power under `PowerSubsystem`.
 */
export type PowerSource =
  | { kind: 'power'; path: string }
  | { kind: 'environment'; path: string }
  | { kind: 'supplies'; metrics: string[] };

const NO_POWER: ChassisPower = { current: 0, min: 0, max: 0, avg: 0 };

export class RedfishClient {
  private readonly http: HttpClient;
  private session: Session | undefined;
  /** Basic auth on each request: configured, or the BMC gave no session token on this connection. */
  private basicAuth: boolean;
  /** Power source per chassis Id, found at connection time. */
  private chassis: Map<string, PowerSource> | undefined;
  private pendingLogin: Promise<void> | undefined;
  private pendingConnect: Promise<void> | undefined;

  constructor(
    private readonly cfg: RedfishConfig,
    private readonly log?: Logger,
  ) {
    this.http = createHttpClient(cfg.http, cfg.baseDir, { timeoutMs: cfg.timeoutMs });
    this.basicAuth = !cfg.useSessionToken;
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
      if (this.session) headers['x-auth-token'] = this.session.token;
      else if (this.basicAuth)
        headers.authorization = `Basic ${Buffer.from(`${this.cfg.username}:${this.cfg.password}`).toString('base64')}`;
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
    const token = res.headers['x-auth-token'];
    const noSessions = res.status === 404 || res.status === 405;
    const tokenless =
      (res.status === 200 || res.status === 201) && (typeof token !== 'string' || token === '');
    if (noSessions || tokenless) {
      this.session = undefined;
      this.basicAuth = true;
      this.log?.warn(
        { status: res.status, path: SESSIONS_PATH },
        noSessions
          ? 'BMC has no Redfish session service; using basic auth'
          : 'BMC session login returned no X-Auth-Token; using basic auth',
      );
      return;
    }
    if (res.status !== 200 && res.status !== 201)
      throw new RedfishError(`session login at ${SESSIONS_PATH} failed with HTTP ${res.status}`);
    const location = res.headers.location;
    let path: string | undefined;
    if (typeof location === 'string' && location !== '') {
      // Keep the path only: through a proxy the BMC's absolute URL is not reachable.
      path = new URL(location, 'http://bmc').pathname;
    } else {
      path = odataId(safeJson(res.body));
    }
    this.session = { token: token as string, path };
    this.basicAuth = false;
  }

  /** GET returning JSON; a 401 with a session token means it expired: log in again once and retry. */
  private async getJson(path: string, signal?: AbortSignal): Promise<Json> {
    const used = this.session?.token;
    let res = await this.request('GET', path, { auth: true, signal });
    if (res.status === 401 && this.cfg.useSessionToken) {
      // also after a fallback to basic auth: the session service may be back (or gone, then basic again)
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
    const chassis = new Map<string, PowerSource>();
    for (const member of await this.members('/redfish/v1/Chassis', signal)) {
      const c = await this.getJson(member, signal);
      const id = typeof c.Id === 'string' ? c.Id : member.split('/').filter(Boolean).pop()!;
      const source = await this.powerSource(c, signal);
      // Chassis without any power resource (e.g. cards or enclosures of some BMCs) have nothing to read.
      if (source) chassis.set(id, source);
    }
    if (chassis.size === 0)
      throw new RedfishError(
        'no chassis with a power resource (Power, EnvironmentMetrics, PowerSubsystem) found',
      );
    this.chassis = chassis;
  }

  /** `@odata.id` of the members of a collection. */
  private async members(path: string, signal?: AbortSignal): Promise<string[]> {
    const coll = await this.getJson(path, signal);
    return Array.isArray(coll.Members) ? coll.Members.map(odataId).filter((m) => m !== undefined) : [];
  }

  private async powerSource(chassis: Json, signal?: AbortSignal): Promise<PowerSource | undefined> {
    const power = odataId(chassis.Power);
    if (power) return { kind: 'power', path: power };
    const environment = odataId(chassis.EnvironmentMetrics);
    if (environment) return { kind: 'environment', path: environment };
    const subsystem = odataId(chassis.PowerSubsystem);
    if (!subsystem) return undefined;
    const supplies = odataId((await this.getJson(subsystem, signal)).PowerSupplies);
    if (!supplies) return undefined;
    const metrics: string[] = [];
    for (const psu of await this.members(supplies, signal)) {
      const m = odataId((await this.getJson(psu, signal)).Metrics);
      if (m) metrics.push(m);
    }
    return metrics.length > 0 ? { kind: 'supplies', metrics } : undefined;
  }

  private async read(source: PowerSource, signal?: AbortSignal): Promise<ChassisPower> {
    switch (source.kind) {
      case 'power':
        return sumPowerControl(await this.getJson(source.path, signal));
      case 'environment':
        return { ...NO_POWER, current: reading((await this.getJson(source.path, signal)).PowerWatts) };
      case 'supplies': {
        const docs = await Promise.all(source.metrics.map((m) => this.getJson(m, signal)));
        return { ...NO_POWER, current: docs.reduce((sum, d) => sum + reading(d.InputPowerWatts), 0) };
      }
    }
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
    const readings = await Promise.all(entries.map(([, source]) => this.read(source, signal)));
    return new Map(entries.map(([id], i) => [id, readings[i]!]));
  }

  /** Deletes the session (best effort) and forgets the chassis so the next call reconnects. */
  async logout(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    this.chassis = undefined;
    this.basicAuth = !this.cfg.useSessionToken; // the next connection tries a session again
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
