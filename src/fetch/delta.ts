// A delta fetch (docs/delta.md): the version's chunk index, its chunks found in stored images, only the others downloaded.
import { type FileHandle, open } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import type { ChunkIndex, IndexedChunk } from '../chunks/caibx.js';
import { chunkId } from '../chunks/chunker.js';
import type { Context } from '../context.js';
import { abortError, storeIoError } from '../errors.js';
import { type Digest, type HashAlgorithm, sameDigest } from '../repository/digest.js';
import type { VersionKey } from '../store/layout.js';
import { makeRoom } from '../store/room.js';
import type { Store } from '../store/store.js';
import { fetchChunkFile } from './chunk-files.js';
import { type DeltaPlan, type DeltaReport, planDelta } from './delta-plan.js';
import { mismatch } from './download-errors.js';
import { ParallelHasher } from './parallel-hasher.js';
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
  const hash = imageHasher(digest.algorithm);
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
        hash,
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
    await Promise.all([output.close(), hash.close(), ...[...readers.values()].map((reader) => reader.close())]);
  }
  return { path: partial, location, size: index.length, digest, report, index: data };
}

interface ImageHasher {
  update(data: Buffer): Promise<void>;
  digest(): Promise<Digest>;
  close(): Promise<void>;
}

/**
 * The image's digest taken on a worker thread as it is assembled (ParallelHasher), while this thread reads seeds and
 * checks each chunk's id: on the bench pair, the two hashes on one core were a third of the delta's time.
 */
function imageHasher(algorithm: HashAlgorithm): ImageHasher {
  const hasher = new ParallelHasher(algorithm);
  // Its pass-through side is not needed.
  hasher.resume();
  return {
    // Resolves once the worker's batch holds the bytes (the write's callback): the caller may then reuse `data`.
    update: (data) =>
      new Promise<void>((resolve, reject) => hasher.write(data, (error) => (error ? reject(error) : resolve()))),
    async digest() {
      hasher.end();
      await finished(hasher);
      return hasher.digest();
    },
    close: () => hasher.close(),
  };
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
  hash: ImageHasher;
  digest: Digest;
  location: string;
  path: string;
  onBytes?: (fetched: number, total: number) => void;
  signal?: AbortSignal;
}

/** An open handle on `path` (a seed, or the partial file), kept for the whole assembly. */
async function readerFor(a: Assembly, path: string): Promise<FileHandle | undefined> {
  let reader = a.readers.get(path);
  if (!reader) {
    reader = await open(path, 'r').catch(() => undefined);
    if (!reader) return undefined;
    a.readers.set(path, reader);
  }
  return reader;
}

/** A chunk's bytes read from `path` at `offset`, when they still hash to its id (a changed seed is not trusted). */
async function readChecked(
  a: Assembly,
  path: string,
  offset: number,
  chunk: IndexedChunk,
): Promise<Buffer | undefined> {
  const reader = await readerFor(a, path);
  if (!reader) return undefined;
  const buffer = Buffer.allocUnsafe(chunk.size);
  const { bytesRead } = await reader.read(buffer, 0, chunk.size, offset);
  return bytesRead === chunk.size && chunkId(buffer) === chunk.id ? buffer : undefined;
}

/** The most bytes copied from a seed in one read and one write. */
const RUN_BYTES = 2 * 1024 * 1024;

/**
 * From chunk `i`: the chunks that come from one seed at consecutive offsets (an unchanged stretch of the image), read
 * and written as one range. Undefined when chunk `i` does not come from a seed.
 */
function seedRun(a: Assembly, index: ChunkIndex, i: number) {
  const from = (k: number) => {
    const chunk = index.chunks[k];
    return chunk && !a.isZero(chunk) && !a.present.has(k) ? a.seeded.get(chunk.id) : undefined;
  };
  const first = from(i);
  if (!first) return undefined;
  let end = i + 1;
  let bytes = index.chunks[i]!.size;
  for (let at = from(end); at; at = from(end)) {
    const size = index.chunks[end]!.size;
    if (at.path !== first.path || at.offset !== first.offset + bytes || bytes + size > RUN_BYTES) break;
    bytes += size;
    end++;
  }
  return { end, path: first.path, offset: first.offset, bytes };
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
  /** A chunk the seed did not hold after all (changed since it was indexed): fetched, and counted so. */
  const refetch = async (chunk: IndexedChunk) => {
    const data = await fetchChunk(plan, chunk, a.signal);
    report.fetchedChunks++;
    report.fetchedBytes += chunk.size;
    report.reusedBytes -= chunk.size;
    fetched += chunk.size;
    a.onBytes?.(fetched, report.fetchedBytes);
    return data;
  };
  const write = (data: Buffer, offset: number) =>
    a.output.write(data, 0, data.length, offset).catch((error: unknown) => {
      throw storeIoError(error, a.path, 'cannot write');
    });
  // Reused for every stretch: the hasher has copied it and the write is done before the next.
  const runBuffer = Buffer.allocUnsafe(RUN_BYTES);
  await a.output.truncate(index.length);
  for (let i = 0; i < index.chunks.length; ) {
    const chunk = index.chunks[i]!;
    if (a.signal?.aborted) throw abortError(a.signal);
    prefetch(i);
    if (a.isZero(chunk)) {
      if (a.resumed) await clearRange(a, chunk, zeros);
      await a.hash.update(zeros.subarray(0, chunk.size));
      i++;
      continue;
    }
    if (a.present.has(i)) {
      const data = await readChecked(a, a.path, chunk.offset, chunk);
      if (data) {
        await a.hash.update(data);
        i++;
        continue;
      }
    }
    const run = pending.has(i) ? undefined : seedRun(a, index, i);
    if (run) {
      // One read and one write for the stretch; each chunk still checked against its id.
      const buffer = runBuffer.subarray(0, run.bytes);
      const reader = await readerFor(a, run.path);
      const { bytesRead } = reader ? await reader.read(buffer, 0, run.bytes, run.offset) : { bytesRead: 0 };
      for (let k = i, at = 0; k < run.end; k++) {
        const part = index.chunks[k]!;
        const slice = buffer.subarray(at, at + part.size);
        if (at + part.size > bytesRead || chunkId(slice) !== part.id) (await refetch(part)).copy(slice);
        at += part.size;
      }
      await a.hash.update(buffer);
      await write(buffer, chunk.offset);
      i = run.end;
      continue;
    }
    let data = pending.has(i) ? await pending.get(i)! : undefined;
    pending.delete(i);
    if (data) {
      fetched += chunk.size;
      a.onBytes?.(fetched, report.fetchedBytes);
    } else data = await refetch(chunk);
    await a.hash.update(data);
    await write(data, chunk.offset);
    i++;
  }
  await a.output.sync();
  const actual = await a.hash.digest();
  if (!sameDigest(actual, a.digest)) throw mismatch(a.location, a.digest, actual, 'image assembled from chunks');
}
