// Walk a publish directory: the candidate image files (relative, sorted), and temp files a killed run left.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isAtomicTemp } from '../util/atomic-write.js';
import { CHUNK_STORE } from './chunk-index.js';

export interface Scan {
  /** Relative `/`-separated paths of regular files that may be images, sorted. */
  files: string[];
  /** Absolute paths of leftover temp files of an earlier, killed run. */
  leftovers: string[];
}

/** Sidecars by lago's naming convention; they are never images themselves. */
const SIDECAR = /\.(hash|metadata|caibx)$|^virt-builder\.index$/;

/**
 * Hidden files and directories are skipped (the state, the lock and temp files are hidden), so are `.hash`,
 * `.metadata` and `.caibx` sidecars, the chunk store `default.castr/` at the top, `X.xz` when `X` is there too (X's compressed copy, written by index), and `X.zst` beside X or X.xz.
 * Symbolic links to files are followed; to directories, not (no cycles).
 */
export async function scanDirectory(dir: string, skip: ReadonlySet<string> = new Set()): Promise<Scan> {
  const files: string[] = [];
  const leftovers: string[] = [];
  const walk = async (abs: string, rel: string): Promise<void> => {
    const entries = await readdir(abs, { withFileTypes: true });
    for (const entry of entries) {
      const absPath = join(abs, entry.name);
      const relPath = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.name.startsWith('.')) {
        if (entry.isFile() && isAtomicTemp(entry.name)) leftovers.push(absPath);
        continue;
      }
      // The chunk store at the top (its chunks are not images), and chunk indexes, which are sidecars too.
      if (entry.isDirectory()) {
        if (!(rel === '' && entry.name === CHUNK_STORE)) await walk(absPath, relPath);
      } else if (
        entry.isFile() ||
        (entry.isSymbolicLink() &&
          (await stat(absPath).then(
            (s) => s.isFile(),
            () => false,
          )))
      ) {
        if (!SIDECAR.test(entry.name) && !skip.has(absPath)) files.push(relPath);
      }
    }
  };
  await walk(dir, '');
  const present = new Set(files);
  // X.zst beside X or X.xz is index's zstd copy.
  const copy = (path: string) =>
    (path.endsWith('.xz') && present.has(path.slice(0, -3))) ||
    (path.endsWith('.zst') && (present.has(path.slice(0, -4)) || present.has(`${path.slice(0, -4)}.xz`)));
  const candidates = files.filter((path) => !copy(path));
  return { files: candidates.sort(), leftovers };
}
