// The file virt-builder downloads for a stored entry (its kept .xz, else the raw image) and that file's SHA-512, taken once.
import { readFile, stat } from 'node:fs/promises';
import type { Context } from '../context.js';
import { compressedPath, virtBuilderRecordPath, type VersionKey } from '../store/layout.js';
import { withEntryLock } from '../store/lock.js';
import { keptFile } from '../store/record.js';
import { notStored, readStoredEntry, type Store } from '../store/store.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { hashFile } from '../util/hash-file.js';

export interface VirtBuilderFile {
  path: string;
  /** `xz`: the kept `.xz` (virt-builder unpacks it); `raw`: the image itself. */
  kind: 'xz' | 'raw';
  size: number;
  /** Virtual size of the disk. */
  diskSize: number;
  sha512: string;
}

interface Record {
  kind: 'xz' | 'raw';
  size: number;
  mtimeMs: number;
  sha512: string;
}

/** Which stored file virt-builder gets: the kept `.xz` when there is one, else the raw image. */
async function servedFile(store: Store, key: VersionKey) {
  const entry = await readStoredEntry(store, key);
  if (!entry) return undefined;
  const kept = keptFile(entry.record);
  const path = kept?.compression === 'xz' ? compressedPath(store.root, key, 'xz') : entry.path;
  const kind: 'xz' | 'raw' = kept?.compression === 'xz' ? 'xz' : 'raw';
  const [info, image] = await Promise.all([stat(path).catch(() => undefined), stat(entry.path)]);
  return info ? { path, kind, info, diskSize: image.size } : undefined;
}

/** The file and its digest when the record matches it as it is now (size and mtime), else undefined. */
export async function readVirtBuilderFile(store: Store, key: VersionKey): Promise<VirtBuilderFile | undefined> {
  const [file, text] = await Promise.all([
    servedFile(store, key),
    readFile(virtBuilderRecordPath(store.root, key), 'utf8').catch(() => undefined),
  ]);
  if (!file || text === undefined) return undefined;
  try {
    const record = JSON.parse(text) as Record;
    if (record.kind !== file.kind || record.size !== file.info.size || record.mtimeMs !== file.info.mtimeMs)
      return undefined;
    return { path: file.path, kind: file.kind, size: file.info.size, diskSize: file.diskSize, sha512: record.sha512 };
  } catch {
    return undefined;
  }
}

/** The file with its SHA-512, hashed once under the entry's lock and recorded beside it (`<entry>.vb.json`). */
export async function ensureVirtBuilderFile(
  store: Store,
  key: VersionKey,
  context: Context,
  signal?: AbortSignal,
): Promise<VirtBuilderFile> {
  const existing = await readVirtBuilderFile(store, key);
  if (existing) return existing;
  return withEntryLock(store, key, { ...(signal ? { signal } : {}), now: context.now }, async (lockSignal) => {
    const again = await readVirtBuilderFile(store, key);
    if (again) return again;
    const file = await servedFile(store, key);
    if (!file) throw notStored(store, key);
    const { sha512 } = await hashFile(file.path, ['sha512'], lockSignal);
    const record: Record = { kind: file.kind, size: file.info.size, mtimeMs: file.info.mtimeMs, sha512 };
    await writeFileAtomic(virtBuilderRecordPath(store.root, key), `${JSON.stringify(record)}\n`);
    return { path: file.path, kind: file.kind, size: file.info.size, diskSize: file.diskSize, sha512 };
  });
}
