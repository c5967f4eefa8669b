// Reading and writing the lock file for the CLI: the path's errors as typed errors; written atomically, and only when it changed.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { TemplatesError, outputIoError } from '../errors.js';
import { formatLockFile, parseLockFile, type LockFile } from '../lockfile/file.js';
import { writeFileAtomic } from '../util/atomic-write.js';

/** The lock file at `path`; INPUT_NOT_FOUND when there is none. */
export async function readLockFile(path: string): Promise<LockFile> {
  const lock = await readLockFileIfAny(path);
  if (!lock)
    throw new TemplatesError('INPUT_NOT_FOUND', `${path}: cannot read the lock file: ENOENT`, {
      file: path,
      hint: 'write one with templates lock REF…',
    });
  return lock;
}

/** The lock file at `path`, or undefined when there is none yet. */
export async function readLockFileIfAny(path: string): Promise<LockFile | undefined> {
  const text = await readFile(resolve(path), 'utf8').catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TemplatesError(
      'INPUT_NOT_FOUND',
      `${path}: cannot read the lock file: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      { file: path },
      { cause: error },
    );
  });
  return text === undefined ? undefined : parseLockFile(text, path);
}

/** Writes the lock when its bytes change; true when it wrote. */
export async function writeLockFile(path: string, lock: LockFile): Promise<boolean> {
  const text = formatLockFile(lock);
  const before = await readFile(resolve(path), 'utf8').catch(() => undefined);
  if (before === text) return false;
  await writeFileAtomic(resolve(path), text).catch((error: unknown) => {
    throw outputIoError(error, path, 'cannot write');
  });
  return true;
}
