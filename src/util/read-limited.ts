// Read a whole small stream into memory, refusing anything larger than a limit.
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export class TooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`larger than ${limit} bytes`);
  }
}

export async function readLimited(body: Readable, limit: number, signal?: AbortSignal): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      total += chunk.length;
      if (total > limit) return callback(new TooLargeError(limit));
      chunks.push(chunk);
      callback();
    },
  });
  await pipeline(body, sink, signal ? { signal } : {});
  return Buffer.concat(chunks, total);
}
