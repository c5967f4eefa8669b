// The renditions serve makes of stored versions for other clients (LXD's qcow2 and metadata): each made once, however many ask.
import type { Context } from '../context.js';
import { asTemplatesError } from '../errors.js';
import { type LxdImage, type LxdProperties, ensureLxdImage, readLxdImage } from '../manage/lxd-image.js';
import type { VersionKey } from '../repository/reference.js';
import { entryName } from '../store/layout.js';
import type { Store } from '../store/store.js';

export interface Renditions {
  /** The version's LXD rendition, made now when missing (one making per version at a time, shared by every asker). */
  lxd(key: VersionKey, properties: LxdProperties): Promise<LxdImage>;
  /** The rendition when it is made already; never makes one. */
  readyLxd(key: VersionKey): Promise<LxdImage | undefined>;
}

export function createRenditions(options: {
  store: Store;
  context: Context;
  signal: AbortSignal;
  log: (line: Record<string, unknown>) => void;
  onMade?: (format: string, key: VersionKey) => void;
}): Renditions {
  const { store, context, signal, log } = options;
  const making = new Map<string, Promise<LxdImage>>();
  return {
    lxd(key, properties) {
      const name = entryName(key);
      let pending = making.get(name);
      if (!pending) {
        pending = ensureLxdImage(store, key, context, properties, signal)
          .then((image) => {
            options.onMade?.('simplestreams', key);
            return image;
          })
          .catch((error: unknown) => {
            const failure = asTemplatesError(error);
            log({
              kind: 'rendition',
              format: 'simplestreams',
              ref: name,
              error: failure.code,
              message: failure.toLine(),
            });
            throw failure;
          })
          .finally(() => making.delete(name));
        making.set(name, pending);
      }
      return pending;
    },
    readyLxd: (key) => readLxdImage(store, key),
  };
}
