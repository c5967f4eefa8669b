// A qcow2 rendition of a stored entry, made once with qemu-img under the entry's lock, hashed, and published by rename.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Context } from '../context.js';
import { TemplatesError, abortError, storeIoError } from '../errors.js';
import { entryName, qcow2HashPath, qcow2Path, tempPrefix, type VersionKey } from '../store/layout.js';
import { withEntryLock } from '../store/lock.js';
import { fsyncDir } from '../store/commit.js';
import { notStored, readStoredEntry, type Store } from '../store/store.js';
import { fsyncPath, writeFileAtomic } from '../util/atomic-write.js';
import { hashFile } from '../util/hash-file.js';

export interface Qcow2Rendition {
  path: string;
  /** `sha256:<hex>` of the qcow2 file. */
  hash: string;
  size: number;
}

/** The rendition when it exists (its hash file is written before it, so one without the other is never seen). */
export async function readQcow2(store: Store, key: VersionKey): Promise<Qcow2Rendition | undefined> {
  const path = qcow2Path(store.root, key);
  const info = await stat(path).catch(() => undefined);
  if (!info) return undefined;
  const hash = (await readFile(qcow2HashPath(store.root, key), 'utf8').catch(() => '')).trim();
  return hash ? { path, hash, size: info.size } : undefined;
}

/**
 * Makes `<entry>.qcow2` from the stored raw image unless it exists: `qemu-img convert -O qcow2` into the entry's
 * temp directory, sha256 of the result, the hash file, then a rename. NOT_STORED when the entry is gone.
 */
export async function ensureQcow2(
  store: Store,
  key: VersionKey,
  context: Context,
  signal?: AbortSignal,
): Promise<Qcow2Rendition> {
  return withEntryLock(store, key, { ...(signal ? { signal } : {}), now: context.now }, async (lockSignal) => {
    const existing = await readQcow2(store, key);
    if (existing) return existing;
    const entry = await readStoredEntry(store, key);
    if (!entry) throw notStored(store, key);
    const temp = `${tempPrefix(store.root, key, randomBytes(6).toString('hex'))}.qcow2`;
    const path = qcow2Path(store.root, key);
    try {
      await mkdir(dirname(temp), { recursive: true });
      const { execa } = await import('execa');
      await execa(context.qemuImg, ['convert', '-q', '-f', 'raw', '-O', 'qcow2', entry.path, temp], {
        stdin: 'ignore',
        stdout: 'ignore',
        stderr: 'pipe',
        cancelSignal: lockSignal,
      });
      const { sha256 } = await hashFile(temp, ['sha256'], lockSignal);
      await fsyncPath(temp);
      await writeFileAtomic(qcow2HashPath(store.root, key), `sha256:${sha256}\n`);
      await rename(temp, path);
      await fsyncDir(store.root);
      return { path, hash: `sha256:${sha256}`, size: (await stat(path)).size };
    } catch (error) {
      await rm(temp, { force: true });
      if (lockSignal.aborted) throw abortError(lockSignal);
      if ((error as { stderr?: string }).stderr !== undefined) {
        throw new TemplatesError(
          'CONVERT_FAILED',
          `qemu-img could not make a qcow2 of ${entryName(key)}: ${
            String((error as { stderr?: string }).stderr)
              .trim()
              .split('\n')[0]
          }`,
          { ref: entryName(key), hint: 'check the disk space and qemu-img' },
          { cause: error },
        );
      }
      throw storeIoError(error, path, 'cannot write the qcow2 rendition');
    }
  });
}
