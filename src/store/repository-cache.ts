// The store's cache of repository JSON fetched over HTTP (`.repos/`), read back when offline or when the server is down.
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { CachedRepository, RepositoryCache } from '../repository/cache.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { repoCachePath } from './layout.js';

/** A cache under `<root>/.repos/`, one file per URL, replaced atomically. */
export function createRepositoryCache(root: string): RepositoryCache {
  return {
    async read(url) {
      try {
        return JSON.parse(await readFile(repoCachePath(root, url), 'utf8')) as CachedRepository;
      } catch {
        return undefined;
      }
    },
    async write(url, entry) {
      const path = repoCachePath(root, url);
      await mkdir(dirname(path), { recursive: true });
      await writeFileAtomic(path, JSON.stringify(entry));
    },
  };
}
