// Leader election of the API server replicas sharing one PostgreSQL (issue 21): only the leader runs the
// collection cycle; every replica serves reads.
//
// The leader is the session holding a session-level advisory lock, taken with pg_try_advisory_lock on a
// dedicated connection. PostgreSQL releases it when that session ends (process killed, connection lost),
// and another replica, retrying every few seconds, takes over. The leader writes its windows on that same
// connection and checks in each window's transaction that its session still holds the lock: a window can
// never be committed by a replica that lost the lock, whatever its own view of the election.

import type { Sql, TransactionSql } from 'postgres';
import type { Logger } from '../../../common/logger.js';
import type { BackgroundTask } from '../../main.js';
import type { CollectionWindow } from '../index.js';
import { openPg } from './connect.js';
import { writeWindow } from './store.js';

/** The lock's two int4 keys (ASCII "ceem", "lead"); pg_locks shows them as classid, objid. */
const LOCK = [0x6365656d, 0x6c656164] as const;

/** Whether the session of `sql` holds the leader lock. */
async function holdsLock(sql: Sql | TransactionSql): Promise<boolean> {
  const [r] = await sql<{ held: boolean }[]>`SELECT EXISTS (SELECT 1 FROM pg_locks
    WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
      AND classid = ${LOCK[0]} AND objid = ${LOCK[1]} AND objsubid = 2) AS held`;
  return r?.held === true;
}

export interface LeaderOptions {
  url: string;
  logger: Logger;
  /** Pause between attempts to take the lock, and between checks of the leader's connection. */
  retryMs?: number;
  /** The collection cycle, built (and its configuration checked) at start-up; run while leading. */
  cycle: BackgroundTask;
  /** A fresh cycle for a later term: a stopped one is not restarted. */
  rebuild: () => Promise<BackgroundTask>;
}

export class LeaderElection implements BackgroundTask {
  private sql: Sql | undefined;
  private leading = false;
  private storing = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private deposing: Promise<void> = Promise.resolve();
  /** The cycle waiting for a term (built, not started). */
  private idle: BackgroundTask | undefined;
  private running: BackgroundTask | undefined;
  private readonly retryMs: number;

  constructor(private readonly opts: LeaderOptions) {
    this.retryMs = opts.retryMs ?? 5000;
    this.idle = opts.cycle;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    void this.tick();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      if (!this.leading) await this.campaign();
      // the window being stored on the connection is the check; a query would queue behind it
      else if (this.storing === 0) await this.heartbeat();
    } catch (e) {
      this.lose(`leader connection failed: ${(e as Error).message}`);
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.tick(), this.retryMs);
  }

  private connection(): Sql {
    if (this.sql) return this.sql;
    const sql = openPg(this.opts.url, {
      max: 1,
      keepSession: true,
      onclose: () => {
        if (this.sql === sql) this.lose('leader connection closed');
      },
    });
    this.sql = sql;
    return sql;
  }

  private async campaign(): Promise<void> {
    // The last term's cycle must have stopped first: a window it still had in flight would otherwise be
    // committed on the new term's session, next to the new cycle resuming from the same point.
    await this.deposing;
    const sql = this.connection();
    const [r] = await sql<
      { ok: boolean }[]
    >`SELECT pg_try_advisory_lock(${LOCK[0]}::int4, ${LOCK[1]}::int4) AS ok`;
    if (!r?.ok || this.stopped || this.sql !== sql) return;
    this.leading = true;
    this.opts.logger.info({}, 'Leader: this replica runs the collection cycle');
    let cycle = this.idle;
    this.idle = undefined;
    try {
      cycle ??= await this.opts.rebuild();
    } catch (e) {
      this.lose(`cannot build the collection cycle: ${(e as Error).message}`);
      return;
    }
    if (this.leading) {
      this.running = cycle;
      cycle.start();
    } else if (this.stopped)
      await cycle.stop(); // stop() came while it was being built
    else this.idle = cycle; // deposed meanwhile: kept for the next term
  }

  /** Stops the cycle of the current term; the next term gets a new one. */
  private async endTerm(): Promise<void> {
    const cycle = this.running;
    this.running = undefined;
    await cycle?.stop();
  }

  /**
   * The session still holds the lock: a connection that stopped answering is dropped (and the lock with it)
   * before another can lead, and one the client replaced behind our back (a new session, no lock) ends the term.
   */
  private async heartbeat(): Promise<void> {
    const sql = this.sql!;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${this.retryMs} ms`)), this.retryMs);
    });
    try {
      if (!(await Promise.race([holdsLock(sql), timeout]))) this.lose('the leader lock is no longer held');
    } finally {
      clearTimeout(timer);
    }
  }

  /** Drops the session (the server releases the lock) and stops the cycle if this replica was leading. */
  private lose(reason: string): void {
    const sql = this.sql;
    this.sql = undefined;
    if (sql) void sql.end({ timeout: 0 }).catch(() => {});
    if (!this.leading) return;
    this.leading = false;
    this.opts.logger.warn({ reason }, 'Lost the lead: the collection cycle stops');
    this.deposing = this.endTerm().catch((e) =>
      this.opts.logger.error({ err: (e as Error).message }, 'Stopping the collection cycle failed'),
    );
  }

  /** Commits one window on the leader's session; rejects (nothing stored) when it does not hold the lock. */
  async store(w: CollectionWindow): Promise<void> {
    const sql = this.sql;
    if (!this.leading || !sql) throw new Error('not the leader: window not stored');
    this.storing++;
    try {
      await sql.begin(async (tx) => {
        if (!(await holdsLock(tx))) throw new Error('the leader lock is no longer held: window not stored');
        await writeWindow(tx, w);
      });
    } finally {
      this.storing--;
    }
  }

  /** Stops campaigning, stops the cycle if leading, then ends the session (releasing the lock). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const sql = this.sql;
    this.leading = false;
    await this.deposing;
    await Promise.all([this.endTerm(), this.idle?.stop()]);
    this.idle = undefined;
    this.sql = undefined;
    await sql?.end({ timeout: 5 });
  }
}
