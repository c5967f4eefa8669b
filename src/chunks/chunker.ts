// Cut a stream of bytes into casync's chunks, each with its SHA-512/256 id (what `casync make` does to a blob).
import { createHash } from 'node:crypto';
import { type ChunkSizes, chunkLength, discriminator } from './buzhash.js';

export interface Chunk {
  offset: number;
  /** The chunk's bytes (valid until the next chunk is asked for). */
  data: Buffer;
  id: string;
}

/** A chunk's id: SHA-512/256 of its uncompressed bytes, in hex. */
export function chunkId(data: Uint8Array): string {
  return createHash('sha512-256').update(data).digest('hex');
}

/** The chunks of `source`, in order; bytes are gathered until `max` are buffered (or the source ends) for each cut. */
export async function* chunkStream(source: AsyncIterable<Uint8Array>, sizes: ChunkSizes): AsyncGenerator<Chunk> {
  const d = discriminator(sizes);
  let data = Buffer.alloc(0);
  let start = 0;
  let offset = 0;
  const pending: Uint8Array[] = [];
  let pendingBytes = 0;
  const cut = function* (final: boolean): Generator<Chunk> {
    for (;;) {
      const length = chunkLength(data, start, data.length - start, sizes, d, final);
      if (length === undefined || length === 0) return;
      const bytes = data.subarray(start, start + length);
      yield { offset, data: bytes, id: chunkId(bytes) };
      start += length;
      offset += length;
    }
  };
  for await (const piece of source) {
    pending.push(piece);
    pendingBytes += piece.length;
    if (data.length - start + pendingBytes < sizes.max) continue;
    data = Buffer.concat([data.subarray(start), ...pending]);
    start = 0;
    pending.length = 0;
    pendingBytes = 0;
    yield* cut(false);
  }
  data = Buffer.concat([data.subarray(start), ...pending]);
  start = 0;
  yield* cut(true);
}
