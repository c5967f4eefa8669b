// Deleting an entry's files, for a caller holding its lock: the image first (the entry is gone at once), then the rest.
import { rm } from 'node:fs/promises';
import { storeIoError } from '../errors.js';
import { SIDECAR_SUFFIXES, entryTempDir, imagePath, type VersionKey } from './layout.js';
import { fsyncDir } from './commit.js';
import type { Store } from './store.js';

/** Deletes the entry's files; only for a caller holding the entry's lock. */
export async function deleteEntryFiles(store: Store, key: VersionKey): Promise<void> {
  const image = imagePath(store.root, key);
  try {
    await rm(image, { force: true });
    await Promise.all(SIDECAR_SUFFIXES.map((suffix) => rm(`${image}${suffix}`, { force: true })));
    await rm(entryTempDir(store.root, key), { recursive: true, force: true });
    await fsyncDir(store.root);
  } catch (error) {
    throw storeIoError(error, image, 'cannot remove');
  }
}
