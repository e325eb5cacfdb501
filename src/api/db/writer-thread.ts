// Worker thread of WindowWriter (writer.ts): owns one writer connection and stores the windows it is sent.

import { parentPort, workerData } from 'node:worker_threads';
import { CeemsDb, type CollectionWindow, type UnitRecord } from './index.js';

/** Units of window `id`, sent ahead of it in chunks so that no single clone stalls the main thread. */
export interface UnitsChunk {
  id: number;
  units: UnitRecord[];
}
/** Window `id` with its last units: store it with every chunk received before. */
export interface StoreRequest {
  id: number;
  window: CollectionWindow;
}
export interface StoreReply {
  id: number;
  error?: string;
  /** The window changed the planner statistics (CeemsDb.optimize): readers should be reopened. */
  analyzed?: boolean;
}

const port = parentPort!;
const db = CeemsDb.open((workerData as { dataPath: string }).dataPath);
const chunks = new Map<number, UnitRecord[]>();
port.on('message', (m: UnitsChunk | StoreRequest | 'close') => {
  if (m === 'close') {
    db.close();
    port.close();
    return;
  }
  if ('units' in m) {
    const list = chunks.get(m.id) ?? [];
    for (const u of m.units) list.push(u);
    chunks.set(m.id, list);
    return;
  }
  const earlier = chunks.get(m.id) ?? [];
  chunks.delete(m.id);
  const reply: StoreReply = { id: m.id };
  try {
    db.storeCollection({ ...m.window, units: [...earlier, ...m.window.units] });
  } catch (e) {
    reply.error = (e as Error).message;
  }
  // Here, off the main thread, a table that grew 10-fold since its last ANALYZE is analyzed again. The
  // window is committed whatever happens: a failure must not make the cycle store it twice.
  try {
    if (reply.error === undefined && db.optimize()) reply.analyzed = true;
  } catch {
    // Statistics are an optimisation; the next window tries again.
  }
  port.postMessage(reply);
});
