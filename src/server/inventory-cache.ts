// What the store holds, kept in memory for the usage API, metrics and the neighbours' JSON: read once, then refreshed behind requests.
import { entryName, type VersionKey } from '../store/layout.js';
import { filesystemSpace, listStored, summarizeEntry, type StoredSummary } from '../store/inventory.js';
import type { Store } from '../store/store.js';

export interface StoreSnapshot {
  /** When what it says was last read from the store, whole or one entry (ms since the epoch). */
  takenAt: number;
  /** Sorted by name. */
  entries: StoredSummary[];
  size: number;
  diskSize: number;
  free: number;
  total: number;
}

export interface InventoryCache {
  /**
   * The store as last read. Only the first call waits for a read; after that a snapshot older than `maxAgeMs` is
   * returned at once and read again behind it (other processes may have changed the store), so no request waits.
   */
  get(): Promise<StoreSnapshot>;
  /** Reads one entry again now (after this server stored or removed it). */
  refreshEntry(key: VersionKey): Promise<void>;
}

/** Never reads image bytes: an entry is a stat and its small sidecars. */
export function createInventoryCache(store: Store, now: () => number, maxAgeMs = 5000): InventoryCache {
  let entries = new Map<string, StoredSummary>();
  let space = { free: 0, total: 0 };
  let takenAt = 0;
  /** When the store was last read whole: what decides a refresh. */
  let readAt = 0;
  let snapshot: StoreSnapshot | undefined;
  let reading: Promise<void> | undefined;
  /** Entries read again one by one while a whole read was under way: its older view of them must not win. */
  let changedDuringRead = new Map<string, VersionKey>();
  const build = (): StoreSnapshot => {
    const list = [...entries.values()].sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
    return {
      takenAt,
      entries: list,
      size: list.reduce((sum, entry) => sum + entry.size, 0),
      diskSize: list.reduce((sum, entry) => sum + entry.diskSize, 0),
      ...space,
    };
  };
  const readAll = () => {
    reading ??= (async () => {
      const started = now();
      changedDuringRead = new Map();
      const [list, fs] = await Promise.all([listStored({ store }), filesystemSpace(store)]);
      entries = new Map(list.map((entry) => [entry.ref, entry]));
      for (const [name, key] of changedDuringRead) {
        const summary = await summarizeEntry(store, key);
        if (summary) entries.set(name, summary);
        else entries.delete(name);
      }
      space = fs;
      takenAt = started;
      readAt = started;
      snapshot = build();
    })().finally(() => {
      reading = undefined;
    });
    return reading;
  };
  return {
    async get() {
      if (!snapshot) await readAll();
      else if (now() - readAt > maxAgeMs) readAll().catch(() => undefined);
      return snapshot!;
    },
    async refreshEntry(key) {
      if (!snapshot) return void (await readAll());
      if (reading) changedDuringRead.set(entryName(key), key);
      const summary = await summarizeEntry(store, key);
      if (summary) entries.set(entryName(key), summary);
      else entries.delete(entryName(key));
      space = await filesystemSpace(store);
      takenAt = now();
      snapshot = build();
    },
  };
}
