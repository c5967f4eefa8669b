// The renditions serve makes of stored versions for other clients (LXD's qcow2 and metadata, Vagrant boxes): each made once.
import type { Context } from '../context.js';
import { asTemplatesError } from '../errors.js';
import { type LxdImage, type LxdProperties, ensureLxdImage, readLxdImage } from '../manage/lxd-image.js';
import { type VirtBuilderFile, ensureVirtBuilderFile, readVirtBuilderFile } from '../manage/virt-builder-file.js';
import { type VagrantBox, ensureVagrantBox, readVagrantBox } from '../manage/vagrant-box.js';
import type { VersionKey } from '../repository/reference.js';
import { entryName } from '../store/layout.js';
import type { Store } from '../store/store.js';

export interface Renditions {
  /** The version's LXD rendition, made now when missing (one making per version at a time, shared by every asker). */
  lxd(key: VersionKey, properties: LxdProperties): Promise<LxdImage>;
  /** The rendition when it is made already; never makes one. */
  readyLxd(key: VersionKey): Promise<LxdImage | undefined>;
  /** The version's Vagrant box, made now when missing (once, as above). */
  box(key: VersionKey, timestamp: number): Promise<VagrantBox>;
  readyBox(key: VersionKey): Promise<VagrantBox | undefined>;
  /** The file virt-builder gets and its SHA-512, taken once. */
  virtBuilder(key: VersionKey): Promise<VirtBuilderFile>;
}

export function createRenditions(options: {
  store: Store;
  context: Context;
  signal: AbortSignal;
  log: (line: Record<string, unknown>) => void;
  onMade?: (format: string, key: VersionKey) => void;
}): Renditions {
  const { store, context, signal, log } = options;
  const making = new Map<string, Promise<unknown>>();
  /** One making per format and version at a time, shared by every asker; failures logged once. */
  const once = <T>(format: string, key: VersionKey, make: () => Promise<T>): Promise<T> => {
    const name = `${format} ${entryName(key)}`;
    let pending = making.get(name) as Promise<T> | undefined;
    if (!pending) {
      pending = make()
        .then((made) => {
          options.onMade?.(format, key);
          return made;
        })
        .catch((error: unknown) => {
          const failure = asTemplatesError(error);
          log({ kind: 'rendition', format, ref: entryName(key), error: failure.code, message: failure.toLine() });
          throw failure;
        })
        .finally(() => making.delete(name));
      making.set(name, pending);
    }
    return pending;
  };
  return {
    lxd: (key, properties) => once('simplestreams', key, () => ensureLxdImage(store, key, context, properties, signal)),
    readyLxd: (key) => readLxdImage(store, key),
    box: (key, timestamp) => once('vagrant', key, () => ensureVagrantBox(store, key, context, timestamp, signal)),
    readyBox: (key) => readVagrantBox(store, key),
    virtBuilder: async (key) =>
      (await readVirtBuilderFile(store, key)) ??
      once('virt-builder', key, () => ensureVirtBuilderFile(store, key, context, signal)),
  };
}
