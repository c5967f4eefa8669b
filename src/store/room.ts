// Room for a new image before it downloads: the store's size limit and free-space floor, met by evicting the least recently used.
import { statfs } from 'node:fs/promises';
import { TemplatesError, isTemplatesError, storeIoError } from '../errors.js';
import { formatSize } from '../util/size.js';
import { deleteEntryFiles } from './delete.js';
import { listStored, summarizeEntry, type StoredSummary } from './inventory.js';
import { entryName, type VersionKey } from './layout.js';
import { withEntryLock } from './lock.js';
import type { Store } from './store.js';

/**
 * Least recently used first, those with live dependents passed over (unless `force`), until their disk sizes add up to
 * `bytes`: what prune --max-size removes, and what a fetch evicts to make room.
 */
export function leastRecentlyUsed(entries: StoredSummary[], bytes: number, force = false): StoredSummary[] {
  const chosen: StoredSummary[] = [];
  let freed = 0;
  for (const entry of [...entries].sort((a, b) => Date.parse(a.lastUsed) - Date.parse(b.lastUsed))) {
    if (freed >= bytes) break;
    if (!force && entry.dependents.length) continue;
    chosen.push(entry);
    freed += entry.diskSize;
  }
  return chosen;
}

/** Bytes the store's filesystem has free for an unprivileged writer. */
export async function freeBytes(root: string): Promise<number> {
  try {
    const fs = await statfs(root);
    return fs.bavail * fs.bsize;
  } catch (error) {
    throw storeIoError(error, root, 'cannot read the free space of');
  }
}

/** Removes one entry unless its lock is held (a fetch, a clone) or a dependent appeared meanwhile; the bytes it freed. */
async function evict(store: Store, key: VersionKey, signal: AbortSignal | undefined): Promise<number> {
  try {
    return await withEntryLock({ ...store, lockWaitMs: 0 }, key, signal ? { signal } : {}, async () => {
      const again = await summarizeEntry(store, key);
      if (!again || again.dependents.length) return 0;
      await deleteEntryFiles(store, key);
      return again.diskSize;
    });
  } catch (error) {
    if (isTemplatesError(error, 'LOCK_TIMEOUT')) return 0;
    throw error;
  }
}

export interface Room {
  /** Entries removed to make room, least recently used first. */
  evicted: string[];
}

/**
 * Makes sure `bytes` more fit: on the filesystem (keeping `store.minFreeBytes` free) and within `store.maxBytes`.
 * When they do not, the least recently used entries nothing depends on go first (never `key` itself); STORE_FULL
 * when what is left is in use (then nothing is evicted, unless another process held one of them meanwhile).
 * Called by a fetch before its download starts, under `key`'s lock.
 */
export async function makeRoom(store: Store, key: VersionKey, bytes: number, signal?: AbortSignal): Promise<Room> {
  const free = await freeBytes(store.root);
  const shortOfFree = bytes + store.minFreeBytes - free;
  if (shortOfFree <= 0 && !store.maxBytes) return { evicted: [] };
  const entries = (await listStored({ store })).filter((entry) => entry.ref !== entryName(key));
  const used = entries.reduce((sum, entry) => sum + entry.diskSize, 0);
  const overLimit = store.maxBytes ? used + bytes - store.maxBytes : 0;
  const needed = Math.max(shortOfFree, overLimit);
  if (needed <= 0) return { evicted: [] };
  const evicted: string[] = [];
  let freed = 0;
  const candidates = leastRecentlyUsed(entries, needed);
  // Nothing is evicted for a fetch that could not fit even then.
  if (candidates.reduce((sum, entry) => sum + entry.diskSize, 0) >= needed) {
    for (const entry of candidates) {
      if (freed >= needed) break;
      const gone = await evict(store, entry.key, signal);
      if (gone) evicted.push(entry.ref);
      freed += gone;
    }
    if (freed >= needed) return { evicted };
  }
  const ref = entryName(key);
  const limit =
    overLimit > 0
      ? `the store's limit of ${formatSize(store.maxBytes)} holds ${formatSize(used)}`
      : `${formatSize(free)} free on its filesystem${store.minFreeBytes ? `, ${formatSize(store.minFreeBytes)} of which must stay free` : ''}`;
  const kept = entries.filter((entry) => entry.dependents.length).map((entry) => entry.ref);
  throw new TemplatesError(
    'STORE_FULL',
    `no room for ${ref}: it needs ${formatSize(bytes)}, ${limit}${evicted.length ? `, after removing ${evicted.join(', ')}` : ''}`,
    {
      ref,
      path: store.root,
      hint: kept.length
        ? `what is left is in use by clones, jobs or templates use: ${kept.slice(0, 3).join(', ')}${kept.length > 3 ? ', …' : ''}; remove those dependents, or free space on the filesystem`
        : "free space on the filesystem, raise the store's limit (storeMaxBytes), or point --store at a larger filesystem",
    },
  );
}
