// Remove stored entries under their lock (store/delete.ts): the image first (the entry is gone at once), then its sidecars and temp files.
import { TemplatesError } from '../errors.js';
import { deleteEntryFiles } from '../store/delete.js';
import { describeDependent, entryName, type VersionKey } from '../store/layout.js';
import { withEntryLock } from '../store/lock.js';
import { readStoredEntry, type Store } from '../store/store.js';
import { readUsers } from '../store/users.js';
import type { RepositorySet } from '../repository/set.js';
import { storedKey } from './refs.js';

export interface RemoveOptions {
  /** Remove even when live dependents are registered (`templates use`). */
  force?: boolean;
  signal?: AbortSignal;
  now?: () => number;
}

/**
 * Removes one entry: NOT_STORED when it is absent, ENTRY_IN_USE when it has live dependents (unless `force`),
 * LOCK_TIMEOUT when a fetch holds its lock past the store's lock wait. Returns the bytes it occupied on disk.
 */
export async function removeEntry(
  store: Store,
  key: VersionKey,
  options: RemoveOptions = {},
): Promise<{ size: number }> {
  const ref = entryName(key);
  return withEntryLock(
    store,
    key,
    { ...(options.signal ? { signal: options.signal } : {}), ...(options.now ? { now: options.now } : {}) },
    async () => {
      const entry = await readStoredEntry(store, key);
      if (!entry)
        throw new TemplatesError('NOT_STORED', `${ref} is not in the store ${store.root}`, {
          ref,
          path: store.root,
          hint: 'see: templates list --stored',
        });
      const { live } = await readUsers(store, key);
      if (live.length && !options.force) {
        throw new TemplatesError(
          'ENTRY_IN_USE',
          `${ref} is used by ${live.map((path) => describeDependent(store.root, path)).join(', ')}`,
          {
            ref,
            path: live[0]!,
            hint: 'remove the dependents first, release them with templates use --drop (a job: templates job rm ID), or pass --force',
          },
        );
      }
      await deleteEntryFiles(store, key);
      return { size: entry.size };
    },
  );
}

/** removeEntry for a reference (`repo:name:version`, or shorter through `repositories`): `templates rm REF`. */
export async function removeTemplate(
  ref: string,
  options: RemoveOptions & { store: Store; repositories?: RepositorySet },
): Promise<{ ref: string; size: number }> {
  const key = storedKey(ref, options.repositories);
  const { size } = await removeEntry(options.store, key, options);
  return { ref: entryName(key), size };
}
