// Build the context, store and repository set a command needs from its flags and the environment.
import { createContext, type Context } from '../context.js';
import { loadRepositories, type RepositorySet } from '../spec/find.js';
import { openStore, type Store } from '../store/store.js';
import type { CliIo } from './io.js';
import { seconds, type CommonValues } from './options.js';

export interface Setup {
  context: Context;
  store: Store;
  repositories: RepositorySet;
}

/** Builds what a command needs; warnings (skipped repository files, cached copies) go to stderr. */
export async function setup(values: CommonValues, io: CliIo): Promise<Setup> {
  const warn = (message: string) => void io.stderr.write(`templates: warning: ${message}\n`);
  const context = createContext({ env: io.env });
  const staleSeconds = io.env.TEMPLATES_LOCK_STALE_SECONDS;
  const partialMaxAge = seconds(io.env.TEMPLATES_PARTIAL_MAX_AGE_SECONDS, 'TEMPLATES_PARTIAL_MAX_AGE_SECONDS');
  const lockWaitMs = seconds(values['lock-wait'], '--lock-wait');
  const store = await openStore({
    env: io.env,
    home: context.home,
    ...(values.store ? { root: values.store } : {}),
    ...(lockWaitMs !== undefined ? { lockWaitMs } : {}),
    ...(staleSeconds ? { lockStaleMs: Number(staleSeconds) * 1000 } : {}),
    ...(partialMaxAge !== undefined ? { partialMaxAgeMs: partialMaxAge } : {}),
  });
  const repositories = await loadRepositories({
    context,
    store,
    signal: io.signal,
    onWarning: warn,
    repos: values.repo ?? [],
    repoDirs: values.repos ?? [],
  });
  return { context, store, repositories };
}
