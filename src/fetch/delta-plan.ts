// What a delta fetch would cost (docs/delta.md): the version's index against the stored images and a partial try.
import type { ChunkSizes } from '../chunks/buzhash.js';
import type { ChunkIndex, IndexedChunk } from '../chunks/caibx.js';
import { chunkId } from '../chunks/chunker.js';
import type { Context } from '../context.js';
import { abortError } from '../errors.js';
import type { Provider } from '../providers/types.js';
import type { Digest } from '../repository/digest.js';
import type { VersionKey } from '../store/layout.js';
import type { Store } from '../store/store.js';
import { readVersionIndex } from './chunk-files.js';
import { type Seed, findSeeds } from './seeds.js';
import { open } from 'node:fs/promises';

export interface DeltaPlan {
  provider: Provider;
  handle: string;
  caibx: { digest: Digest; size?: number };
  /** The image's digest from the repository JSON (else its `.hash` file is read). */
  hash?: Digest;
  size?: number;
  /** The whole `.zst`'s size, when listed: what a delta must cost less than. */
  zstSize?: number;
}

/** What a delta fetch moved: bytes reused from stored images (zeros included) and fetched as chunks. */
export interface DeltaReport {
  chunks: number;
  reusedBytes: number;
  fetchedChunks: number;
  fetchedBytes: number;
  /** The bytes the fetched chunks are estimated to take on the wire (compressed, with a request each). */
  estimatedBytes: number;
}

/** Where each chunk id can be read in the seeds. */
function seedMap(seeds: Seed[]): Map<string, { path: string; offset: number }> {
  const map = new Map<string, { path: string; offset: number }>();
  for (const seed of seeds)
    for (const chunk of seed.chunks)
      if (!map.has(chunk.id)) map.set(chunk.id, { path: seed.path, offset: chunk.offset });
  return map;
}

/** The id of `size` zero bytes (holes: never fetched, never written). */
function zeroIds(): (size: number) => string {
  const known = new Map<number, string>();
  return (size) => {
    let id = known.get(size);
    if (!id) {
      id = chunkId(Buffer.alloc(size));
      known.set(size, id);
    }
    return id;
  };
}

/**
 * The missing chunks' estimated bytes on the wire: the whole `.zst`'s ratio, times 1.3 for chunks compressed alone at a
 * low level, plus a request each; without a listed `.zst`, their raw size.
 */
function estimate(plan: DeltaPlan, index: ChunkIndex, missingBytes: number, missingChunks: number): number {
  const ratio = plan.zstSize !== undefined && index.length > 0 ? (plan.zstSize / index.length) * 1.3 : 1;
  return missingBytes * ratio + missingChunks * 300;
}

/** What the whole file costs: the listed `.zst`, else half the image (the missing chunks' raw size must be under it). */
function wholeCost(plan: DeltaPlan, index: ChunkIndex): number {
  return plan.zstSize !== undefined && index.length > 0 ? plan.zstSize : index.length / 2;
}

/**
 * Which chunks the partial file of an interrupted delta fetch already holds at their offsets (their bytes hash to their
 * ids): kept and not fetched again. A missing file holds none.
 */
async function resumable(
  path: string,
  index: ChunkIndex,
  isZero: (chunk: IndexedChunk) => boolean,
  signal?: AbortSignal,
) {
  const present = new Set<number>();
  const file = await open(path, 'r').catch(() => undefined);
  if (!file) return { exists: false, present };
  try {
    const { size } = await file.stat();
    const buffer = Buffer.allocUnsafe(index.sizes.max);
    for (const [i, chunk] of index.chunks.entries()) {
      if (chunk.offset + chunk.size > size) break;
      if (isZero(chunk)) continue;
      if (signal?.aborted) throw abortError(signal);
      const { bytesRead } = await file.read(buffer, 0, chunk.size, chunk.offset);
      if (bytesRead === chunk.size && chunkId(buffer.subarray(0, chunk.size)) === chunk.id) present.add(i);
    }
  } finally {
    await file.close();
  }
  return { exists: true, present };
}

/** A delta fetch worked out: its index, where each chunk is, and what the rest costs. */
export interface PlannedDelta {
  data: Buffer;
  index: ChunkIndex;
  location: string;
  seeded: Map<string, { path: string; offset: number }>;
  resumed: { exists: boolean; present: Set<number> };
  isZero: (chunk: IndexedChunk) => boolean;
  report: DeltaReport;
  /** Whether it costs less than the whole file (and any stored image or partial try helps). */
  worthIt: boolean;
}

/**
 * Reads the version's index, finds its chunks in the stored versions of the template (indexing those that have no index
 * yet, once) and in `partial` (an interrupted try), and works out what the rest would cost. Downloads no chunk.
 */
export async function planDelta(
  ctx: Context,
  store: Store,
  key: VersionKey,
  plan: DeltaPlan,
  partial: string | undefined,
  signal?: AbortSignal,
): Promise<PlannedDelta> {
  const { data, index, location } = await readVersionIndex(plan.provider, plan.handle, plan.caibx, {
    ...(plan.size !== undefined ? { imageSize: plan.size } : {}),
    maxLength: ctx.maxImageBytes,
    ...(signal ? { signal } : {}),
  });
  const zeroId = zeroIds();
  // Over zeros the rolling hash is constant: it cuts at every min or at max, so a chunk of zeros is min or max bytes
  // long, or the image's last. Other sizes are never hashed as zeros (each would cost a hash of that many bytes).
  const last = index.chunks.at(-1);
  const isZero = (chunk: IndexedChunk) =>
    (chunk.size === index.sizes.max || chunk.size === index.sizes.min || chunk === last) &&
    chunk.id === zeroId(chunk.size);
  const [seeds, resumed] = await Promise.all([
    findSeeds(store, key, index.sizes as ChunkSizes, signal),
    partial ? resumable(partial, index, isZero, signal) : { exists: false, present: new Set<number>() },
  ]);
  const seeded = seedMap(seeds);
  // What the partial file holds is a seed too, for the same chunk elsewhere in the image.
  for (const i of resumed.present) {
    const chunk = index.chunks[i]!;
    if (!seeded.has(chunk.id)) seeded.set(chunk.id, { path: partial!, offset: chunk.offset });
  }
  let missingBytes = 0;
  let missingChunks = 0;
  let reusedData = 0;
  for (const [i, chunk] of index.chunks.entries()) {
    if (isZero(chunk)) continue;
    if (resumed.present.has(i) || seeded.has(chunk.id)) reusedData += chunk.size;
    else {
      missingBytes += chunk.size;
      missingChunks++;
    }
  }
  const report: DeltaReport = {
    chunks: index.chunks.length,
    reusedBytes: index.length - missingBytes,
    fetchedChunks: missingChunks,
    fetchedBytes: missingBytes,
    estimatedBytes: Math.round(estimate(plan, index, missingBytes, missingChunks)),
  };
  return {
    data,
    index,
    location,
    seeded,
    resumed,
    isZero,
    report,
    worthIt: reusedData > 0 && report.estimatedBytes < wholeCost(plan, index),
  };
}
