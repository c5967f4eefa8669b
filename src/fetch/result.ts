// What a fetch returns, and how a stored entry is reported as one (shared by fetchTemplate and the locked acquire).
import type { StoredEntry } from '../store/store.js';
import type { DeltaReport } from './delta-plan.js';

export interface FetchResult {
  /** Fully qualified `<repo>:<template>:<version>`. */
  ref: string;
  /** Absolute path of the stored raw image. */
  path: string;
  status: 'downloaded' | 'cached';
  /** Contents of the entry's `.hash` (SHA-1 hex as lago wrote it, else `algo:hex`); null if it has none. */
  hash: string | null;
  /** Format the source served (raw, qcow2); null for entries inherited from lago. The stored file is raw. */
  format: string | null;
  /** Apparent size in bytes of the stored image. */
  size: number;
  /** A delta fetch (docs/delta.md): chunks in the index, bytes reused from stored images, chunks and bytes fetched. */
  delta?: DeltaReport;
}

export function cachedResult(ref: string, entry: StoredEntry): FetchResult {
  return {
    ref,
    path: entry.path,
    status: 'cached',
    hash: entry.hash ?? null,
    format: entry.record?.sourceFormat ?? null,
    size: entry.size,
  };
}
