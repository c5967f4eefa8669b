// fetchTemplates: the one call for the common case: references, repositories and a store in, stored paths out.
import { availableParallelism } from 'node:os';
import { createContext, type Context } from '../context.js';
import { abortError } from '../errors.js';
import { loadRepositories } from '../repository/find.js';
import type { Repository } from '../repository/model.js';
import { RepositorySet } from '../repository/set.js';
import { checkStore, openStore, type Store } from '../store/store.js';
import { badArgument, checkObject, checkSignal, checkStrings } from '../util/args.js';
import { createLimit } from '../util/limit.js';
import { fetchTemplate } from './fetch.js';
import type { ProgressCallback } from './progress.js';
import type { FetchResult } from './result.js';

export interface FetchTemplatesOptions {
  /** Repository files or URLs (as `--repo`). */
  repos?: string[];
  /** Directories whose `*.json` files are repositories (as `--repos`). */
  repoDirs?: string[];
  /** Repositories loaded already, instead of `repos` / `repoDirs`. */
  repositories?: RepositorySet | Repository[];
  /** The store directory (created when missing), or a Store from openStore(); default: TEMPLATES_STORE, else ~/.cache/templates. */
  store?: string | Store;
  context?: Context;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  /** Skipped repository files, cached copies used when a server is down. */
  onWarning?: (message: string) => void;
  /** Never use the network (see fetchTemplate). */
  offline?: boolean;
  /** How many references are fetched at once (default 3); their xz decoders share the cores. */
  concurrency?: number;
}

function checkOptions(options: FetchTemplatesOptions): void {
  checkObject('fetchTemplates', 'options', options);
  if (options.repos !== undefined) checkStrings('fetchTemplates', 'repos', options.repos);
  if (options.repoDirs !== undefined) checkStrings('fetchTemplates', 'repoDirs', options.repoDirs);
  if (options.repositories !== undefined && (options.repos !== undefined || options.repoDirs !== undefined)) {
    throw badArgument(
      'fetchTemplates',
      'options',
      'either repositories or repos/repoDirs, not both',
      Object.keys(options),
    );
  }
  if (typeof options.store !== 'string' && options.store !== undefined) checkStore('fetchTemplates', options.store);
  if (options.concurrency !== undefined && !(Number.isInteger(options.concurrency) && options.concurrency >= 1)) {
    throw badArgument('fetchTemplates', 'concurrency', 'a whole number of at least 1', options.concurrency);
  }
  checkSignal('fetchTemplates', options.signal);
}

/** The default number of references fetched at once. */
export const DEFAULT_CONCURRENCY = 3;

/**
 * The context for `workers` fetches at once: each xz decoder gets its share of the cores (at least one thread),
 * so that several decoders do not each start a thread per core.
 */
export function shareCores(context: Context, workers: number): Context {
  if (workers <= 1 || context.xzThreads !== 0) return context;
  return { ...context, xzThreads: Math.max(1, Math.floor(availableParallelism() / workers)) };
}

/**
 * Loads the repositories, opens the store and makes every reference present; resolves to one FetchResult per
 * reference, in order. The first failure stops the others (nothing partial is left) and is thrown.
 */
export async function fetchTemplates(
  refs: string | string[],
  options: FetchTemplatesOptions = {},
): Promise<FetchResult[]> {
  const list = typeof refs === 'string' ? [refs] : refs;
  checkStrings('fetchTemplates', 'refs', list);
  checkOptions(options);
  const context = options.context ?? createContext();
  const store =
    typeof options.store === 'object'
      ? options.store
      : await openStore({ env: context.env, home: context.home, ...(options.store ? { root: options.store } : {}) });
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const repositories =
    options.repositories !== undefined
      ? RepositorySet.from(options.repositories, 'fetchTemplates')
      : await loadRepositories({
          context,
          store,
          signal,
          ...(options.repos ? { repos: options.repos } : {}),
          ...(options.repoDirs ? { repoDirs: options.repoDirs } : {}),
          ...(options.onWarning ? { onWarning: options.onWarning } : {}),
          ...(options.offline ? { offline: true } : {}),
        });
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const shared = shareCores(context, Math.min(concurrency, list.length));
  const limit = createLimit(concurrency);
  // Every fetch settles before this returns or throws: none is left running behind a failure.
  const settled = await Promise.allSettled(
    list.map((ref) =>
      limit(async () => {
        if (signal.aborted) throw abortError(signal);
        return fetchTemplate(ref, {
          store,
          repositories,
          context: shared,
          signal,
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
          ...(options.offline ? { offline: true } : {}),
        }).catch((error: unknown) => {
          stop.abort(error);
          throw error;
        });
      }),
    ),
  );
  const failed = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw stop.signal.aborted && stop.signal.reason !== undefined ? stop.signal.reason : failed.reason;
  return settled.map((result) => (result as PromiseFulfilledResult<FetchResult>).value);
}
