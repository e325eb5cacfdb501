// Worker thread of WindowWriter (writer.ts): owns one writer connection and stores the windows it is sent.

import { parentPort, workerData } from 'node:worker_threads';
import { CeemsDb, type CollectionWindow } from './index.js';

export interface StoreRequest {
  id: number;
  window: CollectionWindow;
}
export interface StoreReply {
  id: number;
  error?: string;
}

const port = parentPort!;
const db = CeemsDb.open((workerData as { dataPath: string }).dataPath);
port.on('message', (m: StoreRequest | 'close') => {
  if (m === 'close') {
    db.close();
    port.close();
    return;
  }
  const reply: StoreReply = { id: m.id };
  try {
    db.storeCollection(m.window);
  } catch (e) {
    reply.error = (e as Error).message;
  }
  port.postMessage(reply);
});
