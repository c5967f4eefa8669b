// A live job's hold on stored entries: one file per job, named as a dependent in each entry's lago users file.
//
// Holding through the users file means every other part of the store sees it without the jobs database: prune and
// rm refuse (ENTRY_IN_USE), list --stored and info show it, lago itself keeps the entry. The file exists while the
// job is live; once it is gone the dependent is dead and dropped the next time the users file is written.
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { storeIoError } from '../errors.js';
import { removeEntry } from '../manage/remove.js';
import { entryName, jobHoldPath, type VersionKey } from '../store/layout.js';
import { readStoredEntry, type Store } from '../store/store.js';
import { readUsers, updateUsers } from '../store/users.js';
import { writeFileAtomic } from '../util/atomic-write.js';

/** Creates (or keeps) job `id`'s hold file. */
export async function createHold(store: Store, id: number, owner: string): Promise<string> {
  const path = jobHoldPath(store.root, id);
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFileAtomic(path, `${JSON.stringify({ job: id, owner, by: 'templates serve' })}\n`);
  } catch (error) {
    throw storeIoError(error, path, "cannot write the job's hold");
  }
  return path;
}

/** Names job `id` as a dependent of the entry (under its lock). */
export async function attachHold(
  store: Store,
  key: VersionKey,
  id: number,
  now: () => number,
  signal?: AbortSignal,
): Promise<void> {
  await updateUsers(store, key, { add: jobHoldPath(store.root, id) }, { now, ...(signal ? { signal } : {}) });
}

/** Ends job `id`'s hold: its dependents become dead at once. */
export async function releaseHold(store: Store, id: number): Promise<void> {
  await rm(jobHoldPath(store.root, id), { force: true });
}

/**
 * Removes each stored entry of `keys` that nothing holds any more: not `held` by a job in the database (one that waits
 * and has not attached yet), no live dependent, no fetch holding its lock (tried without waiting; kept for the next
 * sweep). Returns the names removed.
 */
export async function freeUnheld(
  store: Store,
  keys: VersionKey[],
  held: Set<string>,
  now: () => number,
): Promise<string[]> {
  const removed: string[] = [];
  for (const key of keys) {
    const name = entryName(key);
    if (held.has(name) || !(await readStoredEntry(store, key))) continue;
    if ((await readUsers(store, key)).live.length > 0) continue;
    // removeEntry checks the dependents again under the lock; a running fetch makes it LOCK_TIMEOUT: either way it stays.
    const gone = await removeEntry({ ...store, lockWaitMs: 0 }, key, { now }).then(
      () => true,
      () => false,
    );
    if (gone) removed.push(name);
  }
  return removed;
}
