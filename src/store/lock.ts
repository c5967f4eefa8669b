// The per-template lock, lago's protocol: `<entry>.lock` held with flock(2) around check → fetch → publish (util/flock.ts).
import { mkdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TemplatesError, abortError, storeIoError } from '../errors.js';
import { flockHolder, tryLock, type HeldLock } from '../util/flock.js';
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
 * Who holds a lock, and since when: written by the holder right after taking it, into the entry's temp directory
 * (lago truncates the lock file when it opens it, so nothing can be kept there). Trusted only when /proc/locks names
 * the same pid: a killed holder's file stays behind until the next holder replaces it.
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
    return typeof owner.pid === 'number' && typeof owner.host === 'string' && typeof owner.since === 'string'
      ? (owner as LockOwner)
      : undefined;
  } catch {
    return undefined;
  }
}

/** One line naming who holds the lock: the pid from /proc/locks (lago or us), with the time from our owner file when that pid is ours. */
async function describeHolder(path: string, ownerFile: string): Promise<{ text: string; holder?: string }> {
  const [flocker, owner] = await Promise.all([flockHolder(path), readOwner(ownerFile)]);
  if (flocker) {
    const ours = owner && owner.pid === flocker.pid && owner.host === hostname() ? owner : undefined;
    const what = flocker.command ? ` (${flocker.command})` : '';
    return {
      text: `, held by pid ${flocker.pid} on ${hostname()}${what}${ours ? ` since ${ours.since}` : ''}`,
      holder: `${flocker.pid}@${hostname()}`,
    };
  }
  // No /proc/locks entry: another host on a shared filesystem, or an older templates' lock directory.
  return owner
    ? { text: `, held by pid ${owner.pid} on ${owner.host} since ${owner.since}`, holder: `${owner.pid}@${owner.host}` }
    : { text: '' };
}

/**
 * Runs `fn` while holding the entry's lock: an exclusive flock on `<entry>.lock`, exactly as lago takes it, so lago
 * and templates exclude each other. The kernel releases it when its holder dies, so a killed holder never leaves a
 * lock behind; the file itself is never removed (lago never removes it, and a removed file would let two holders in).
 * `fn` gets a signal that aborts with the caller's. While it waits, `answered` (when given) is asked after each try:
 * a value it returns is returned without the lock (the holder published what this caller came for).
 */
export async function withEntryLock<T>(
  store: Store,
  key: VersionKey,
  options: LockOptions & { answered?: () => Promise<T | undefined> },
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const now = options.now ?? Date.now;
  const path = lockPath(store.root, key);
  const ownerFile = lockOwnerPath(store.root, key);
  const outer = options.signal;
  const deadline = now() + store.lockWaitMs;
  let lock: HeldLock | undefined;
  let delay = 20;
  let waited = false;
  try {
    while (!lock) {
      if (outer?.aborted) throw abortError(outer);
      const tried = await tryLock(path, { staleMs: store.lockStaleMs, now: now() }).catch((error: unknown) => {
        throw storeIoError(error, path, 'cannot take the lock');
      });
      if ('held' in tried) {
        lock = tried.held;
        break;
      }
      if (now() >= deadline) {
        const { text, holder } = await describeHolder(path, ownerFile);
        throw new TemplatesError(
          'LOCK_TIMEOUT',
          `timed out after ${Math.round(store.lockWaitMs / 1000)}s waiting for the lock on ${entryName(key)}${text}`,
          {
            path,
            ...(holder ? { holder } : {}),
            hint: 'another process, templates or lago, is fetching or removing this template: wait for it, or stop that process, and its lock goes with it',
          },
        );
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
      // Capped low: a waiter should notice the release quickly (an open and a flock, which are cheap).
      delay = Math.min(delay * 2, 100);
    }
    await writeOwner(ownerFile, now).catch(() => undefined);
    const held = new AbortController();
    const forward = () => held.abort(outer?.reason);
    outer?.addEventListener('abort', forward, { once: true });
    try {
      return await fn(held.signal);
    } finally {
      outer?.removeEventListener('abort', forward);
      await removeOwner(ownerFile).catch(() => undefined);
    }
  } finally {
    lock?.release();
  }
}
