// Dependents and last use of a stored entry, in lago's `<entry>.users` file (lago's idea, kept compatible, done under the lock).
import { open, readFile, stat, utimes } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { storeIoError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { usersPath, type VersionKey } from './layout.js';
import { withEntryLock, type LockOptions } from './lock.js';
import type { Store } from './store.js';

/** lago's shape: `users` maps a dependent's path to a value lago used as a key (we write when it was registered). */
interface UsersFile {
  users: Record<string, unknown>;
  last_access: number;
}

export interface Users {
  /** Dependents whose path still exists. */
  live: string[];
  /** Dependents whose path is gone (dropped the next time the file is written). */
  gone: string[];
  /** Last use in ms since the epoch (the file's mtime), or undefined when never recorded. */
  lastUsedMs: number | undefined;
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

async function readUsersFile(path: string): Promise<UsersFile> {
  try {
    const data = JSON.parse(await readFile(path, 'utf8')) as Partial<UsersFile>;
    const users = typeof data.users === 'object' && data.users !== null && !Array.isArray(data.users) ? data.users : {};
    return { users, last_access: typeof data.last_access === 'number' ? data.last_access : 0 };
  } catch {
    return { users: {}, last_access: 0 };
  }
}

/**
 * Records a use now: the `.users` file's mtime (one utimes, no lock, so a cache hit stays cheap). Created when
 * missing. Best effort: a read-only store does not fail the fetch that uses it.
 */
export async function touchLastUse(store: Store, key: VersionKey, now: number): Promise<void> {
  const path = usersPath(store.root, key);
  const time = new Date(now);
  try {
    await utimes(path, time, time);
  } catch {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(JSON.stringify({ users: {}, last_access: Math.floor(now / 1000) }));
      await handle.close();
    } catch {
      // another process created it meanwhile, or the store is read-only: either way nothing to do
    }
  }
}

export async function readUsers(store: Store, key: VersionKey): Promise<Users> {
  const path = usersPath(store.root, key);
  const info = await stat(path).catch(() => undefined);
  if (!info) return { live: [], gone: [], lastUsedMs: undefined };
  const file = await readUsersFile(path);
  const live: string[] = [];
  const gone: string[] = [];
  for (const user of Object.keys(file.users).sort()) ((await exists(user)) ? live : gone).push(user);
  return { live, gone, lastUsedMs: Math.max(info.mtimeMs, file.last_access * 1000) };
}

/**
 * Adds (or with `drop`, removes) a dependent; dependents whose path is gone are dropped. Only for a caller holding the
 * entry's lock (updateUsers, clone). Returns the live dependents afterwards.
 */
export async function changeUsers(
  store: Store,
  key: VersionKey,
  change: { add?: string; drop?: string },
  now: number,
): Promise<string[]> {
  const path = usersPath(store.root, key);
  const file = await readUsersFile(path);
  const users: Record<string, unknown> = {};
  for (const [user, value] of Object.entries(file.users)) if (await exists(user)) users[user] = value;
  const absolute = (p: string) => (isAbsolute(p) ? p : resolve(p));
  if (change.drop) delete users[absolute(change.drop)];
  if (change.add) users[absolute(change.add)] = new Date(now).toISOString();
  const text = JSON.stringify({ users, last_access: Math.floor(now / 1000) });
  await writeFileAtomic(path, text).catch((error: unknown) => {
    throw storeIoError(error, path, 'cannot write');
  });
  return Object.keys(users).sort();
}

/** changeUsers under the entry's lock. */
export async function updateUsers(
  store: Store,
  key: VersionKey,
  change: { add?: string; drop?: string },
  options: LockOptions & { now: () => number },
): Promise<string[]> {
  return withEntryLock(store, key, options, () => changeUsers(store, key, change, options.now()));
}
