// Interface every resource manager implements (spec api-server.md §11) and the options they share.

import type { Logger } from '../../common/logger.js';
import type { Project, Unit, User } from '../models.js';

export interface UsersProjects {
  users: User[];
  projects: Project[];
}

export interface ResourceManager {
  readonly clusterId: string;
  readonly manager: string;
  /** Units active in `[start, end]` (ms), with `total_time_seconds` for the part inside the window. */
  fetchUnits(start: number, end: number, signal?: AbortSignal): Promise<Unit[]>;
  /** Users and projects (flat lists) as of `now` (ms). */
  fetchUsersProjects(now: number, signal?: AbortSignal): Promise<UsersProjects>;
  close(): Promise<void>;
}

export interface ManagerContext {
  logger: Logger;
  /** IANA zone of the DB (already resolved from `Local`). */
  timeZone: string;
  /** Directory of the configuration file; relative paths in client configs resolve against it. */
  configDir: string;
  /** `data.update_interval` in ms (Kubernetes resync period). */
  updateIntervalMs: number;
}

/** A unit with the fields every manager fills; the updaters add the other metric maps. */
export function emptyUnit(clusterId: string, manager: string, uuid: string): Unit {
  return {
    cluster_id: clusterId,
    resource_manager: manager,
    uuid,
    name: '',
    project: '',
    groupname: '',
    username: '',
    created_at: '',
    started_at: '',
    ended_at: '',
    created_at_ts: 0,
    started_at_ts: 0,
    ended_at_ts: 0,
    elapsed: '',
    state: '',
    allocation: {},
    total_time_seconds: {},
    tags: {},
  };
}

/** `HH:MM:SS`, with a `D-` prefix beyond 24 h. */
export function formatElapsed(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const p = (n: number) => String(n).padStart(2, '0');
  const hms = `${p(Math.floor((s % 86400) / 3600))}:${p(Math.floor((s % 3600) / 60))}:${p(s % 60)}`;
  return d > 0 ? `${d}-${hms}` : hms;
}
