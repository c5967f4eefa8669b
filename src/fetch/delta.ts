// A delta fetch (docs/delta.md): the version's chunk index, its chunks found in stored images, only the others downloaded.
import { createHash } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import type { ChunkIndex, IndexedChunk } from '../chunks/caibx.js';
import { chunkId } from '../chunks/chunker.js';
import type { Context } from '../context.js';
import { abortError, storeIoError } from '../errors.js';
import { type Digest, sameDigest } from '../repository/digest.js';
import type { VersionKey } from '../store/layout.js';
import { makeRoom } from '../store/room.js';
import type { Store } from '../store/store.js';
import { fetchChunkFile } from './chunk-files.js';
import { type DeltaPlan, type DeltaReport, planDelta } from './delta-plan.js';
import { mismatch } from './download-errors.js';
import { readHash } from './source.js';

/** Chunk downloads in flight at once (casync fetches one at a time). */
const PARALLEL = 8;

export interface DeltaDownloaded {
  path: string;
  location: string;
  size: number;
  digest: Digest;
  report: DeltaReport;
  /** The version's index as read: kept beside the entry, a seed's index for the next version and what serve offers. */
  index: Buffer;
}

/**
 * Assembles the version into `partial` (the entry's partial delta file) from stored images, what an interrupted try
 * left there, and fetched chunks, hashing it in order as it is written (zero chunks left as holes), and checks it against
 * the image's digest. Undefined when no stored image helps or the missing chunks would cost more than the whole file.
 * Failures are typed (INDEX_INVALID, CHUNK_MISMATCH, HASH_MISMATCH, …); the caller then fetches the whole file; an
 * abort leaves `partial` for the next try. `onPlan` hears the cost before any chunk is fetched, `onBytes` each chunk's.
 */
export async function deltaDownload(
  ctx: Context,
  store: Store,
  key: VersionKey,
  plan: DeltaPlan,
  partial: string,
  options: {
    signal?: AbortSignal;
    onPlan?: (report: DeltaReport) => void;
    onBytes?: (fetched: number, total: number) => void;
  } = {},
): Promise<DeltaDownloaded | undefined> {
  const { signal } = options;
  const planned = await planDelta(ctx, store, key, plan, partial, signal);
  if (!planned.worthIt) return undefined;
  const { data, index, location, seeded, resumed, isZero, report } = planned;
  const digest = plan.hash ?? (await readHash(plan.provider, plan.handle, signal));
  if (!digest) return undefined;
  options.onPlan?.(report);
  await makeRoom(store, key, index.length, signal);
  const output = await open(partial, resumed.exists ? 'r+' : 'w').catch((error: unknown) => {
    throw storeIoError(error, partial, 'cannot create');
  });
  const readers = new Map<string, FileHandle>([[partial, output]]);
  try {
    await assemble(
      plan,
      index,
      {
        seeded,
        present: resumed.present,
        resumed: resumed.exists,
        isZero,
        readers,
        output,
        hash: createHash(digest.algorithm),
        digest,
        location,
        path: partial,
        ...(options.onBytes ? { onBytes: options.onBytes } : {}),
        ...(signal ? { signal } : {}),
      },
      report,
    );
  } finally {
    readers.delete(partial);
    await Promise.all([output.close(), ...[...readers.values()].map((reader) => reader.close())]);
  }
  return { path: partial, location, size: index.length, digest, report, index: data };
}

interface Assembly {
  seeded: Map<string, { path: string; offset: number }>;
  /** Chunks the partial file holds in place already (a resumed try). */
  present: Set<number>;
  /** The output is an earlier try's file: a zero chunk's range may hold other bytes. */
  resumed: boolean;
  isZero: (chunk: IndexedChunk) => boolean;
  readers: Map<string, FileHandle>;
  output: FileHandle;
  hash: ReturnType<typeof createHash>;
  digest: Digest;
  location: string;
  path: string;
  onBytes?: (fetched: number, total: number) => void;
  signal?: AbortSignal;
}

/** A chunk's bytes read from `path` at `offset`, when they still hash to its id (a changed seed is not trusted). */
async function readChecked(
  a: Assembly,
  path: string,
  offset: number,
  chunk: IndexedChunk,
): Promise<Buffer | undefined> {
  let reader = a.readers.get(path);
  if (!reader) {
    reader = await open(path, 'r').catch(() => undefined);
    if (!reader) return undefined;
    a.readers.set(path, reader);
  }
  const buffer = Buffer.allocUnsafe(chunk.size);
  const { bytesRead } = await reader.read(buffer, 0, chunk.size, offset);
  return bytesRead === chunk.size && chunkId(buffer) === chunk.id ? buffer : undefined;
}

/** A chunk's bytes from a seed. */
async function fromSeed(a: Assembly, chunk: IndexedChunk): Promise<Buffer | undefined> {
  const at = a.seeded.get(chunk.id);
  return at ? readChecked(a, at.path, at.offset, chunk) : undefined;
}

/** One chunk from the source's chunk store, checked. */
async function fetchChunk(plan: DeltaPlan, chunk: IndexedChunk, signal?: AbortSignal): Promise<Buffer> {
  return (await fetchChunkFile(plan.provider, chunk.id, chunk.size, signal)).data;
}

/** A zero chunk's range of a resumed file made zero again where an earlier try wrote other bytes there. */
async function clearRange(a: Assembly, chunk: IndexedChunk, zeros: Buffer): Promise<void> {
  const buffer = Buffer.allocUnsafe(chunk.size);
  const { bytesRead } = await a.output.read(buffer, 0, chunk.size, chunk.offset);
  if (buffer.subarray(0, bytesRead).equals(zeros.subarray(0, bytesRead))) return;
  await a.output.write(zeros, 0, bytesRead, chunk.offset).catch((error: unknown) => {
    throw storeIoError(error, a.path, 'cannot write');
  });
}

/** In index order: zeros as holes, bytes already in place, seed bytes, or fetched chunks (up to PARALLEL ahead); then the digest checked. */
async function assemble(plan: DeltaPlan, index: ChunkIndex, a: Assembly, report: DeltaReport): Promise<void> {
  const pending = new Map<number, Promise<Buffer>>();
  const wanted = (i: number) => {
    const chunk = index.chunks[i]!;
    return !a.isZero(chunk) && !a.present.has(i) && !a.seeded.has(chunk.id);
  };
  let ahead = 0;
  let fetched = 0;
  const zeros = Buffer.alloc(index.sizes.max);
  const prefetch = (from: number) => {
    for (ahead = Math.max(ahead, from); ahead < index.chunks.length && pending.size < PARALLEL; ahead++) {
      if (!wanted(ahead)) continue;
      const fetching = fetchChunk(plan, index.chunks[ahead]!, a.signal);
      fetching.catch(() => undefined);
      pending.set(ahead, fetching);
    }
  };
  await a.output.truncate(index.length);
  for (const [i, chunk] of index.chunks.entries()) {
    if (a.signal?.aborted) throw abortError(a.signal);
    prefetch(i);
    if (a.isZero(chunk)) {
      if (a.resumed) await clearRange(a, chunk, zeros);
      a.hash.update(zeros.subarray(0, chunk.size));
      continue;
    }
    if (a.present.has(i)) {
      const data = await readChecked(a, a.path, chunk.offset, chunk);
      if (data) {
        a.hash.update(data);
        continue;
      }
    }
    const isFetched = pending.has(i);
    let data = isFetched ? await pending.get(i)! : await fromSeed(a, chunk);
    pending.delete(i);
    let seedFailed = false;
    if (!data) {
      // The seed changed since it was indexed: this chunk is fetched after all.
      seedFailed = true;
      data = await fetchChunk(plan, chunk, a.signal);
      report.fetchedChunks++;
      report.fetchedBytes += chunk.size;
      report.reusedBytes -= chunk.size;
    }
    if (isFetched || seedFailed) {
      fetched += chunk.size;
      a.onBytes?.(fetched, report.fetchedBytes);
    }
    a.hash.update(data);
    await a.output.write(data, 0, data.length, chunk.offset).catch((error: unknown) => {
      throw storeIoError(error, a.path, 'cannot write');
    });
  }
  await a.output.sync();
  const actual: Digest = { algorithm: a.digest.algorithm, hex: a.hash.digest('hex') };
  if (!sameDigest(actual, a.digest)) throw mismatch(a.location, a.digest, actual, 'image assembled from chunks');
}
