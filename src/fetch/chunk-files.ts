// A version's chunk index and one chunk of a chunk store, read from a provider and checked (docs/delta.md).
import { createHash } from 'node:crypto';
import { type ChunkIndex, parseIndex } from '../chunks/caibx.js';
import { decodeChunk } from '../chunks/chunk-store.js';
import { TemplatesError, abortError } from '../errors.js';
import type { Provider } from '../providers/types.js';
import { type Digest, sameDigest } from '../repository/digest.js';
import { readLimited } from '../util/read-limited.js';
import { mismatch } from './download-errors.js';

/** The most bytes an index may have when the repository does not give its size: 64 MiB (1.6 million chunks). */
const MAX_INDEX_BYTES = 64 * 1024 * 1024;

export interface IndexSpec {
  digest: Digest;
  size?: number;
}

/**
 * `handle.caibx`, its bytes checked against the repository's digest before they are parsed, and the image length it
 * describes checked against `imageSize` when known (else bounded by `maxLength`).
 */
export async function readVersionIndex(
  provider: Provider,
  handle: string,
  spec: IndexSpec,
  options: { imageSize?: number; maxLength: number; signal?: AbortSignal },
): Promise<{ data: Buffer; index: ChunkIndex; location: string }> {
  const { signal } = options;
  const opened = await provider.open(handle, '.caibx', signal ? { signal } : {});
  const location = provider.locate(handle, '.caibx');
  if (!opened)
    throw new TemplatesError('INDEX_INVALID', `${location} does not exist though the repository lists it`, {
      url: location,
    });
  const data = await readLimited(opened.body, spec.size ?? MAX_INDEX_BYTES, signal).catch((error: unknown) => {
    if (signal?.aborted) throw abortError(signal);
    throw new TemplatesError(
      'INDEX_INVALID',
      `${location}: ${(error as Error).message}`,
      { url: location },
      { cause: error },
    );
  });
  const actual: Digest = {
    algorithm: spec.digest.algorithm,
    hex: createHash(spec.digest.algorithm).update(data).digest('hex'),
  };
  if (!sameDigest(actual, spec.digest)) throw mismatch(location, spec.digest, actual, 'chunk index');
  const index = parseIndex(data, location, options.imageSize ?? options.maxLength);
  if (options.imageSize !== undefined && index.length !== options.imageSize)
    throw new TemplatesError(
      'INDEX_INVALID',
      `${location} describes ${index.length} bytes, not the image's ${options.imageSize}`,
      { url: location },
    );
  return { data, index, location };
}

/** A chunk's handle below a chunk store's parent (casync's `default.castr/<4 hex>/<id>`; suffix `.cacnk`). */
function chunkHandle(id: string): string {
  return `default.castr/${id.slice(0, 4)}/${id}`;
}

/**
 * One chunk from the `default.castr/` beside the provider's root: its file (zstd, never longer than `size` can compress
 * to) and its bytes, checked against its id and size. A missing, truncated, oversized or lying chunk is CHUNK_MISMATCH.
 */
export async function fetchChunkFile(
  provider: Provider,
  id: string,
  size: number,
  signal?: AbortSignal,
): Promise<{ file: Buffer; data: Buffer }> {
  const handle = chunkHandle(id);
  const where = provider.locate(handle, '.cacnk');
  const opened = await provider.open(handle, '.cacnk', signal ? { signal } : {});
  if (!opened)
    throw new TemplatesError('CHUNK_MISMATCH', `${where}: chunk ${id} is missing from the chunk store`, {
      url: where,
      expected: id,
      hint: 'the whole file is fetched instead; ask the owner to run templates index again',
    });
  // zstd never grows data by more than this: a longer file is not this chunk.
  const file = await readLimited(opened.body, size + (size >> 7) + 1024, signal).catch((error: unknown) => {
    if (signal?.aborted) throw abortError(signal);
    throw new TemplatesError(
      'CHUNK_MISMATCH',
      `${where}: ${(error as Error).message}`,
      { url: where, expected: id },
      { cause: error },
    );
  });
  return { file, data: decodeChunk(file, id, size, where) };
}
