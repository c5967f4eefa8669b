// A provider for `templates import`: the image is one local file; sidecars (.hash, .metadata) come from the real source.
import { basename, dirname, resolve } from 'node:path';
import { open } from 'node:fs/promises';
import { isXz } from '../fetch/detect.js';
import { createFileProvider } from '../providers/file.js';
import type { OpenOptions, OpenedFile, Provider } from '../providers/types.js';

/**
 * Serves `file` as the image: as `<handle>.xz` when its content is xz, else as `<handle>`; the other image
 * candidate is absent. `sidecars` answers every other suffix (null: none, e.g. offline).
 */
export async function createSingleFileProvider(file: string, sidecars: Provider | null): Promise<Provider> {
  const path = resolve(file);
  const handle = await open(path, 'r');
  const head = Buffer.alloc(6);
  try {
    await handle.read(head, 0, 6, 0);
  } finally {
    await handle.close();
  }
  const imageSuffix = isXz(head) ? '.xz' : '';
  const local = createFileProvider(dirname(path));
  const isImage = (suffix: string) => suffix === '.xz' || suffix === '';
  return {
    locate: (h, suffix) => (isImage(suffix) ? path : (sidecars?.locate(h, suffix) ?? `${path}${suffix}`)),
    async open(h: string, suffix: string, options: OpenOptions = {}): Promise<OpenedFile | null> {
      if (isImage(suffix))
        return suffix === imageSuffix
          ? local.open(basename(path), '', { ...(options.signal ? { signal: options.signal } : {}) })
          : null;
      return sidecars ? sidecars.open(h, suffix, options) : null;
    },
  };
}
