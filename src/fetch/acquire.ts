// Under the entry's lock: check again, clean leftovers, download, verify and publish one version (loaded only on a cache miss).
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Context } from '../context.js';
import { abortError, storeIoError } from '../errors.js';
import { tryDelta } from './delta-attempt.js';
import { keepChunkIndex } from './seeds.js';
import { providerFor } from '../providers/index.js';
import type { Provider } from '../providers/types.js';
import { formatDigest } from '../repository/digest.js';
import type { Resolved } from '../repository/resolve.js';
import {
  compressedPath,
  deltaPartialPath,
  entryTempDir,
  hashPath,
  lockOwnerPath,
  metadataPath,
  partialPath,
  partialStatePath,
  recordPath,
  tempPrefix,
  type VersionKey,
} from '../store/layout.js';
import { withEntryLock } from '../store/lock.js';
import { commitEntry } from '../store/commit.js';
import { makeRoom } from '../store/room.js';
import type { EntryRecord } from '../store/record.js';
import { readSettledEntry, readStoredEntry, type Store } from '../store/store.js';
import { TOOL_NAME, TOOL_VERSION } from '../version.js';
import { downloadImage, type Downloaded } from './download.js';
import { hashFile } from '../util/hash-file.js';
import { hashSparseFile } from './sparse-hash.js';
import { cachedResult, type FetchResult } from './result.js';
import { findPartial, partialFiles } from './partial.js';
import { tryServers } from './servers.js';
import { withArtifactDigests } from './oci-ref.js';
import { createOciProvider } from '../providers/oci.js';
import type { ProgressCallback } from './progress.js';
import { readMetadata } from './source.js';

/**
 * Removes this attempt's temp files (`prefix`), or, without it, every leftover of earlier attempts at this entry
 * (killed processes) except a partial download kept for resume and the lock's owner file. Only safe under the entry's lock.
 */
async function removeTempFiles(store: Store, key: VersionKey, prefix?: string): Promise<void> {
  const dir = entryTempDir(store.root, key);
  const names = await readdir(dir).catch(() => [] as string[]);
  const own = prefix ? `${basename(prefix)}.` : undefined;
  const keep = new Set(
    [partialPath, partialStatePath, deltaPartialPath, lockOwnerPath].map((path) => basename(path(store.root, key))),
  );
  await Promise.all(
    names
      .filter((name) => (own ? name.startsWith(own) : !keep.has(name)))
      .map((name) => rm(join(dir, name), { force: true, recursive: true })),
  );
}

/**
 * `algo:hex` of the raw file about to be stored: known already unless the image was converted (or had no image digest).
 * On the compressed fast path it is the published image digest, which nothing checked (hashing 2 GiB more is not cheap
 * there): recorded as unchecked, so that verify tells a wrong `.hash` from an image that changed.
 */
async function storedDigest(
  ctx: Context,
  downloaded: Downloaded,
  signal: AbortSignal,
): Promise<{ digest: string; checked?: false }> {
  if (downloaded.sourceFormat === 'raw') {
    if (downloaded.verified.of === 'image')
      return { digest: `${downloaded.verified.digest.algorithm}:${downloaded.verified.digest.hex}` };
    if (downloaded.imageHash)
      return { digest: `${downloaded.imageHash.algorithm}:${downloaded.imageHash.hex}`, checked: false };
  }
  const { sha256 } = await hashSparseFile(ctx.qemuImg, downloaded.path, ['sha256'], signal).catch((error: unknown) => {
    throw signal.aborted ? abortError(signal) : storeIoError(error, downloaded.path, 'cannot read');
  });
  return { digest: `sha256:${sha256}` };
}

/** SHA-256 and size of the kept `.xz` or `.zst`: known already when it was the verified file, else read once more (page cache). */
async function keptDigest(downloaded: Downloaded, signal: AbortSignal): Promise<{ digest: string; size: number }> {
  const path = downloaded.compressedFile!;
  const { size } = await stat(path);
  const verified = downloaded.verified;
  if (verified.of !== 'image' && verified.digest.algorithm === 'sha256')
    return { digest: `sha256:${verified.digest.hex}`, size };
  const { sha256 } = await hashFile(path, ['sha256'], signal).catch((error: unknown) => {
    throw signal.aborted ? abortError(signal) : storeIoError(error, path, 'cannot read');
  });
  return { digest: `sha256:${sha256}`, size };
}

/** The decoded image's size in bytes that lago-style metadata may give (`size`), when it is a plausible byte count. */
function declaredSize(metadata: Record<string, unknown>): number | undefined {
  const size = metadata.size;
  return typeof size === 'number' && Number.isSafeInteger(size) && size > 0 ? size : undefined;
}

/**
 * Metadata and verified image from one server. The metadata is asked for alongside the image (a round trip less);
 * it is small, and a broken one still fails the fetch before any image byte is read.
 */
async function fromServer(
  ctx: Context,
  store: Store,
  resolved: Resolved,
  provider: Provider,
  prefix: string,
  signal: AbortSignal,
  onProgress: ProgressCallback | undefined,
  override?: SourceOverride,
) {
  const { key, version, ref } = resolved;
  const metadata = readMetadata(provider, version.handle, signal);
  // Awaited below (or by downloadImage first); this only keeps an early failure from going unhandled meanwhile.
  metadata.catch(() => undefined);
  // A cache host keeps the compressed file it serves, which a delta fetch does not have: it fetches whole files.
  if (version.caibx && !override && !store.keepCompressed) {
    const delta = await tryDelta(ctx, store, resolved, provider, signal, onProgress);
    if (delta) return { metadata: await metadata, downloaded: delta };
  }
  const downloaded = await downloadImage(
    ctx,
    {
      provider,
      handle: version.handle,
      ...(version.hash ? { hash: version.hash } : {}),
      ...(version.compressedHash && !(override?.preferImageHash && version.hash)
        ? { compressedHash: version.compressedHash }
        : {}),
      ...(version.zst && !(override?.preferImageHash && version.hash) ? { zst: version.zst } : {}),
      ...(version.format ? { format: version.format } : {}),
      ...(version.size !== undefined ? { size: version.size } : {}),
    },
    prefix,
    {
      signal,
      ready: metadata,
      // Room for it before the first byte: what still comes, plus (compressed) the image it decodes to.
      admit: async ({ bytes, compressed }) => {
        const decoded = version.size ?? declaredSize(await metadata);
        const needed = compressed ? (bytes ?? 0) + (decoded ?? bytes ?? 0) : (bytes ?? decoded ?? 0);
        await makeRoom(store, key, needed, signal);
      },
      onConvert: (format) => onProgress?.({ ref, phase: 'convert', format }),
      onBytes: (bytes, total, location) =>
        onProgress?.({ ref, phase: 'download', location, bytes, ...(total !== undefined ? { total } : {}) }),
      resume: { files: partialFiles(store.root, key), maxAgeMs: store.partialMaxAgeMs, now: ctx.now() },
      keepCompressed: store.keepCompressed,
      // A store that keeps compressed copies serves others (templates serve): its downloads run ahead of its own decoding.
      ...(store.keepCompressed
        ? {
            decodeBehind: { nice: 19 },
            onCompressedVerified: () => onProgress?.({ ref, phase: 'verified', of: 'compressed' }),
          }
        : {}),
    },
  );
  return { metadata: await metadata, downloaded };
}

/** The version's bytes: from the override (import), a file source, or the first of the http source's servers that delivers. */
async function fetchBytes(
  ctx: Context,
  store: Store,
  resolved: Resolved,
  prefix: string,
  signal: AbortSignal,
  onProgress: ProgressCallback | undefined,
  override?: SourceOverride,
): Promise<{
  metadata: Record<string, unknown>;
  downloaded: Downloaded;
  delivered?: { server: string; mirror: boolean };
}> {
  const { version, ref, key } = resolved;
  const source = version.source;
  if (source.type === 'oci' && !override) {
    // The manifest gives what the JSON may not: the layer's digest (the .xz), the raw image's, its size.
    const provider = createOciProvider(source, ctx.http, ctx);
    const found = await provider.inspect(resolved.version.handle, signal);
    if (found.kind === 'template')
      return fromServer(
        ctx,
        store,
        { ...resolved, version: withArtifactDigests(resolved.version, found) },
        provider,
        prefix,
        signal,
        onProgress,
      );
    // A container image: its /disk/<file> (a KubeVirt containerDisk), extracted into this attempt's temp files.
    return fromServer(
      ctx,
      store,
      resolved,
      provider.containerDisk(found.manifest, `${prefix}.disk`, ctx.maxImageBytes),
      prefix,
      signal,
      onProgress,
    );
  }
  if (override || source.type !== 'http') {
    const provider = override?.provider ?? providerFor(source, ctx.http, ctx);
    return fromServer(ctx, store, resolved, provider, prefix, signal, onProgress, override);
  }
  const delivered = await tryServers(
    ctx,
    source,
    {
      what: ref,
      health: store.serverHealth,
      handle: version.handle,
      signal,
      partialUrl: async () => (await findPartial(partialFiles(store.root, key), store.partialMaxAgeMs, ctx.now()))?.url,
      onServerFailed: (failed, next) =>
        onProgress?.({
          ref,
          phase: 'server-failed',
          url: failed.url,
          code: failed.code,
          message: failed.message,
          next,
        }),
    },
    ({ provider }) => fromServer(ctx, store, resolved, provider, prefix, signal, onProgress),
  );
  return { ...delivered.value, delivered: { server: delivered.server, mirror: delivered.mirror } };
}

async function downloadAndPublish(
  ctx: Context,
  store: Store,
  resolved: Resolved,
  signal: AbortSignal,
  onProgress: ProgressCallback | undefined,
  override?: SourceOverride,
): Promise<FetchResult> {
  const { key, ref } = resolved;
  const prefix = tempPrefix(store.root, key, `${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(entryTempDir(store.root, key), { recursive: true }).catch((error: unknown) => {
      throw storeIoError(error, entryTempDir(store.root, key), 'cannot create');
    });
    const { metadata, downloaded, delivered } = await fetchBytes(
      ctx,
      store,
      resolved,
      prefix,
      signal,
      onProgress,
      override,
    );
    if (signal.aborted) throw abortError(signal);
    const hash = formatDigest(downloaded.imageHash ?? downloaded.verified.digest);
    const stored = await storedDigest(ctx, downloaded, signal);
    const kept = downloaded.compressedFile ? await keptDigest(downloaded, signal) : undefined;
    const record: EntryRecord = {
      schema: 1,
      ref,
      source: downloaded.location,
      ...(delivered ? { server: delivered.server, mirror: delivered.mirror } : {}),
      sourceFormat: downloaded.sourceFormat,
      compressed: downloaded.compressed,
      verified: {
        digest: `${downloaded.verified.digest.algorithm}:${downloaded.verified.digest.hex}`,
        of: downloaded.verified.of,
      },
      stored,
      ...(kept ? { kept: { [downloaded.compression!]: kept } } : {}),
      size: downloaded.size,
      fetchedAt: new Date(ctx.now()).toISOString(),
      tool: `${TOOL_NAME}/${TOOL_VERSION}`,
    };
    const path = await commitEntry(store, key, {
      image: downloaded.path,
      hash,
      metadata: JSON.stringify(metadata),
      record: `${JSON.stringify(record, null, 2)}\n`,
      ...(downloaded.compressedFile
        ? { compressed: { path: downloaded.compressedFile, compression: downloaded.compression! } }
        : {}),
      tempPrefix: prefix,
    });
    await rm(deltaPartialPath(store.root, key), { force: true });
    if (downloaded.chunkIndex) await keepChunkIndex(store.root, key, path, downloaded.chunkIndex);
    return {
      ref,
      path,
      status: 'downloaded',
      hash,
      format: downloaded.sourceFormat,
      size: downloaded.size,
      ...(downloaded.delta ? { delta: downloaded.delta } : {}),
    };
  } finally {
    await removeTempFiles(store, key, prefix);
  }
}

/** Where the bytes come from instead of the version's source (`templates import`). */
export interface SourceOverride {
  provider: Provider;
  /** Verify the image digest when the repository gives one (a local .xz may be compressed differently). */
  preferImageHash?: boolean;
}

/**
 * Takes the entry's lock (waiting for another process's fetch), checks the store again, and downloads and
 * publishes the version if it is still missing (reported as cached when another process stored it meanwhile).
 */
export async function acquireEntry(
  ctx: Context,
  store: Store,
  resolved: Resolved,
  options: { signal?: AbortSignal; onProgress?: ProgressCallback; source?: SourceOverride },
): Promise<FetchResult> {
  const { signal, onProgress } = options;
  /** The entry as a cache hit answers it, when it is in the store (read as the lock's holder, or as a waiter). */
  const stored = async (read: typeof readStoredEntry) => {
    const entry = await read(store, resolved.key);
    return entry ? cachedResult(resolved.ref, entry) : undefined;
  };
  return withEntryLock(
    store,
    resolved.key,
    {
      ...(signal ? { signal } : {}),
      now: ctx.now,
      onWait: () => onProgress?.({ ref: resolved.ref, phase: 'waiting-for-lock' }),
      // Published by the holder meanwhile: answered without queueing for the lock behind other waiters.
      answered: () => stored(readSettledEntry),
    },
    async (lockSignal) => {
      const again = await stored(readStoredEntry);
      if (again) return again;
      await removeTempFiles(store, resolved.key);
      // Sidecars without an image are what a kill between the sidecar renames and the image rename leaves.
      const { root } = store;
      const { key } = resolved;
      const leftovers = [
        hashPath(root, key),
        metadataPath(root, key),
        recordPath(root, key),
        compressedPath(root, key, 'xz'),
        compressedPath(root, key, 'zst'),
      ];
      await Promise.all(leftovers.map((path) => rm(path, { force: true })));
      return downloadAndPublish(ctx, store, resolved, lockSignal, onProgress, options.source);
    },
  );
}
