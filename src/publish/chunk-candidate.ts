// Whether and how an indexed image gets its chunk index: kept, written, removed, or a problem of that image alone.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChunkSizes } from '../chunks/buzhash.js';
import { isTemplatesError, type TemplatesError } from '../errors.js';
import type { Candidate } from './candidate.js';
import { type IndexedChunks, unchangedChunks, writeChunkIndex } from './chunk-index.js';
import type { IndexedImage } from './state.js';

/**
 * Raw images are chunked (a fetch assembles the raw image the store keeps; chunks of compressed qcow2 would not be
 * shared); a qcow2 is not, nor anything when chunking is off: their stale `.caibx` is removed. An unchanged image keeps
 * its index (`previous`) when the file is as recorded. A failure of this image's bytes is returned, not thrown.
 */
export async function chunkCandidate(
  candidate: Candidate,
  image: IndexedImage,
  previous: IndexedChunks | undefined,
  xz: string,
  sizes: ChunkSizes | undefined,
  signal: AbortSignal,
): Promise<{ chunks: IndexedChunks; written: number } | TemplatesError | undefined> {
  if (!sizes || image.format !== 'raw') {
    await rm(join(candidate.root, `${candidate.handle}.caibx`), { force: true });
    return undefined;
  }
  const kept = await unchangedChunks(candidate, previous, sizes);
  if (kept) return { chunks: kept, written: 0 };
  try {
    return await writeChunkIndex(candidate, image, sizes, xz, signal);
  } catch (error) {
    if (!isTemplatesError(error) || error.code === 'ABORTED' || error.code === 'OUTPUT_IO') throw error;
    return error;
  }
}
