// Worker thread: hashes the batches of bytes ParallelHasher posts, giving each buffer back to be filled again.
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import type { BatchesData, BatchesReply } from './protocol.js';

const port = parentPort!;
const hash = createHash((workerData as BatchesData).algorithm);
const reply = (message: BatchesReply, transfer?: ArrayBuffer[]) => port.postMessage(message, transfer);

port.on('message', (data: Uint8Array | null) => {
  if (data === null) return reply({ hex: hash.digest('hex') });
  hash.update(data);
  // The buffer goes back (transferred, not copied): no garbage, so memory stays at the batches in flight.
  reply({ done: data }, [data.buffer as ArrayBuffer]);
});
