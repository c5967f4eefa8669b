// Worker thread: hashes a file right behind its writer, then the rest once told its final size (FollowHasher).
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { type BehindData, type BehindReply, workerFailure } from './protocol.js';

const port = parentPort!;
const { path, algorithm } = workerData as BehindData;
const reply = (message: BehindReply) => port.postMessage(message);
const hash = createHash(algorithm);
const buffer = Buffer.allocUnsafe(1024 * 1024);
let fd: number | undefined;
let position = 0;
let final = -1;
port.on('message', (size: number) => {
  final = size;
});

/**
 * Bytes below the file's current size are final (the writers only append, or leave holes that read as zeros): read
 * them in 1 MiB reads from the page cache, and poll while caught up.
 */
function step(): void {
  try {
    fd ??= openSync(path, 'r');
    for (;;) {
      const limit = final >= 0 ? final : fstatSync(fd).size;
      // Writers append a few KiB at a time: wait for a whole buffer rather than chase them with tiny reads.
      if (position >= limit || (final < 0 && limit - position < buffer.length)) break;
      const n = readSync(fd, buffer, 0, Math.min(buffer.length, limit - position), position);
      if (n === 0) throw new Error('the file is shorter than its writer said');
      hash.update(buffer.subarray(0, n));
      position += n;
    }
    if (final >= 0 && position >= final) {
      closeSync(fd);
      reply({ hex: hash.digest('hex') });
      return;
    }
    setTimeout(step, 5);
  } catch (error) {
    reply(workerFailure(error));
  }
}
step();
