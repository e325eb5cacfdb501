// Collection windows are written from a worker thread. node:sqlite is synchronous and every running
// unit is upserted again on every window, so on a large cluster one window's transaction takes seconds
// (bench/api-ingest.ts: ~20k units/s) during which the main thread — and every HTTP request — would
// stall. The worker has its own writer connection; WAL mode and busy_timeout serialise it with the few
// writes left on the main connection (admin users, retention, backups).

import { extname } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { CollectionWindow } from './index.js';
import type { StoreReply, StoreRequest, UnitsChunk } from './writer-thread.js';

/** Units cloned per message (~10 ms of main-thread work each). */
const UNITS_PER_MESSAGE = 2000;

interface Pending {
  resolve(): void;
  reject(e: Error): void;
}

// Same extension as this module: `.js` from dist/, `.ts` when run from source under tsx (tests, benchmarks),
// whose loader hooks Node.js 24 carries into worker threads.
const THREAD = new URL(`./writer-thread${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

export class WindowWriter {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private readonly inflight = new Set<Promise<void>>();
  private closed = false;

  /** `onAnalyzed`: a stored window refreshed the planner statistics (read connections should be reopened). */
  constructor(
    private readonly dataPath: string,
    private readonly onAnalyzed: () => void = () => {},
  ) {}

  /** Stores one window in ONE transaction (CeemsDb.storeCollection); rejects when it was not stored. */
  store(window: CollectionWindow): Promise<void> {
    if (this.closed) return Promise.reject(new Error('DB writer is closed'));
    const worker = this.ensureWorker();
    const id = this.nextId++;
    const stored = new Promise<void>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.inflight.add(stored);
    const forget = () => this.inflight.delete(stored);
    stored.then(forget, forget);
    void this.send(worker, id, window);
    return stored;
  }

  /** Posts the units in chunks, yielding between them: cloning 100k units at once blocks for ~0.75 s. */
  private async send(worker: Worker, id: number, window: CollectionWindow): Promise<void> {
    const { units } = window;
    let i = 0;
    for (; units.length - i > UNITS_PER_MESSAGE; i += UNITS_PER_MESSAGE) {
      worker.postMessage({ id, units: units.slice(i, i + UNITS_PER_MESSAGE) } satisfies UnitsChunk);
      await yieldToEventLoop();
    }
    worker.postMessage({ id, window: { ...window, units: units.slice(i) } } satisfies StoreRequest);
  }

  /** Waits for the windows being stored, then closes the worker's connection. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.inflight);
    const w = this.worker;
    if (!w) return;
    const exited = new Promise<void>((r) => w.once('exit', () => r()));
    w.postMessage('close');
    await exited;
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(THREAD, { workerData: { dataPath: this.dataPath } });
    w.on('message', (m: StoreReply) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.analyzed) this.onAnalyzed();
      if (m.error === undefined) p?.resolve();
      else p?.reject(new Error(m.error));
    });
    // A dead worker fails what it held; the next window starts a new one.
    const fail = (e: Error) => {
      if (this.worker === w) this.worker = undefined;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    w.on('error', (e) => fail(new Error(`DB writer thread failed: ${e.message}`)));
    w.on('exit', (code) => fail(new Error(`DB writer thread exited (code ${code})`)));
    this.worker = w;
    return w;
  }
}
