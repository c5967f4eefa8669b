// verify: re-hash stored images against the digest recorded at publish; adopt lago entries that have no record.
import { stat } from 'node:fs/promises';
import { readHead } from '../util/read-head.js';
import { basename } from 'node:path';
import { TemplatesError, abortError, storeIoError } from '../errors.js';
import type { RepositorySet } from '../repository/set.js';
import { storedKey } from './refs.js';
import { HEAD_BYTES, detectImageFormat } from '../fetch/detect.js';
import { parseDigest, parseHashFile, type HashAlgorithm } from '../repository/digest.js';
import { compressedPath, entryName, hashPath, metadataPath, recordPath, type VersionKey } from '../store/layout.js';
import { withEntryLock } from '../store/lock.js';
import { keptFile, type EntryRecord } from '../store/record.js';
import { readStoredEntry, type Store } from '../store/store.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { hashFile } from '../util/hash-file.js';
import { hashSparseFile } from '../fetch/sparse-hash.js';
import { TOOL_NAME, TOOL_VERSION } from '../version.js';
import { deleteEntryFiles } from '../store/delete.js';

export type VerifyStatus =
  | 'ok'
  | 'corrupt'
  | 'unconfirmed'
  | 'missing-sidecar'
  | 'unverifiable'
  | 'adopted'
  | 'removed';

export interface VerifyResult {
  ref: string;
  status: VerifyStatus;
  /** `algo:hex` expected and found (corrupt, ok, adopted). */
  expected?: string;
  actual?: string;
  /** Sidecars lago needs that are absent. */
  missing?: string[];
  /** The corrupt file when it is not the image (a kept `.xz`). */
  file?: string;
  hint?: string;
}

export interface VerifyOptions {
  /** Remove corrupt entries (under their lock). */
  removeCorrupt?: boolean;
  /** Hash unverifiable (lago-inherited) entries now and record the digest. */
  adopt?: boolean;
  signal?: AbortSignal;
  now?: () => number;
  /** The qemu-img command, which tells the image's holes from its data so that only the data is read (default: qemu-img on PATH). */
  qemuImg?: string;
}

/** The digest recorded for the stored raw file: `stored`, else what was verified when it covered the raw image. */
function recordedDigest(record: EntryRecord | undefined): string | undefined {
  if (record?.stored?.digest) return record.stored.digest;
  if (record?.verified.of === 'image' && record.sourceFormat === 'raw') return record.verified.digest;
  return undefined;
}

async function formatOf(path: string): Promise<string> {
  const head = await readHead(path, HEAD_BYTES);
  try {
    return detectImageFormat(head, path);
  } catch {
    return 'unknown';
  }
}

/** Records what an adopted entry hashed to now (it becomes verifiable from then on). */
async function adopt(store: Store, key: VersionKey, path: string, sha256: string, now: number): Promise<void> {
  const info = await stat(path);
  const record: EntryRecord & { adopted: string } = {
    schema: 1,
    ref: entryName(key),
    source: 'unknown: inherited from a lago store',
    sourceFormat: await formatOf(path),
    compressed: false,
    verified: { digest: `sha256:${sha256}`, of: 'image' },
    stored: { digest: `sha256:${sha256}` },
    size: info.size,
    fetchedAt: new Date(info.mtimeMs).toISOString(),
    tool: `${TOOL_NAME}/${TOOL_VERSION}`,
    adopted: new Date(now).toISOString(),
  };
  await writeFileAtomic(recordPath(store.root, key), `${JSON.stringify(record, null, 2)}\n`);
}

/** Verifies one entry; undefined when it is not stored. */
export async function verifyEntry(
  store: Store,
  key: VersionKey,
  options: VerifyOptions = {},
): Promise<VerifyResult | undefined> {
  const ref = entryName(key);
  const entry = await readStoredEntry(store, key);
  if (!entry) return undefined;
  const missingNames = [
    ...(entry.hash === undefined ? [hashPath] : []),
    ...(entry.metadata === undefined ? [metadataPath] : []),
  ].map((path) => basename(path(store.root, key)));
  const expected = recordedDigest(entry.record);
  const signal = options.signal;
  const read = (algorithms: HashAlgorithm[]) =>
    hashSparseFile(options.qemuImg ?? 'qemu-img', entry.path, algorithms, signal).catch((error: unknown) => {
      throw signal?.aborted ? abortError(signal) : storeIoError(error, entry.path, 'cannot read');
    });
  if (!expected) {
    if (!options.adopt) {
      return {
        ref,
        status: 'unverifiable',
        hint: 'no digest was recorded when it was stored (a lago entry); templates verify --adopt hashes it now and records it',
      };
    }
    // lago writes its image in place, under its lock: hashed under the lock, a lago fetch in progress is waited for
    // (then judged whole), never taken for a corrupt image.
    return withEntryLock(store, key, { ...(signal ? { signal } : {}) }, async () => {
      if (!(await readStoredEntry(store, key))) return undefined;
      const digests = await read(['sha1', 'sha256']);
      // lago's .hash is the SHA-1 of what it stored: when it disagrees, the image changed since.
      const lago = entry.hash
        ? (() => {
            try {
              return parseHashFile(entry.hash!, ref);
            } catch {
              return undefined;
            }
          })()
        : undefined;
      if (lago && (lago.algorithm === 'sha1' || lago.algorithm === 'sha256') && lago.hex !== digests[lago.algorithm]) {
        const actual = `${lago.algorithm}:${digests[lago.algorithm]}`;
        return finish(
          store,
          key,
          { ref, status: 'corrupt', expected: `${lago.algorithm}:${lago.hex}`, actual },
          options,
          true,
        );
      }
      await adopt(store, key, entry.path, digests.sha256!, (options.now ?? Date.now)());
      return { ref, status: 'adopted', actual: `sha256:${digests.sha256}` };
    });
  }
  const digest = parseDigest(expected)!;
  const actual = (await read([digest.algorithm]))[digest.algorithm]!;
  if (actual !== digest.hex) {
    // A digest nothing checked (the published .hash, the .xz was what was verified): a wrong .hash, or a changed image.
    if (entry.record?.stored?.checked === false) {
      return finish(
        store,
        key,
        {
          ref,
          status: 'unconfirmed',
          expected,
          actual: `${digest.algorithm}:${actual}`,
          hint: 'the digest was the published .hash, never checked (the download was verified by its .xz or .zst digest): the .hash is wrong, or the image changed since; templates rm it and fetch again, then verify: unconfirmed again means the .hash is wrong',
        },
        options,
      );
    }
    return finish(store, key, { ref, status: 'corrupt', expected, actual: `${digest.algorithm}:${actual}` }, options);
  }
  // A kept .xz (or .zst) is part of the entry: neighbours are served it, so it is checked too.
  const kept = keptFile(entry.record);
  if (kept) {
    const xz = compressedPath(store.root, key, kept.compression);
    const keptActual = await hashFile(xz, ['sha256'], signal).then(
      (d) => `sha256:${d.sha256}`,
      () => 'missing',
    );
    if (keptActual !== kept.digest)
      return finish(
        store,
        key,
        { ref, status: 'corrupt', expected: kept.digest, actual: keptActual, file: xz },
        options,
      );
  }
  if (missingNames.length)
    return {
      ref,
      status: 'missing-sidecar',
      expected,
      actual: expected,
      missing: missingNames,
      hint: 'lago needs them; templates rm the entry and fetch it again',
    };
  return { ref, status: 'ok', expected, actual: expected };
}

async function finish(
  store: Store,
  key: VersionKey,
  result: VerifyResult,
  options: VerifyOptions,
  /** The caller holds the entry's lock already. */
  held = false,
): Promise<VerifyResult> {
  if (!options.removeCorrupt)
    return {
      ...result,
      hint: result.hint ?? 'templates verify --remove-corrupt removes it; fetch it again afterwards',
    };
  if (held) await deleteEntryFiles(store, key);
  else
    await withEntryLock(store, key, options.signal ? { signal: options.signal } : {}, () =>
      deleteEntryFiles(store, key),
    );
  return { ...result, status: 'removed' };
}

/** verifyEntry for a reference (`repo:name:version`, or shorter through `repositories`); NOT_STORED when absent. */
export async function verifyTemplate(
  ref: string,
  options: VerifyOptions & { store: Store; repositories?: RepositorySet },
): Promise<VerifyResult> {
  const key = storedKey(ref, options.repositories);
  const result = await verifyEntry(options.store, key, options);
  if (result) return result;
  throw new TemplatesError('NOT_STORED', `${entryName(key)} is not in the store ${options.store.root}`, {
    ref: entryName(key),
    path: options.store.root,
    hint: 'see: templates list --stored',
  });
}
