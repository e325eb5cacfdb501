// Admin users (spec §13): the static `admin.users` (+ `ceems-int-svc`) and the members of Grafana teams,
// written to `admin_users` and re-synced on every refresh so that a removed admin loses access (D-API-2).

import { connect } from 'node:net';
import { createHttpClient, type HttpClient, httpFetch } from '../common/httpclient.js';
import type { Logger } from '../common/logger.js';
import type { ApiServerConfig } from './config.js';
import type { UnitStore } from './db/store.js';
import { formatDatetime } from './timefmt.js';

/** Service account of ceems_lb; always an admin. */
export const SERVICE_ACCOUNT = 'ceems-int-svc';

type AdminConfig = ApiServerConfig['ceems_api_server']['admin'];
type GrafanaConfig = NonNullable<AdminConfig['grafana']>;

/** Resolves when a TCP connection to the URL's host and port can be opened (start-up check). */
export function checkReachable(url: string, timeoutMs = 5000): Promise<void> {
  const u = new URL(url);
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  return new Promise((resolve, reject) => {
    const sock = connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port, timeout: timeoutMs });
    const fail = () => {
      sock.destroy();
      reject(new Error(`Grafana at ${url} is unreachable`));
    };
    sock.once('connect', () => {
      sock.end();
      resolve();
    });
    sock.once('timeout', fail);
    sock.once('error', fail);
  });
}

/** Fetches the logins of a Grafana team's members (`GET /api/teams/<id>/members`). */
export async function grafanaTeamMembers(
  client: HttpClient,
  baseUrl: string,
  teamId: string,
): Promise<string[]> {
  const url = `${baseUrl.replace(/\/+$/, '')}/api/teams/${encodeURIComponent(teamId)}/members`;
  const res = await httpFetch(client, url, { timeoutMs: 30_000, maxBytes: 16 * 1024 * 1024 });
  if (res.status !== 200) throw new Error(`GET ${url}: status ${res.status}`);
  const body = JSON.parse(res.body) as unknown;
  if (!Array.isArray(body)) throw new Error(`GET ${url}: expected a JSON list of members`);
  return body
    .map((m) => (m && typeof m === 'object' ? (m as { login?: unknown }).login : undefined))
    .filter((l): l is string => typeof l === 'string' && l !== '');
}

export class AdminUsers {
  private readonly grafana?: { cfg: GrafanaConfig; client: HttpClient; url: string };
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly db: Pick<UnitStore, 'syncAdminUsers'>,
    private readonly cfg: AdminConfig,
    configDir: string,
    private readonly timeZone: string,
    private readonly log: Logger,
  ) {
    const g = cfg.grafana;
    if (g?.url) {
      const { url, teams_ids: _t, ...client } = g;
      this.grafana = { cfg: g, url, client: createHttpClient(client, configDir) };
    }
  }

  /** Start-up check of §3.1: the Grafana URL must accept TCP connections. */
  async checkGrafana(): Promise<void> {
    if (this.grafana) await checkReachable(this.grafana.url);
  }

  /** One refresh of both sources; a failed Grafana team leaves the existing `grafana` rows alone. */
  async refresh(now = Date.now()): Promise<void> {
    const stamp = formatDatetime(now, this.timeZone);
    await this.db.syncAdminUsers('ceems', [...this.cfg.users, SERVICE_ACCOUNT], stamp);
    if (!this.grafana) return;
    const logins: string[] = [];
    let failed = 0;
    for (const team of this.grafana.cfg.teams_ids) {
      try {
        logins.push(...(await grafanaTeamMembers(this.grafana.client, this.grafana.url, team)));
      } catch (e) {
        failed++;
        this.log.warn({ team, err: (e as Error).message }, 'Failed to fetch Grafana team members');
      }
    }
    if (failed === 0) {
      await this.db.syncAdminUsers('grafana', logins, stamp);
      this.log.debug({ admins: logins.length }, 'Grafana admin users synced');
    } else {
      this.log.warn({ failed_teams: failed }, 'Grafana admin users not re-synced; keeping the current ones');
    }
  }

  /** Refreshes now and then every `intervalMs`; errors are logged, never fatal. */
  start(intervalMs: number): void {
    const tick = () => {
      this.running = this.refresh().catch((e) =>
        this.log.error({ err: (e as Error).message }, 'Admin users refresh failed'),
      );
    };
    tick();
    this.timer = setInterval(tick, intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
    await this.grafana?.client.close();
  }
}
