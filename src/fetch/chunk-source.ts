// What a cache host offers of casync's format: each version's index, and a repository's chunks from the images it
// stores, from chunks it pulled before, or from upstream once however many ask (docs/delta.md).
import { createHash } from 'node:crypto';
import { open, readFile, rm } from 'node:fs/promises';
import { type ChunkIndex, parseIndex } from '../chunks/caibx.js';
import { chunkPath, compressChunk, decodeChunk, writeChunkFile } from '../chunks/chunk-store.js';
import { chunkId } from '../chunks/chunker.js';
import type { Context } from '../context.js';
import { isTemplatesError } from '../errors.js';
import { sameDigest } from '../repository/digest.js';
import type { VersionSpec } from '../repository/model.js';
import { chunkIndexPath, entryName, servedChunkRoot, type VersionKey } from '../store/layout.js';
import type { Store } from '../store/store.js';
import { fetchChunkFile, readVersionIndex } from './chunk-files.js';
import { keepChunkIndex } from './seeds.js';
import { readAtSource } from './sidecar.js';

/** A stored image a repository's chunks can be read from. */
interface StoredImage {
  key: VersionKey;
  path: string;
}

/** A chunk file (zstd) to send, and where it came from. */
interface ServedChunk {
  file: Buffer;
  /** Its decoded size. */
  size: number;
  /** `store`: cut from a stored image; `kept`: pulled before; `upstream`: pulled now. */
  from: 'store' | 'kept' | 'upstream';
}

export interface ChunkSource {
  /**
   * The version's index as upstream lists it (`upstream.caibx`): the one kept beside the stored image when it is that
   * one, else upstream's, checked against its digest (and kept beside the stored image). Undefined without an index.
   */
  index(key: VersionKey, upstream: VersionSpec | undefined, image?: string): Promise<Buffer | undefined>;
  /**
   * A chunk of one of the repository's indexes (those kept beside its stored images, and those lately served), or
   * undefined. `upstreams`: the repository's versions with an index, whose sources a missing chunk is pulled from.
   */
  chunk(
    repository: string,
    id: string,
    stored: StoredImage[],
    upstreams: VersionSpec[],
  ): Promise<ServedChunk | undefined>;
}

interface Located {
  size: number;
  /** A stored image holding it, and where. */
  path?: string;
  offset?: number;
}

/** How many served indexes of versions not stored are remembered (their chunks may then be pulled through). */
const RECENT_INDEXES = 16;

export interface ChunkSourceOptions {
  store: Store;
  context: Context;
  signal?: AbortSignal;
  /** Bytes as they move: chunk bytes cut from stored images (`reused`), pulled from upstream (`pulled`). */
  onBytes?: (kind: 'reused' | 'pulled', bytes: number) => void;
}

export function createChunkSource(options: ChunkSourceOptions): ChunkSource {
  const { store, context, signal } = options;
  const recent = new Map<string, { repository: string; chunks: Map<string, Located> }>();
  const storedMaps = new Map<string, { from: StoredImage[]; chunks: Map<string, Located> }>();
  const indexing = new Map<string, Promise<Buffer | undefined>>();
  const pulling = new Map<string, Promise<ServedChunk | undefined>>();
  const readOptions = (what: string) => ({ what, store, context, ...(signal ? { signal } : {}) });

  const remember = (key: VersionKey, index: ChunkIndex, image?: string) => {
    const chunks = new Map<string, Located>();
    for (const chunk of index.chunks)
      chunks.set(chunk.id, { size: chunk.size, ...(image ? { path: image, offset: chunk.offset } : {}) });
    const name = entryName(key);
    recent.delete(name);
    recent.set(name, { repository: key.repository, chunks });
    while (recent.size > RECENT_INDEXES) recent.delete(recent.keys().next().value!);
  };

  const readIndex = async (key: VersionKey, upstream: VersionSpec, image?: string): Promise<Buffer | undefined> => {
    const spec = upstream.caibx!;
    const keptPath = chunkIndexPath(store.root, key);
    if (image) {
      const kept = await readFile(keptPath).catch(() => undefined);
      const hex = kept && createHash(spec.digest.algorithm).update(kept).digest('hex');
      if (kept && sameDigest({ algorithm: spec.digest.algorithm, hex: hex! }, spec.digest)) {
        remember(key, parseIndex(kept, keptPath), image);
        return kept;
      }
    }
    const { data, index } = await readAtSource(upstream, readOptions(entryName(key)), (provider) =>
      readVersionIndex(provider, upstream.handle, spec, {
        ...(upstream.size !== undefined ? { imageSize: upstream.size } : {}),
        maxLength: context.maxImageBytes,
        ...(signal ? { signal } : {}),
      }),
    );
    if (image) await keepChunkIndex(store.root, key, image, data);
    remember(key, index, image);
    return data;
  };

  /** id → where, over the kept indexes of the repository's stored images (read again when the store changed). */
  const storedChunks = async (repository: string, stored: StoredImage[]) => {
    const known = storedMaps.get(repository);
    if (known?.from === stored) return known.chunks;
    const chunks = new Map<string, Located>();
    for (const image of stored) {
      if (image.key.repository !== repository) continue;
      const path = chunkIndexPath(store.root, image.key);
      const data = await readFile(path).catch(() => undefined);
      if (!data) continue;
      try {
        for (const chunk of parseIndex(data, path).chunks)
          if (!chunks.has(chunk.id)) chunks.set(chunk.id, { size: chunk.size, path: image.path, offset: chunk.offset });
      } catch (error) {
        if (!isTemplatesError(error, 'INDEX_INVALID')) throw error;
      }
    }
    storedMaps.set(repository, { from: stored, chunks });
    return chunks;
  };

  /** The chunk's bytes at `at` in a stored image, when they still hash to its id. */
  const cut = async (id: string, at: Located): Promise<Buffer | undefined> => {
    const file = await open(at.path!, 'r').catch(() => undefined);
    if (!file) return undefined;
    try {
      const data = Buffer.allocUnsafe(at.size);
      const { bytesRead } = await file.read(data, 0, at.size, at.offset);
      return bytesRead === at.size && chunkId(data) === id ? data : undefined;
    } finally {
      await file.close();
    }
  };

  const pull = async (repository: string, id: string, size: number, upstreams: VersionSpec[]) => {
    const root = servedChunkRoot(store.root, repository);
    const keptFile = await readFile(chunkPath(root, id)).catch(() => undefined);
    if (keptFile) {
      try {
        decodeChunk(keptFile, id, size, chunkPath(root, id));
        return { file: keptFile, size, from: 'kept' as const };
      } catch {
        await rm(chunkPath(root, id), { force: true });
      }
    }
    // One source each: versions of a repository mostly share theirs.
    const tried = new Set<string>();
    let failure: unknown;
    for (const version of upstreams) {
      const source = JSON.stringify(version.source);
      if (tried.has(source)) continue;
      tried.add(source);
      try {
        const { file } = await readAtSource(version, readOptions(`${repository} chunk ${id}`), (provider) =>
          fetchChunkFile(provider, id, size, signal),
        );
        options.onBytes?.('pulled', file.length);
        await writeChunkFile(root, id, file);
        return { file, size, from: 'upstream' as const };
      } catch (error) {
        failure = error;
      }
    }
    if (failure) throw failure;
    return undefined;
  };

  return {
    async index(key, upstream, image) {
      if (!upstream?.caibx) return undefined;
      const name = `${entryName(key)}\0${image ?? ''}`;
      let reading = indexing.get(name);
      if (!reading) {
        reading = readIndex(key, upstream, image).finally(() => indexing.delete(name));
        indexing.set(name, reading);
      }
      return reading;
    },

    async chunk(repository, id, stored, upstreams) {
      const located: Located[] = [];
      const own = (await storedChunks(repository, stored)).get(id);
      if (own) located.push(own);
      for (const entry of recent.values()) {
        const at = entry.repository === repository ? entry.chunks.get(id) : undefined;
        if (at) located.push(at);
      }
      if (!located.length) return undefined;
      for (const at of located.filter((at) => at.path)) {
        const data = await cut(id, at);
        if (data) {
          options.onBytes?.('reused', data.length);
          return { file: compressChunk(data), size: data.length, from: 'store' };
        }
      }
      const key = `${repository}/${id}`;
      let pulled = pulling.get(key);
      if (!pulled) {
        pulled = pull(repository, id, located[0]!.size, upstreams).finally(() => pulling.delete(key));
        pulling.set(key, pulled);
      }
      return pulled;
    },
  };
}
