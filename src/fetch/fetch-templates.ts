// fetchTemplates: the one call for the common case: references, repositories and a store in, stored paths out.
import { availableParallelism } from 'node:os';
import { createContext, type Context } from '../context.js';
import { abortError, asTemplatesError, type TemplatesError } from '../errors.js';
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
  /** The store directory (created when missing), or a Store from openStore(); default: openStore()'s ($XDG_CACHE_HOME or ~/.cache)/templates. */
  store?: string | Store;
  context?: Context;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  /** Skipped repository files, cached copies used when a server is down. */
  onWarning?: (message: string) => void;
  /** Never use the network (see fetchTemplate). */
  offline?: boolean;
  /** `oci://` references: plain HTTP to a registry that is not on loopback (see fetchTemplate). */
  insecure?: boolean;
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
function shareCores(context: Context, workers: number): Context {
  if (workers <= 1 || context.xzThreads !== 0) return context;
  return { ...context, xzThreads: Math.max(1, Math.floor(availableParallelism() / workers)) };
}

/** How one reference of fetchTemplatesSettled ended. */
export type FetchOutcome =
  | { ref: string; ok: true; result: FetchResult }
  | { ref: string; ok: false; error: TemplatesError };

/** The store, repositories and shared context the references are fetched with, from the options. */
async function prepare(list: string[], options: FetchTemplatesOptions, signal: AbortSignal) {
  checkStrings('fetchTemplates', 'refs', list);
  checkOptions(options);
  const context = options.context ?? createContext();
  const store =
    typeof options.store === 'object'
      ? options.store
      : await openStore({ env: context.env, home: context.home, ...(options.store ? { root: options.store } : {}) });
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
  /** Fetches one reference, at most `concurrency` at once. */
  return (ref: string) =>
    limit(async () => {
      if (signal.aborted) throw abortError(signal);
      return fetchTemplate(ref, {
        store,
        repositories,
        context: shared,
        signal,
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        ...(options.offline ? { offline: true } : {}),
        ...(options.insecure ? { insecure: true } : {}),
      });
    });
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
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const fetchOne = await prepare(list, options, signal);
  // Every fetch settles before this returns or throws: none is left running behind a failure.
  const settled = await Promise.allSettled(
    list.map((ref) =>
      fetchOne(ref).catch((error: unknown) => {
        stop.abort(error);
        throw error;
      }),
    ),
  );
  const failed = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw stop.signal.aborted && stop.signal.reason !== undefined ? stop.signal.reason : failed.reason;
  return settled.map((result) => (result as PromiseFulfilledResult<FetchResult>).value);
}

/**
 * As fetchTemplates, but every reference is fetched whatever happens to the others: resolves to each one's outcome,
 * in order (`templates fetch A B C` goes on past a failure this way). `onOutcome` hears each as it settles.
 * Only setting up (the options, the repositories, the store) or the caller's signal rejects.
 */
export async function fetchTemplatesSettled(
  refs: string | string[],
  options: FetchTemplatesOptions & { onOutcome?: (outcome: FetchOutcome, index: number) => void } = {},
): Promise<FetchOutcome[]> {
  const list = typeof refs === 'string' ? [refs] : refs;
  const signal = options.signal ?? new AbortController().signal;
  const fetchOne = await prepare(list, options, signal);
  const outcomes = await Promise.all(
    list.map(async (ref, index) => {
      const outcome: FetchOutcome = await fetchOne(ref).then(
        (result) => ({ ref, ok: true as const, result }),
        (error: unknown) => ({ ref, ok: false as const, error: asTemplatesError(error) }),
      );
      options.onOutcome?.(outcome, index);
      return outcome;
    }),
  );
  if (signal.aborted) throw abortError(signal);
  return outcomes;
}
