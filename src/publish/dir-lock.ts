// One `templates index` at a time per directory: a flock on DIR/.templates-index.lock (util/flock.ts), not waited for.
import { join } from 'node:path';
import { TemplatesError, outputIoError } from '../errors.js';
import { tryLock } from '../util/flock.js';
import { LOCK_FILE } from './state.js';

/** An index run's lock directory (earlier versions) not refreshed for this long was left by a killed run. */
const LEGACY_STALE_MS = 10_000;

export async function withDirectoryLock<T>(
  dir: string,
  fn: (signal: AbortSignal) => Promise<T>,
  outer?: AbortSignal,
): Promise<T> {
  const path = join(dir, LOCK_FILE);
  const tried = await tryLock(path, { staleMs: LEGACY_STALE_MS, now: Date.now() }).catch((error: unknown) => {
    throw outputIoError(error, path, 'cannot take the lock');
  });
  if (!('held' in tried)) {
    throw new TemplatesError('LOCK_TIMEOUT', `another templates index is running on ${dir}`, {
      path,
      hint: "wait for it to finish (a killed run's lock goes with it)",
    });
  }
  try {
    return await fn(outer ?? new AbortController().signal);
  } finally {
    tried.held.release();
  }
}
