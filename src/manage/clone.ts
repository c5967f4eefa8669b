// cloneTemplate: a VM disk made from a stored template (a qcow2 overlay backed by it, or a full copy), registered as its dependent.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, link, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { createContext, type Context } from '../context.js';
import { TemplatesError, abortError, outputIoError } from '../errors.js';
import { fetchTemplate, type FetchOptions, type FetchResult } from '../fetch/fetch.js';
import { isValidName } from '../repository/reference.js';
import { entryName, parseEntryName, type VersionKey } from '../store/layout.js';
import { withEntryLock } from '../store/lock.js';
import { readStoredEntry, type StoredEntry } from '../store/store.js';
import { changeUsers } from '../store/users.js';
import { fsyncPath } from '../util/atomic-write.js';

export interface CloneOptions extends FetchOptions {
  /** The new disk's path: a new file in an existing directory. */
  dest: string;
  /** A full copy (reflinked where the filesystem can, else sparse) instead of a qcow2 overlay. */
  copy?: boolean;
}

export interface CloneResult {
  /** Fully qualified `<repo>:<template>:<version>`. */
  ref: string;
  /** Absolute path of the new disk. */
  path: string;
  /** The stored image it was made from (the overlay's backing file). */
  image: string;
  /** overlay: qcow2 backed by the image; reflink: a copy sharing its blocks (FICLONE); copy: a sparse copy. */
  method: 'overlay' | 'reflink' | 'copy';
  /** How the template came to be in the store. */
  fetch: FetchResult;
}

/** Filesystems that cannot share blocks answer FICLONE with one of these: a sparse copy is made instead. */
const NO_REFLINK = new Set(['ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EINVAL', 'ENOSYS', 'ENOTTY']);

function cloneFailed(ref: string, target: string, error: unknown): TemplatesError {
  const failed = error as { code?: unknown; stderr?: unknown; command?: unknown };
  if (failed.code === 'ENOENT' && typeof failed.command === 'string') {
    const tool = failed.command.split(' ')[0]!;
    return new TemplatesError(
      'TOOL_MISSING',
      `cannot make ${target}: ${tool} is not installed`,
      {
        tool,
        hint: /qemu-img$/.test(tool) ? 'install qemu-img (Debian: apt-get install qemu-utils)' : `install ${tool}`,
      },
      { cause: error },
    );
  }
  if (typeof failed.stderr === 'string') {
    return new TemplatesError(
      'CONVERT_FAILED',
      `cannot make ${target} from ${ref}: ${failed.stderr.trim().split('\n')[0] ?? 'failed'}`,
      { ref, path: target, hint: "check the destination's disk space and permissions" },
      { cause: error },
    );
  }
  return outputIoError(error, target, 'cannot write');
}

/** DEST is there already: clone never replaces a file. */
const exists = (target: string) =>
  new TemplatesError('OUTPUT_IO', `${target} exists`, {
    path: target,
    hint: 'clone never overwrites: name a new file, or remove that one',
  });

/** Writes the new disk at `temp`: a qcow2 overlay (backing format pinned: qemu never probes the stored image), or a copy. */
async function makeDisk(
  ctx: Context,
  entry: StoredEntry,
  temp: string,
  copy: boolean,
  signal: AbortSignal,
): Promise<CloneResult['method']> {
  const { execa } = await import('execa');
  const run = (file: string, args: string[]) =>
    execa(file, args, { stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', cancelSignal: signal });
  if (!copy) {
    await run(ctx.qemuImg, ['create', '-q', '-f', 'qcow2', '-b', entry.path, '-F', 'raw', temp]);
    return 'overlay';
  }
  try {
    await copyFile(entry.path, temp, constants.COPYFILE_FICLONE_FORCE);
    return 'reflink';
  } catch (error) {
    if (!NO_REFLINK.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
  }
  // coreutils' cp finds the holes (SEEK_DATA) and leaves them holes.
  await run('cp', ['--sparse=always', '--reflink=never', entry.path, temp]);
  return 'copy';
}

/**
 * Makes DEST from REF, fetching REF first when it is not stored. Under the entry's lock (so prune and rm, which check
 * dependents under it, see DEST once it exists): DEST is written beside itself, linked into place (never over an
 * existing file), and registered in the entry's users file; prune and rm keep the template while DEST exists.
 */
export async function cloneTemplate(ref: string, options: CloneOptions): Promise<CloneResult> {
  const ctx = options.context ?? createContext();
  const target = resolve(options.dest);
  const { signal } = options;
  const parent = await stat(dirname(target)).catch(() => undefined);
  if (!parent?.isDirectory()) {
    throw new TemplatesError('OUTPUT_IO', `${dirname(target)} is not a directory`, {
      path: dirname(target),
      hint: 'create the directory the new disk goes in first',
    });
  }
  // A prune between the fetch and the lock could take the entry: fetched once more, then it is ours under the lock.
  for (let attempt = 0; attempt < 2; attempt++) {
    if (await stat(target).catch(() => undefined)) throw exists(target);
    const fetched = await fetchTemplate(ref, { ...options, context: ctx });
    const key: VersionKey | undefined = parseEntryName(basename(fetched.path), isValidName);
    if (!key) throw new TemplatesError('INTERNAL', `unexpected stored path ${fetched.path}`);
    const made = await withEntryLock(
      options.store,
      key,
      { ...(signal ? { signal } : {}), now: ctx.now },
      async (lockSignal) => {
        const entry = await readStoredEntry(options.store, key);
        if (!entry) return undefined;
        const temp = join(dirname(target), `.${basename(target)}.${randomBytes(4).toString('hex')}.tmp`);
        let method: CloneResult['method'];
        try {
          method = await makeDisk(ctx, entry, temp, Boolean(options.copy), lockSignal);
          await fsyncPath(temp);
          // link(2) fails with EEXIST instead of replacing a file that appeared meanwhile.
          await link(temp, target);
        } catch (error) {
          if (lockSignal.aborted) throw abortError(lockSignal);
          if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw exists(target);
          throw cloneFailed(entryName(key), target, error);
        } finally {
          await rm(temp, { force: true });
        }
        try {
          await changeUsers(options.store, key, { add: target }, ctx.now());
        } catch (error) {
          await rm(target, { force: true });
          throw error;
        }
        return { ref: fetched.ref, path: target, image: entry.path, method, fetch: fetched } satisfies CloneResult;
      },
    );
    if (made) return made;
  }
  throw new TemplatesError('NOT_STORED', `${ref} was removed from the store while it was being cloned, twice`, {
    ref,
    hint: 'run the clone again; stop the prune that removes it meanwhile',
  });
}
