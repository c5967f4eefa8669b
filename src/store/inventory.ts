// What the store holds: every entry with its sizes, dates, source and dependents (read-only; never reads an image).
import { readdir, stat, statfs } from 'node:fs/promises';
import { storeIoError } from '../errors.js';
import { isValidName } from '../repository/reference.js';
import { RENDITION_SUFFIXES, compressedPath, entryName, imagePath, parseEntryName, type VersionKey } from './layout.js';
import { keptFile } from './record.js';
import { readStoredEntry, type Store, type StoredEntry } from './store.js';
import { readUsers, type Users } from './users.js';

export interface StoredSummary {
  ref: string;
  key: VersionKey;
  path: string;
  /** Apparent size, and bytes allocated on disk (less for a sparse image), of the image and its kept `.xz`. */
  size: number;
  diskSize: number;
  /** When it was published: the record's time, else (lago entries) the image's mtime. ISO 8601. */
  fetchedAt: string;
  /** The last fetch or `path` of it, else fetchedAt. ISO 8601. */
  lastUsed: string;
  source: string | null;
  /** The server that delivered it (the source's baseurl or a mirror), when recorded, and whether it was a mirror. */
  server: string | null;
  mirror: boolean;
  /** False for entries inherited from lago (no record of what was verified). */
  recorded: boolean;
  dependents: string[];
  entry: StoredEntry;
  users: Users;
}

/** One entry's summary, or undefined when its image is not stored. */
export async function summarizeEntry(store: Store, key: VersionKey): Promise<StoredSummary | undefined> {
  const entry = await readStoredEntry(store, key);
  if (!entry) return undefined;
  const info = await stat(entry.path);
  // A kept .xz (or .zst) is part of the entry: counted in its sizes, removed with it.
  const kept = keptFile(entry.record);
  const xz = kept ? await stat(compressedPath(store.root, key, kept.compression)).catch(() => undefined) : undefined;
  // So are the renditions serve made of it for other clients (qcow2, LXD's metadata).
  const renditions = await Promise.all(
    RENDITION_SUFFIXES.map((suffix) => stat(`${entry.path}${suffix}`).catch(() => undefined)),
  );
  const extra = renditions.reduce((total, r) => total + (r?.size ?? 0), 0);
  const extraBlocks = renditions.reduce((total, r) => total + (r?.blocks ?? 0), 0);
  const users = await readUsers(store, key);
  const fetchedMs = entry.record?.fetchedAt ? Date.parse(entry.record.fetchedAt) : info.mtimeMs;
  return {
    ref: entryName(key),
    key,
    path: entry.path,
    size: info.size + (xz?.size ?? 0) + extra,
    diskSize: (info.blocks + (xz?.blocks ?? 0) + extraBlocks) * 512,
    fetchedAt: new Date(fetchedMs).toISOString(),
    lastUsed: new Date(Math.max(fetchedMs, users.lastUsedMs ?? 0)).toISOString(),
    source: entry.record?.source ?? null,
    server: entry.record?.server ?? null,
    mirror: entry.record?.mirror ?? false,
    recorded: entry.record !== undefined,
    dependents: users.live,
    entry,
    users,
  };
}

/** Reads this many entries at once: a store of thousands is listed in a few rounds of the thread pool, not one by one. */
const CONCURRENCY = 32;

/** `fn` over `items` with at most CONCURRENCY at once, results in order. */
async function mapBounded<T, R>(items: T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      out[index] = await fn(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
  return out;
}

/** The keys of every image in the store, sorted by name. */
export async function storedKeys(store: Store): Promise<VersionKey[]> {
  let names: string[];
  try {
    names = await readdir(store.root);
  } catch (error) {
    throw storeIoError(error, store.root, 'cannot read');
  }
  const candidates = names.sort().flatMap((name) => parseEntryName(name, isValidName) ?? []);
  const isImage = await mapBounded(candidates, (key) =>
    stat(imagePath(store.root, key)).then(
      (s) => s.isFile(),
      () => false,
    ),
  );
  return candidates.filter((_, index) => isImage[index]);
}

export async function listStored({ store }: { store: Store }): Promise<StoredSummary[]> {
  const summaries = await mapBounded(await storedKeys(store), (key) => summarizeEntry(store, key));
  return summaries.filter((summary): summary is StoredSummary => summary !== undefined);
}

/** Free and total bytes of the store's filesystem. */
export async function filesystemSpace(store: Store): Promise<{ free: number; total: number }> {
  const fs = await statfs(store.root);
  return { free: fs.bavail * fs.bsize, total: fs.blocks * fs.bsize };
}
