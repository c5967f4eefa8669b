// A Writable that writes a stream into a file descriptor, leaving all-zero blocks as holes.
import { ftruncate, write } from 'node:fs';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';

const writeAsync = promisify(write);
const truncateAsync = promisify(ftruncate);

/** Hole granularity: the filesystem block size of ext4/xfs. */
const SPARSE_BLOCK = 4096;
const ZEROS = Buffer.alloc(SPARSE_BLOCK);

function isZero(chunk: Buffer, start: number, end: number): boolean {
  return chunk.compare(ZEROS, 0, end - start, start, end) === 0;
}

/**
 * Writes to `fd` from offset `start` (default 0). Non-zero runs are written with one pwrite each; zero blocks
 * are skipped and the file is extended to its full length at the end. The fd is not closed.
 */
export function createSparseWriter(fd: number, start = 0): Writable {
  let position = start;
  const writeRun = async (chunk: Buffer, from: number, to: number, at: number) => {
    let offset = from;
    while (offset < to) {
      const { bytesWritten } = await writeAsync(fd, chunk, offset, to - offset, at + offset - from);
      offset += bytesWritten;
    }
  };
  const writeChunk = async (chunk: Buffer) => {
    // Blocks are aligned to the file offset so holes fall on filesystem block boundaries.
    let runStart = -1;
    let offset = 0;
    while (offset < chunk.length) {
      const boundary = SPARSE_BLOCK - ((position + offset) % SPARSE_BLOCK);
      const end = Math.min(chunk.length, offset + boundary);
      if (isZero(chunk, offset, end)) {
        if (runStart >= 0) await writeRun(chunk, runStart, offset, position + runStart);
        runStart = -1;
      } else if (runStart < 0) {
        runStart = offset;
      }
      offset = end;
    }
    if (runStart >= 0) await writeRun(chunk, runStart, chunk.length, position + runStart);
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
