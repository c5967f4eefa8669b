// fetchTemplate: resolve, answer from the store when present, else fetch under the entry's lock (see acquire.ts).
import { createContext, type Context } from '../context.js';
import { TemplatesError, abortError, redactUrl } from '../errors.js';
import type { RepositorySet } from '../repository/find.js';
import { resolveReference } from '../repository/resolve.js';
import { readStoredEntry, type Store, type StoredEntry } from '../store/store.js';
import { touchLastUse } from '../store/users.js';
import type { ProgressCallback } from './progress.js';

export interface FetchOptions {
  store: Store;
  repositories: RepositorySet;
  context?: Context;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  /** Never use the network: a template that is not stored and comes from an HTTP source fails with OFFLINE. */
  offline?: boolean;
}

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
}

function cachedResult(ref: string, entry: StoredEntry): FetchResult {
  return { ref, path: entry.path, status: 'cached', hash: entry.hash ?? null, format: entry.record?.sourceFormat ?? null, size: entry.size };
}

/** Makes `ref` present in the store and returns where it is. Concurrent callers wait and reuse one download. */
export async function fetchTemplate(ref: string, options: FetchOptions): Promise<FetchResult> {
  const { store, signal, onProgress } = options;
  const ctx = options.context ?? createContext();
  if (signal?.aborted) throw abortError(signal);
  const resolved = resolveReference(ref, options.repositories);
  const finish = async (result: FetchResult) => {
    await touchLastUse(store, resolved.key, ctx.now());
    onProgress?.({ ref: resolved.ref, phase: 'done', status: result.status });
    return result;
  };
  const present = await readStoredEntry(store, resolved.key);
  if (present) return finish(cachedResult(resolved.ref, present));
  if (options.offline && resolved.version.source.type !== 'file') {
    const url = `${resolved.version.source.baseurl}${resolved.version.handle}`;
    throw new TemplatesError('OFFLINE', `offline: ${resolved.ref} is not in the store and would be downloaded from ${redactUrl(url)}`, {
      ref: resolved.ref,
      url: redactUrl(url),
      hint: 'fetch it once with the network (or import it: templates import REF FILE), or drop --offline',
    });
  }
  // The download machinery loads only on a miss: a cache hit stays a handful of small modules.
  const { acquireEntry } = await import('./acquire.js');
  return finish(await acquireEntry(ctx, store, resolved, {
    ...(signal ? { signal } : {}),
    ...(onProgress ? { onProgress } : {}),
    cached: (entry) => cachedResult(resolved.ref, entry),
  }));
}
