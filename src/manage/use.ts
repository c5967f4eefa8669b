// Register (or drop) a dependent of a stored template, so that prune and rm keep it: `templates use`.
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { TemplatesError } from '../errors.js';
import type { RepositorySet } from '../repository/set.js';
import { entryName } from '../store/layout.js';
import { readStoredEntry, type Store } from '../store/store.js';
import { updateUsers } from '../store/users.js';
import { storedKey } from './refs.js';

export interface UseOptions {
  store: Store;
  /** For short references; a full `repo:name:version` needs none. */
  repositories?: RepositorySet;
  /** The dependent to add (it must exist): a VM disk whose backing file is the template, for instance. */
  by?: string;
  /** The dependent to remove. */
  drop?: string;
  signal?: AbortSignal;
  now?: () => number;
}

/** Changes the template's dependents in lago's users file, under the entry's lock; resolves to the live ones. */
export async function useTemplate(ref: string, options: UseOptions): Promise<{ ref: string; dependents: string[] }> {
  const key = storedKey(ref, options.repositories);
  const name = entryName(key);
  if (!options.by && !options.drop)
    throw new TemplatesError('USAGE', 'useTemplate: give by or drop', { hint: 'usage: templates use REF --by PATH' });
  if (!(await readStoredEntry(options.store, key)))
    throw new TemplatesError('NOT_STORED', `${name} is not in the store`, { ref: name, hint: 'fetch it first' });
  if (options.by && !(await stat(options.by).catch(() => undefined)))
    throw new TemplatesError('INPUT_NOT_FOUND', `${resolve(options.by)} does not exist`, {
      path: resolve(options.by),
      hint: 'register the dependent after creating it',
    });
  const dependents = await updateUsers(
    options.store,
    key,
    { ...(options.by ? { add: options.by } : {}), ...(options.drop ? { drop: options.drop } : {}) },
    { ...(options.signal ? { signal: options.signal } : {}), now: options.now ?? Date.now },
  );
  return { ref: name, dependents };
}
