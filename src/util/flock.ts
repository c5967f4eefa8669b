// A lock file as lago takes one: a regular file (mode 0660, never removed) held with flock(2), here through fs-ext.
import { closeSync, fstatSync, fchmodSync, openSync, constants, type Stats } from 'node:fs';
import { readFile, rmdir, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';

/** The part of fs-ext this module uses (a native module: loaded on first use, a cache hit never needs it). */
interface FlockBinding {
  flockSync(fd: number, flags: 'exnb' | 'shnb'): void;
}

/** fs-ext, from require's own cache after the first call. */
const flockBinding = (): FlockBinding => createRequire(import.meta.url)('fs-ext') as FlockBinding;

/** A held lock; release() closes its file descriptor, which releases the flock (the file stays). */
export interface HeldLock {
  release(): void;
}

/** What trying the lock found. */
export type TryLock = { held: HeldLock } | { busy: 'flock' | 'legacy-directory' };

const isBusy = (error: unknown) => ['EAGAIN', 'EWOULDBLOCK'].includes((error as NodeJS.ErrnoException).code ?? '');

/**
 * An earlier `templates` (before lago's protocol) locked with a directory at the same path (proper-lockfile), its mtime
 * refreshed by a live holder. One not refreshed for `staleMs` was left by a killed process: removed, so the path can
 * become lago's file. A fresh one is a live holder of the old kind: busy.
 */
async function replaceLegacyDirectory(path: string, staleMs: number, now: number): Promise<boolean> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isDirectory()) return true;
  if (now - info.mtimeMs < staleMs) return false;
  try {
    await rmdir(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // Someone else replaced it first (ENOENT); a directory with files in it is not a lock: the caller says so.
    if (code !== 'ENOENT') throw error;
  }
  return true;
}

/** Opens (creating, 0660, as lago does) the lock file. */
function openLockFile(path: string): { fd: number } | { directory: true } {
  try {
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o660);
    try {
      // lago chmods its lock files 0660 so that a group shares the store; the umask may have taken bits off.
      fchmodSync(fd, 0o660);
    } catch {
      // another user's lock file: its mode is theirs to set
    }
    return { fd };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EISDIR') return { directory: true };
    throw error;
  }
}

const sameFile = (a: Stats, b: Stats | undefined) => b !== undefined && a.ino === b.ino && a.dev === b.dev;

/**
 * Tries once to take the exclusive lock without blocking (errors other than "held" are thrown as they are, with their
 * errno code, for the caller to name). After taking it, checks that the path still names the file it
 * locked (a lock file removed or replaced meanwhile would make two holders): if not, tries again on the new one.
 */
export async function tryLock(path: string, options: { staleMs: number; now: number }): Promise<TryLock> {
  const flock = flockBinding();
  for (let attempt = 0; attempt < 5; attempt++) {
    const opened = openLockFile(path);
    if ('directory' in opened) {
      if (!(await replaceLegacyDirectory(path, options.staleMs, options.now))) return { busy: 'legacy-directory' };
      continue;
    }
    const { fd } = opened;
    try {
      flock.flockSync(fd, 'exnb');
    } catch (error) {
      closeSync(fd);
      if (isBusy(error)) return { busy: 'flock' };
      throw error;
    }
    const locked = fstatSync(fd);
    if (sameFile(locked, await stat(path).catch(() => undefined))) {
      let open = true;
      return {
        held: {
          release: () => {
            if (open) closeSync(fd);
            open = false;
          },
        },
      };
    }
    closeSync(fd);
  }
  throw Object.assign(new Error(`${path} kept being replaced while it was locked`), { code: 'ELOCKREPLACED' });
}

/**
 * Whether someone holds the lock now, asked without disturbing them: a shared lock taken and dropped at once (it
 * conflicts only with an exclusive holder). A missing lock file is free; creating it is not this question's business.
 */
export async function isLockHeld(path: string): Promise<boolean> {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    if (code === 'EISDIR') return true;
    throw error;
  }
  try {
    flockBinding().flockSync(fd, 'shnb');
    return false;
  } catch (error) {
    if (isBusy(error)) return true;
    throw error;
  } finally {
    closeSync(fd);
  }
}

/** The pid holding an exclusive flock on the file, from /proc/locks (Linux), with its command name; undefined elsewhere. */
export async function flockHolder(path: string): Promise<{ pid: number; command?: string } | undefined> {
  const info = await stat(path).catch(() => undefined);
  const table = await readFile('/proc/locks', 'utf8').catch(() => undefined);
  if (!info || table === undefined) return undefined;
  // /proc/locks names the file as MAJOR:MINOR:INODE, major and minor in hex; Linux encodes st_dev as glibc's makedev.
  const major = Number(((BigInt(info.dev) >> 8n) & 0xfffn) | ((BigInt(info.dev) >> 32n) & ~0xfffn));
  const minor = Number((BigInt(info.dev) & 0xffn) | ((BigInt(info.dev) >> 12n) & ~0xffn));
  for (const line of table.split('\n')) {
    // "1: FLOCK  ADVISORY  WRITE 4242 fe:00:2146551 0 EOF"; waiters' lines carry "->" and are passed over.
    const match = /^\d+:\s+FLOCK\s+\S+\s+WRITE\s+(\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
    if (
      !match ||
      Number(match[4]) !== info.ino ||
      parseInt(match[2]!, 16) !== major ||
      parseInt(match[3]!, 16) !== minor
    )
      continue;
    const pid = Number(match[1]);
    const command = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
    return { pid, ...(command ? { command } : {}) };
  }
  return undefined;
}
