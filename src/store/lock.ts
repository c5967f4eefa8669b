// The per-template lock: proper-lockfile's mkdir lock, waited for with backoff, abortable, taken over when stale.
import { mkdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TemplatesError, abortError, storeIoError } from '../errors.js';
import { entryName, lockOwnerPath, lockPath, type VersionKey } from './layout.js';
import type { Store } from './store.js';

export interface LockOptions {
  signal?: AbortSignal;
  /** Called once when the lock is held by someone else and we start waiting. */
  onWait?: () => void;
  now?: () => number;
}

interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

/**
 * Who holds a lock: written by the holder right after taking it, into the entry's temp directory (not the lock
 * directory: proper-lockfile checks that directory's mtime to know the lock is still its own).
 */
async function writeOwner(path: string, now: () => number): Promise<void> {
  const owner: LockOwner = { pid: process.pid, host: hostname(), since: new Date(now()).toISOString() };
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, JSON.stringify(owner));
}

/** Removes the owner file, and the entry's temp directory with it when nothing else (a partial download) is left there. */
async function removeOwner(path: string): Promise<void> {
  await rm(path, { force: true });
  await rmdir(dirname(path)).catch(() => undefined);
}

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    const owner = JSON.parse(await readFile(path, 'utf8')) as Partial<LockOwner>;
    return typeof owner.pid === 'number' && typeof owner.host === 'string' && typeof owner.since === 'string' ? (owner as LockOwner) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs `fn` while holding the entry's lock. `fn` gets a signal that also aborts if the lock is lost
 * (its directory removed or its mtime not refreshed in time), so no publish happens without the lock.
 * While it waits, `answered` (when given) is asked after each try: a value it returns is returned without the lock
 * (the holder published what this caller came for, so it need not queue to see it).
 */
export async function withEntryLock<T>(store: Store, key: VersionKey, options: LockOptions & { answered?: () => Promise<T | undefined> }, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const now = options.now ?? Date.now;
  const path = lockPath(store.root, key);
  const ownerFile = lockOwnerPath(store.root, key);
  const held = new AbortController();
  const outer = options.signal;
  const forward = () => held.abort(outer?.reason);
  outer?.addEventListener('abort', forward, { once: true });
  const deadline = now() + store.lockWaitMs;
  let release: (() => Promise<void>) | undefined;
  let delay = 50;
  let waited = false;
  // Loaded on first use: a cache hit never locks.
  const { default: lockfile } = await import('proper-lockfile');
  try {
    while (!release) {
      if (outer?.aborted) throw abortError(outer);
      try {
        release = await lockfile.lock(path, {
          lockfilePath: path,
          realpath: false,
          retries: 0,
          stale: store.lockStaleMs,
          update: Math.floor(store.lockStaleMs / 2),
          onCompromised: (error) => held.abort(new TemplatesError('LOCK_TIMEOUT', `lost the lock on ${entryName(key)}: ${error.message}`, { path }, { cause: error })),
        });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw storeIoError(error, path, 'cannot take the lock');
        if (now() >= deadline) {
          const owner = await readOwner(ownerFile);
          const holder = owner ? `, held by pid ${owner.pid} on ${owner.host} since ${owner.since}` : '';
          throw new TemplatesError('LOCK_TIMEOUT', `timed out after ${Math.round(store.lockWaitMs / 1000)}s waiting for the lock on ${entryName(key)}${holder}`, {
            path,
            ...(owner ? { holder: `${owner.pid}@${owner.host}` } : {}),
            hint: 'another process is fetching this template; wait for it, or stop that process (a dead holder\'s lock is taken over on its own)',
          });
        }
        if (!waited) options.onWait?.();
        waited = true;
        try {
          await sleep(Math.min(delay, Math.max(0, deadline - now())), undefined, outer ? { signal: outer } : {});
        } catch {
          throw abortError(outer);
        }
        const answer = await options.answered?.();
        if (answer !== undefined) return answer;
        // Capped low: a waiter should notice the release quickly (a mkdir and a stat, which are cheap).
        delay = Math.min(delay * 2, 100);
      }
    }
    await writeOwner(ownerFile, now).catch((error: unknown) => {
      throw storeIoError(error, ownerFile, 'cannot write');
    });
    return await fn(held.signal);
  } finally {
    outer?.removeEventListener('abort', forward);
    if (release) {
      await removeOwner(ownerFile).catch(() => undefined);
      await release().catch(() => undefined);
    }
  }
}
