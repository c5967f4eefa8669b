// One `templates index` at a time per directory: proper-lockfile's lock on DIR/.templates-index.lock, not waited for.
import { join } from 'node:path';
import { TemplatesError, outputIoError } from '../errors.js';
import { LOCK_FILE } from './state.js';

export async function withDirectoryLock<T>(dir: string, fn: (signal: AbortSignal) => Promise<T>, outer?: AbortSignal): Promise<T> {
  const path = join(dir, LOCK_FILE);
  const held = new AbortController();
  const forward = () => held.abort(outer?.reason);
  outer?.addEventListener('abort', forward, { once: true });
  const { default: lockfile } = await import('proper-lockfile');
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(dir, {
      lockfilePath: path,
      realpath: false,
      retries: 0,
      stale: 10_000,
      update: 5_000,
      onCompromised: (error) => held.abort(new TemplatesError('LOCK_TIMEOUT', `lost the lock on ${dir}: ${error.message}`, { path }, { cause: error })),
    });
  } catch (error) {
    outer?.removeEventListener('abort', forward);
    if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw outputIoError(error, path, 'cannot take the lock');
    throw new TemplatesError('LOCK_TIMEOUT', `another templates index is running on ${dir}`, {
      path,
      hint: 'wait for it to finish (a dead run\'s lock is taken over after 10 s)',
    });
  }
  try {
    return await fn(held.signal);
  } finally {
    outer?.removeEventListener('abort', forward);
    await release().catch(() => undefined);
  }
}
