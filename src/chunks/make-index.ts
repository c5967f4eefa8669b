// Index an image in casync's format: chunk it, store each chunk once (when given a store), return the index.
import { createReadStream } from 'node:fs';
import type { ChunkSizes } from './buzhash.js';
import type { ChunkIndex, IndexedChunk } from './caibx.js';
import { BLOB_FLAGS } from './caibx.js';
import { writeChunk } from './chunk-store.js';
import { chunkStream } from './chunker.js';

export interface MakeIndexOptions {
  sizes: ChunkSizes;
  /** A chunk store root (`default.castr`): each chunk it lacks is written there. */
  store?: string;
  signal?: AbortSignal;
}

export interface MadeIndex extends ChunkIndex {
  /** Bytes of chunk files written (0 when every chunk was stored already). */
  written: number;
}

/** Chunks the file at `path` as `casync make --chunk-size MIN:AVG:MAX` does. */
export async function makeIndex(path: string, options: MakeIndexOptions): Promise<MadeIndex> {
  const signal = options.signal;
  return indexChunks(createReadStream(path, { highWaterMark: 1024 * 1024, ...(signal ? { signal } : {}) }), options);
}

/** Chunk files written at once: each is a few small file operations, so one at a time leaves the disk and CPU idle. */
const WRITES_IN_FLIGHT = 16;

/** Chunks the bytes of `source` (an image as it is decoded, for instance). */
export async function indexChunks(source: AsyncIterable<Uint8Array>, options: MakeIndexOptions): Promise<MadeIndex> {
  const chunks: IndexedChunk[] = [];
  let written = 0;
  const writing = new Set<Promise<void>>();
  const seen = new Set<string>();
  let failure: { error: unknown } | undefined;
  try {
    for await (const chunk of chunkStream(source, options.sizes)) {
      chunks.push({ offset: chunk.offset, size: chunk.data.length, id: chunk.id });
      if (!options.store || seen.has(chunk.id)) continue;
      seen.add(chunk.id);
      // A copy: the chunker's bytes are only valid until its next chunk.
      const write = writeChunk(options.store, chunk.id, Buffer.from(chunk.data)).then(
        (bytes) => {
          written += bytes;
        },
        (error: unknown) => {
          failure ??= { error };
        },
      );
      writing.add(write);
      void write.finally(() => writing.delete(write));
      if (writing.size >= WRITES_IN_FLIGHT) await Promise.race(writing);
      if (failure) throw failure.error;
    }
  } finally {
    await Promise.all(writing);
  }
  if (failure) throw failure.error;
  const last = chunks.at(-1);
  return { flags: BLOB_FLAGS, sizes: options.sizes, chunks, length: last ? last.offset + last.size : 0, written };
}
