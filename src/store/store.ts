// The store handle: where it lives, its lock settings, and read-only questions about its entries.
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { TemplatesError, storeIoError } from '../errors.js';
import { badArgument, checkObject } from '../util/args.js';
import { isLockHeld } from '../util/flock.js';
import {
  entryName,
  hashPath,
  imagePath,
  lockPath,
  metadataPath,
  recordPath,
  serverHealthPath,
  tempDir,
  type VersionKey,
} from './layout.js';
import { createServerHealth, type ServerHealth } from './server-health.js';
import type { EntryRecord } from './record.js';
import type { RepositoryCache } from '../repository/cache.js';
import { createRepositoryCache } from './repository-cache.js';
import type { TrustState } from '../trust/check.js';
import { createTrustState } from './trust-state.js';

export interface Store {
  /** Absolute path of the store directory. */
  root: string;
  /**
   * An older templates' lock directory (before lago's flock protocol) not refreshed for this long was left by a killed
   * process, and is replaced by lago's lock file. (A flock needs no such rule: the kernel drops it with its holder.)
   */
  lockStaleMs: number;
  /** How long to wait for another process's lock before failing with LOCK_TIMEOUT. */
  lockWaitMs: number;
  /** A kept partial download not written to for this long is removed instead of resumed. */
  partialMaxAgeMs: number;
  /** Repository JSON fetched over HTTP, kept for offline use (`.repos/`). */
  repositoryCache: RepositoryCache;
  /** Keep the verified source `.xz` beside each image fetched from now on (`<entry>.xz`; on for `templates serve`). */
  keepCompressed: boolean;
  /** Failures and latency seen per server (`.mirrors/health.json`): the order in which a source's mirrors are tried. */
  serverHealth: ServerHealth;
  /** The highest signed revision accepted per repository (`.trust/`): an older signed copy is a rollback. */
  trustState: TrustState;
  /** A fetch that would make the store's entries larger than this evicts the least recently used first (0: no limit). */
  maxBytes: number;
  /** A fetch keeps this much free on the store's filesystem, evicting the least recently used first (0: only room for it). */
  minFreeBytes: number;
}

export interface StoreOptions {
  /** Store directory; default: $XDG_CACHE_HOME/templates, else ~/.cache/templates (the CLI also reads TEMPLATES_STORE). */
  root?: string;
  env?: Record<string, string | undefined>;
  home?: string;
  lockStaleMs?: number;
  lockWaitMs?: number;
  partialMaxAgeMs?: number;
  /** Default false; true for `templates serve`, which sends the compressed bytes to its neighbours. */
  keepCompressed?: boolean;
  /** The clock for server health (default Date.now). */
  now?: () => number;
  /** Default 0: no limit (see Store.maxBytes). */
  maxBytes?: number;
  /** Default 0 (see Store.minFreeBytes). */
  minFreeBytes?: number;
}

const DEFAULT_LOCK_STALE_MS = 10_000;
const DEFAULT_LOCK_WAIT_MS = 3_600_000;
const DEFAULT_PARTIAL_MAX_AGE_MS = 24 * 3_600_000;

export function defaultStoreRoot(env: Record<string, string | undefined>, home: string): string {
  return join(env.XDG_CACHE_HOME || join(home, '.cache'), 'templates');
}

/** Opens (and creates when missing) a store; an existing lago store is used as it is. */
export async function openStore(options: StoreOptions = {}): Promise<Store> {
  checkObject('openStore', 'options', options);
  if (options.root !== undefined && (typeof options.root !== 'string' || options.root === ''))
    throw badArgument('openStore', 'root', 'a directory path', options.root);
  const env = options.env ?? process.env;
  const root = resolve(options.root ?? defaultStoreRoot(env, options.home ?? (env.HOME || '/')));
  try {
    await mkdir(tempDir(root), { recursive: true });
  } catch (error) {
    throw storeIoError(error, root, 'cannot create the store');
  }
  return {
    root,
    lockStaleMs: Math.max(2_000, options.lockStaleMs ?? DEFAULT_LOCK_STALE_MS),
    lockWaitMs: options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS,
    partialMaxAgeMs: options.partialMaxAgeMs ?? DEFAULT_PARTIAL_MAX_AGE_MS,
    repositoryCache: createRepositoryCache(root),
    keepCompressed: options.keepCompressed ?? false,
    serverHealth: createServerHealth(serverHealthPath(root), options.now ?? Date.now),
    trustState: createTrustState(root),
    maxBytes: options.maxBytes ?? 0,
    minFreeBytes: options.minFreeBytes ?? 0,
  };
}

/** The store a caller passed, checked at the API boundary: an object from openStore(), else USAGE naming `fn`. */
export function checkStore(fn: string, value: unknown): asserts value is Store {
  const store = value as Partial<Store> | null | undefined;
  if (
    typeof store !== 'object' ||
    store === null ||
    typeof store.root !== 'string' ||
    typeof store.repositoryCache !== 'object'
  ) {
    throw badArgument(
      fn,
      'store',
      'the Store that openStore() returns',
      value,
      'const store = await openStore({ root: DIR })',
    );
  }
}

export interface StoredEntry {
  path: string;
  size: number;
  /** Contents of `<entry>.hash` (lago: SHA-1 hex), when present. */
  hash?: string;
  metadata?: unknown;
  /** What this tool recorded at publish time; absent for entries inherited from lago. */
  record?: EntryRecord;
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw storeIoError(error, path, 'cannot read');
  }
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The stored entry, or undefined when its image is not in the store. Never reads the image itself. */
export async function readStoredEntry(store: Store, key: VersionKey): Promise<StoredEntry | undefined> {
  const path = imagePath(store.root, key);
  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) return undefined;
    size = info.size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw storeIoError(error, path, 'cannot read');
  }
  const [hash, metadata, record] = await Promise.all([
    readOptional(hashPath(store.root, key)),
    readOptional(metadataPath(store.root, key)),
    readOptional(recordPath(store.root, key)),
  ]);
  const entry: StoredEntry = { path, size };
  if (hash !== undefined) entry.hash = hash.trim();
  const meta = parseJson(metadata);
  if (meta !== undefined) entry.metadata = meta;
  const rec = parseJson(record) as EntryRecord | undefined;
  if (rec !== undefined) entry.record = rec;
  return entry;
}

/**
 * The stored entry when it is whole, for a caller that does not hold its lock: ours is (the image's rename, after every
 * sidecar, commits it); lago's only once nobody holds the entry's lock (lago converts straight into the final path, under
 * its lock, so its image is visible while it is written). Undefined when absent or being written.
 */
export async function readSettledEntry(store: Store, key: VersionKey): Promise<StoredEntry | undefined> {
  const entry = await readStoredEntry(store, key);
  if (!entry || entry.record) return entry;
  const path = lockPath(store.root, key);
  const held = await isLockHeld(path).catch((error: unknown) => {
    throw storeIoError(error, path, 'cannot read the lock');
  });
  return held ? undefined : entry;
}

/** NOT_STORED for an entry that is not (or no longer) in the store; `hint` says what to do (default: fetch it first). */
export function notStored(store: Store, key: VersionKey, hint = 'fetch it first'): TemplatesError {
  return new TemplatesError('NOT_STORED', `${entryName(key)} is not in the store ${store.root}`, {
    ref: entryName(key),
    hint,
  });
}
