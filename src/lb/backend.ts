// Backends of one load-balancer type, grouped by cluster id: selection strategies (spec lb.md §9.2) and
// TCP health checks (§9.1) that take dead backends out and put them back.

import { connect } from 'node:net';
import type { HttpClient } from '../common/httpclient.js';
import type { Logger } from '../common/logger.js';

export type Strategy = 'round-robin' | 'least-connection';

export class Backend {
  alive = true;
  inFlight = 0;
  /** `origin` + path prefix of the backend URL without trailing slash. */
  readonly origin: string;
  readonly basePath: string;

  constructor(
    readonly url: URL,
    readonly client: HttpClient,
    readonly filterLabels: readonly string[] = [],
  ) {
    this.origin = url.origin;
    this.basePath = url.pathname.replace(/\/+$/, '');
  }

  get hostPort(): { host: string; port: number } {
    const port = this.url.port ? Number(this.url.port) : this.url.protocol === 'https:' ? 443 : 80;
    return { host: this.url.hostname.replace(/^\[|\]$/g, ''), port };
  }

  toString(): string {
    return this.url.toString();
  }
}

export class BackendPool {
  private readonly counters = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly byCluster: ReadonlyMap<string, readonly Backend[]>,
    readonly strategy: Strategy,
    private readonly log: Logger,
  ) {}

  clusterIds(): string[] {
    return [...this.byCluster.keys()];
  }

  has(clusterId: string): boolean {
    return this.byCluster.has(clusterId);
  }

  /** An alive backend of the cluster other than those in `exclude`, or undefined. */
  pick(clusterId: string, exclude: ReadonlySet<Backend> = new Set()): Backend | undefined {
    const list = this.byCluster.get(clusterId) ?? [];
    const usable = (b: Backend) => b.alive && !exclude.has(b);
    if (this.strategy === 'least-connection') {
      let best: Backend | undefined;
      for (const b of list) if (usable(b) && (!best || b.inFlight < best.inFlight)) best = b;
      return best;
    }
    // One counter per cluster [D-LB-7], starting at 0 like the original: current = (current + 1) mod n,
    // up to n attempts.
    let current = this.counters.get(clusterId) ?? 0;
    for (let i = 0; i < list.length; i++) {
      current = (current + 1) % list.length;
      if (usable(list[current]!)) {
        this.counters.set(clusterId, current);
        return list[current];
      }
    }
    this.counters.set(clusterId, current);
    return undefined;
  }

  markDead(b: Backend, why: string): void {
    if (b.alive) this.log.warn({ backend: b.toString(), err: why }, 'Backend marked as dead');
    b.alive = false;
  }

  /** One TCP connection attempt per backend; sets each alive flag. */
  async checkHealth(timeoutMs = 10_000): Promise<void> {
    const all = [...this.byCluster.values()].flat();
    await Promise.all(
      all.map(async (b) => {
        const ok = await tcpProbe(b.hostPort.host, b.hostPort.port, timeoutMs);
        if (ok && !b.alive) this.log.info({ backend: b.toString() }, 'Backend is alive again');
        if (!ok && b.alive) this.log.warn({ backend: b.toString() }, 'Backend is unreachable');
        b.alive = ok;
      }),
    );
  }

  /** Runs health checks now and every `intervalMs`. */
  startHealthChecks(intervalMs = 20_000, timeoutMs = 10_000): void {
    const run = () => {
      this.checkHealth(timeoutMs).catch((e) => this.log.error({ err: (e as Error).message }, 'health check'));
    };
    run();
    this.timer = setInterval(run, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}
