// Replace a file atomically: write a temp file beside it, fsync, rename over, fsync the directory.
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { crypto } from './builtins.js';

/** The temp name used beside `path`: hidden, and recognisable as ours so leftovers of a killed run can be removed. */
export function atomicTempPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${crypto().randomBytes(4).toString('hex')}`);
}

/** True for a temp file left by atomicTempPath (a killed writer). */
export function isAtomicTemp(name: string): boolean {
  return /^\..+\.tmp-\d+-[0-9a-f]{8}$/.test(name);
}

export async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Readers see the old content or the new one, never a mix; a failure leaves the old file as it was. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const temp = atomicTempPath(path);
  try {
    const handle = await open(temp, 'wx');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    await fsyncPath(dirname(path));
  } finally {
    await rm(temp, { force: true });
  }
}
