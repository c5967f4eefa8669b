// A Writable that writes a stream into a file descriptor, leaving all-zero blocks as holes.
import { ftruncate, write } from 'node:fs';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { forEachDataRun } from './sparse-runs.js';

const writeAsync = promisify(write);
const truncateAsync = promisify(ftruncate);

/**
 * Writes to `fd` from offset `start` (default 0). Non-zero runs are written with one pwrite each; zero blocks
 * are skipped and the file is extended to its full length at the end. The fd is not closed.
 */
export function createSparseWriter(fd: number, start = 0): Writable {
  let position = start;
  const writeRun = async (chunk: Buffer, from: number, to: number, at: number) => {
    for (let offset = from; offset < to; ) {
      const { bytesWritten } = await writeAsync(fd, chunk, offset, to - offset, at + offset - from);
      offset += bytesWritten;
    }
  };
  const writeChunk = async (chunk: Buffer) => {
    const runs: Array<[number, number]> = [];
    forEachDataRun(chunk, chunk.length, position, (from, to) => runs.push([from, to]));
    for (const [from, to] of runs) await writeRun(chunk, from, to, position + from);
    position += chunk.length;
  };
  return new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      writeChunk(chunk).then(() => callback(), callback);
    },
    final(callback) {
      truncateAsync(fd, position).then(() => callback(), callback);
    },
  });
}
