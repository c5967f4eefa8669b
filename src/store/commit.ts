// Commit an entry into the store by rename: sidecars first, the image last (its rename is the commit point), then fsync the directory.
import { rename, rm, writeFile } from 'node:fs/promises';
import { storeIoError } from '../errors.js';
import { fsyncPath } from '../util/atomic-write.js';
import { compressedPath, hashPath, imagePath, metadataPath, recordPath, type VersionKey } from './layout.js';
import type { Store } from './store.js';

export interface CommitInput {
  /** A verified, fsynced raw image inside the store's temp dir. */
  image: string;
  /** Text for `<entry>.hash`. */
  hash: string;
  /** Text for `<entry>.metadata`. */
  metadata: string;
  /** Text for `<entry>.record.json`. */
  record: string;
  /** The verified source `.xz` or `.zst` to keep as `<entry>.xz` / `<entry>.zst`, a temp file inside the store's temp dir. */
  compressed?: { path: string; compression: 'xz' | 'zst' };
  /** Prefix for the sidecars' temp files (inside the store's temp dir). */
  tempPrefix: string;
}

async function writeDurable(path: string, text: string): Promise<void> {
  await writeFile(path, text, { flag: 'wx' });
  await fsyncPath(path);
}

/** fsync of a directory: makes the renames in it durable. */
export const fsyncDir = fsyncPath;

/** Makes the entry visible. On failure nothing of it is visible: renamed sidecars are removed again. */
export async function commitEntry(store: Store, key: VersionKey, input: CommitInput): Promise<string> {
  const finalImage = imagePath(store.root, key);
  const sidecars: Array<[string, string, string]> = [
    [`${input.tempPrefix}.hash`, hashPath(store.root, key), input.hash],
    [`${input.tempPrefix}.metadata`, metadataPath(store.root, key), input.metadata],
    [`${input.tempPrefix}.record`, recordPath(store.root, key), input.record],
  ];
  const renamed: string[] = [];
  let committed = false;
  try {
    for (const [temp, , text] of sidecars) await writeDurable(temp, text);
    const moves = sidecars.map(([temp, final]) => [temp, final]);
    if (input.compressed)
      moves.push([input.compressed.path, compressedPath(store.root, key, input.compressed.compression)]);
    for (const [temp, final] of moves) {
      await rename(temp!, final!);
      renamed.push(final!);
    }
    await rename(input.image, finalImage);
    committed = true;
    await fsyncDir(store.root);
    return finalImage;
  } catch (error) {
    throw storeIoError(error, finalImage, 'cannot publish');
  } finally {
    await Promise.all(sidecars.map(([temp]) => rm(temp, { force: true })));
    if (!committed) await Promise.all(renamed.map((final) => rm(final, { force: true })));
  }
}
