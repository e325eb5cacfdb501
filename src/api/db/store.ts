// What the collection cycle and the admin-user sync need from the database, whichever backend holds it:
// CeemsDb (SQLite, synchronous) and PgStore (PostgreSQL, asynchronous) both implement it.

import type { CollectionWindow } from './index.js';

export type Awaitable<T> = T | Promise<T>;

export interface UnitStore {
  /** Everything one collection window writes, in ONE transaction (§10.2 step 5). */
  storeCollection(w: CollectionWindow): Awaitable<void>;
  /** `MAX(last_updated_at) FROM usage` (`DatetimeLayout`), or undefined on an empty DB. */
  lastUpdatedAt(): Awaitable<string | undefined>;
  /** The same for one cluster. */
  clusterLastUpdatedAt(clusterId: string): Awaitable<string | undefined>;
  /** Makes the admin rows of one source exactly `names` (D-API-2). */
  syncAdminUsers(source: string, names: readonly string[], lastUpdatedAt: string): Awaitable<void>;
  /** Retention purge (§10.5). */
  purgeExpired(retentionDays: number): Awaitable<{ units: number; usage: number }>;
}
