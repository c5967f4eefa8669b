// What the store already holds for a delta fetch: its other images, each with its own chunk index, made once and kept.
import { readFile, stat, utimes } from 'node:fs/promises';
import type { ChunkSizes } from '../chunks/buzhash.js';
import { encodeIndex, type IndexedChunk, parseIndex } from '../chunks/caibx.js';
import { makeIndex } from '../chunks/make-index.js';
import { isTemplatesError } from '../errors.js';
import { chunkIndexPath, type VersionKey } from '../store/layout.js';
import { listStored } from '../store/inventory.js';
import type { Store } from '../store/store.js';
import { writeFileAtomic } from '../util/atomic-write.js';

/** At most this many stored images are seeds: the newest versions of the same template. */
const MAX_SEEDS = 3;

export interface Seed {
  path: string;
  chunks: IndexedChunk[];
}

const sameSizes = (a: ChunkSizes, b: ChunkSizes) => a.min === b.min && a.avg === b.avg && a.max === b.max;

/**
 * The seed's index at `sizes`: the kept `<entry>.caibx` when it was cut at these sizes from the image as it is now (its
 * mtime is set to the image's when written), else made now (one read of the image) and kept for the next fetch.
 */
async function seedIndex(store: Store, key: VersionKey, image: string, sizes: ChunkSizes, signal?: AbortSignal) {
  const path = chunkIndexPath(store.root, key);
  const [imageInfo, indexInfo] = await Promise.all([stat(image), stat(path).catch(() => undefined)]);
  // utimes sets the image's mtime to about the millisecond (a Date, through a double): equal within one.
  if (indexInfo && Math.abs(indexInfo.mtimeMs - imageInfo.mtimeMs) < 1) {
    try {
      const kept = parseIndex(await readFile(path), path, imageInfo.size);
      if (sameSizes(kept.sizes, sizes) && kept.length === imageInfo.size) return kept.chunks;
    } catch (error) {
      if (!isTemplatesError(error, 'INDEX_INVALID')) throw error;
    }
  }
  const made = await makeIndex(image, { sizes, ...(signal ? { signal } : {}) });
  await writeKept(path, encodeIndex(made), image);
  return made.chunks;
}

/** The kept index's mtime is its image's: an index older or newer than its image is not taken for it. */
async function writeKept(path: string, data: Uint8Array, image: string): Promise<void> {
  const { atime, mtime } = await stat(image);
  await writeFileAtomic(path, data);
  await utimes(path, atime, mtime);
}

/**
 * Keeps a delta fetch's index beside the entry it made (`image`, just published): the next version's seed index, and
 * what serve offers, without reading the image again. Best effort: without it the index is made when first needed.
 */
export async function keepChunkIndex(root: string, key: VersionKey, image: string, data: Uint8Array): Promise<void> {
  await writeKept(chunkIndexPath(root, key), data, image).catch(() => undefined);
}

/**
 * The newest stored versions of the target's template (never the target itself), with their indexes at `sizes`. A
 * seed that cannot be read (removed meanwhile) is left out; its bytes are checked against each chunk's id when used.
 */
export async function findSeeds(
  store: Store,
  target: VersionKey,
  sizes: ChunkSizes,
  signal?: AbortSignal,
): Promise<Seed[]> {
  const stored = (await listStored({ store }))
    .filter(
      (entry) =>
        entry.key.repository === target.repository &&
        entry.key.template === target.template &&
        entry.key.version !== target.version,
    )
    .sort((a, b) => Date.parse(b.fetchedAt) - Date.parse(a.fetchedAt))
    .slice(0, MAX_SEEDS);
  const seeds: Seed[] = [];
  for (const entry of stored) {
    const chunks = await seedIndex(store, entry.key, entry.path, sizes, signal).catch((error: unknown) => {
      if (signal?.aborted) throw error;
      return undefined;
    });
    if (chunks) seeds.push({ path: entry.path, chunks });
  }
  return seeds;
}
