// A short-lived snapshot of what the store holds, shared by the usage API, metrics and the neighbours' JSON.
import { filesystemSpace, listStored, type StoredSummary } from '../store/inventory.js';
import type { Store } from '../store/store.js';

export interface StoreSnapshot {
  /** When it was read (ms since the epoch). */
  takenAt: number;
  entries: StoredSummary[];
  size: number;
  diskSize: number;
  free: number;
  total: number;
}

export interface InventoryCache {
  get(): Promise<StoreSnapshot>;
  /** The next get() reads the store again (after a pull or a removal). */
  invalidate(): void;
}

/** Reads the store at most once per `maxAgeMs`; concurrent callers share one read. Never reads image bytes. */
export function createInventoryCache(store: Store, now: () => number, maxAgeMs = 2000): InventoryCache {
  let current: { at: number; promise: Promise<StoreSnapshot> } | undefined;
  const read = async (): Promise<StoreSnapshot> => {
    const takenAt = now();
    const [entries, space] = await Promise.all([listStored(store), filesystemSpace(store)]);
    return {
      takenAt,
      entries,
      size: entries.reduce((sum, entry) => sum + entry.size, 0),
      diskSize: entries.reduce((sum, entry) => sum + entry.diskSize, 0),
      ...space,
    };
  };
  return {
    get() {
      if (!current || now() - current.at > maxAgeMs) {
        const promise = read();
        current = { at: now(), promise };
        promise.catch(() => {
          if (current?.promise === promise) current = undefined;
        });
      }
      return current.promise;
    },
    invalidate() {
      current = undefined;
    },
  };
}
