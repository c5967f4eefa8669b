// fetchTemplate: resolve, answer from the store when present, else fetch under the entry's lock (see acquire.ts).
import { createContext, type Context } from '../context.js';
import { TemplatesError, abortError, redactUrl } from '../errors.js';
import type { Repository } from '../repository/model.js';
import { RepositorySet } from '../repository/set.js';
import { checkObject, checkSignal } from '../util/args.js';
import { resolveReference } from '../repository/resolve.js';
import { isOciUrl } from '../oci/reference.js';
import { resolveOciReference } from './oci-ref.js';
import { checkStore, readSettledEntry, type Store } from '../store/store.js';
import { touchLastUse } from '../store/users.js';
import type { ProgressCallback } from './progress.js';
import { cachedResult, type FetchResult } from './result.js';

export type { FetchResult };

export interface FetchOptions {
  store: Store;
  /** What loadRepositories() returned (or an array of loaded repositories). */
  repositories: RepositorySet | Repository[];
  context?: Context;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  /** Never use the network: a template that is not stored and comes from an HTTP source fails with OFFLINE. */
  offline?: boolean;
  /** `oci://` references: plain HTTP to a registry that is not on loopback. */
  insecure?: boolean;
}

/** Makes `ref` present in the store and returns where it is. Concurrent callers wait and reuse one download. */
export async function fetchTemplate(ref: string, options: FetchOptions): Promise<FetchResult> {
  checkObject('fetchTemplate', 'options', options);
  checkStore('fetchTemplate', options.store);
  checkSignal('fetchTemplate', options.signal);
  const repositories = RepositorySet.from(options.repositories, 'fetchTemplate');
  const { store, signal, onProgress } = options;
  const ctx = options.context ?? createContext();
  if (signal?.aborted) throw abortError(signal);
  const resolved = isOciUrl(ref) ? resolveOciReference(ref, options.insecure) : resolveReference(ref, repositories);
  const finish = async (result: FetchResult) => {
    await touchLastUse(store, resolved.key, ctx.now());
    onProgress?.({ ref: resolved.ref, phase: 'done', status: result.status });
    return result;
  };
  const present = await readSettledEntry(store, resolved.key);
  if (present) return finish(cachedResult(resolved.ref, present));
  if (options.offline && resolved.version.source.type !== 'file') {
    const source = resolved.version.source;
    const url =
      source.type === 'http'
        ? `${source.baseurl}${resolved.version.handle}`
        : `${source.registry}/v2/${source.repository}/manifests/${resolved.version.handle}`;
    throw new TemplatesError(
      'OFFLINE',
      `offline: ${resolved.ref} is not in the store and would be downloaded from ${redactUrl(url)}`,
      {
        ref: resolved.ref,
        url: redactUrl(url),
        hint: 'fetch it once with the network (or import it: templates import REF FILE), or drop --offline',
      },
    );
  }
  // The download machinery loads only on a miss: a cache hit stays a handful of small modules.
  const { acquireEntry } = await import('./acquire.js');
  return finish(
    await acquireEntry(ctx, store, resolved, {
      ...(signal ? { signal } : {}),
      ...(onProgress ? { onProgress } : {}),
    }),
  );
}
