// The `file` provider: reads handles below a local root and refuses any that resolve outside it.
import { open, realpath } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { TemplatesError, abortError } from '../errors.js';
import { checkHandle } from '../repository/handle.js';
import type { OpenOptions, OpenedFile, Provider } from './types.js';

const READ_CHUNK = 1024 * 1024;

function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

function outside(handle: string, root: string): TemplatesError {
  return new TemplatesError(
    'ENTRY_BROKEN',
    `handle ${JSON.stringify(handle)} resolves outside the source root ${root}`,
    {
      path: root,
      hint: 'the repository entry is unsafe; ask its owner to fix it',
    },
  );
}

export function createFileProvider(root: string): Provider {
  const base = resolve(root);
  const locate = (handle: string, suffix: string) => join(base, handle + suffix);
  return {
    locate,
    async open(handle: string, suffix: string, options: OpenOptions = {}): Promise<OpenedFile | null> {
      if (options.signal?.aborted) throw abortError(options.signal);
      const problem = checkHandle(handle);
      const path = locate(handle, suffix);
      if (problem || !inside(base, path)) throw outside(handle, base);
      let handleFd: Awaited<ReturnType<typeof open>>;
      try {
        handleFd = await open(path, 'r');
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return null;
        throw new TemplatesError(
          'SOURCE_UNREACHABLE',
          `cannot read ${path}: ${code ?? String(error)}`,
          {
            path,
            hint: 'check that the file source is readable',
          },
          { cause: error },
        );
      }
      try {
        // Symlinks may point anywhere: the file actually opened must still be inside the (real) root.
        const [realRoot, realFile] = await Promise.all([realpath(base), realpath(path)]);
        if (!inside(realRoot, realFile)) throw outside(handle, base);
        const stat = await handleFd.stat();
        if (!stat.isFile()) {
          throw new TemplatesError('SOURCE_UNREACHABLE', `${path} is not a regular file`, { path });
        }
        const body = handleFd.createReadStream({ highWaterMark: READ_CHUNK, autoClose: true });
        // Local files are never resumed: reading them again is as fast as keeping a partial copy.
        return { location: path, size: stat.size, offset: 0, body };
      } catch (error) {
        await handleFd.close();
        throw error;
      }
    },
  };
}
