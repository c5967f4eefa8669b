// Worker thread: reads the decoder's FIFO, hashes the bytes and writes their non-zero blocks into the image (fifo-sink.ts).
import { createHash } from 'node:crypto';
import { closeSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { forEachDataRun } from '../sparse-runs.js';
import { type FifoData, type FifoReply, workerFailure } from './protocol.js';

const port = parentPort!;
const { fifo, fd, algorithm, limit } = workerData as FifoData;
const reply = (message: FifoReply) => port.postMessage(message);

/** One reused 1 MiB buffer: read, hash, write the data runs at their offsets; past `limit` bytes it stops. */
function run(): void {
  const hash = createHash(algorithm);
  const buffer = Buffer.allocUnsafe(1024 * 1024);
  let input: number | undefined;
  try {
    // A writer holds the FIFO open already, so this does not block.
    input = openSync(fifo, 'r');
    reply({ ready: true });
    let position = 0;
    for (;;) {
      const n = readSync(input, buffer, 0, buffer.length, null);
      if (n === 0) break;
      // Stopping closes the FIFO, so the decoder fails on its next write.
      if (position + n > limit) {
        reply({ tooLarge: position + n });
        return;
      }
      hash.update(buffer.subarray(0, n));
      forEachDataRun(buffer, n, position, (start, end) => {
        for (let at = start; at < end; ) at += writeSync(fd, buffer, at, end - at, position + at);
      });
      position += n;
    }
    ftruncateSync(fd, position);
    reply({ hex: hash.digest('hex'), size: position });
  } catch (error) {
    reply(workerFailure(error));
  } finally {
    if (input !== undefined) closeSync(input);
  }
}
run();
