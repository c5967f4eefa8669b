// du: apparent and allocated bytes per repository, template and version, the store's total and its filesystem's free space.
import { filesystemSpace, listStored } from '../store/inventory.js';
import type { Store } from '../store/store.js';

interface Usage {
  name: string;
  size: number;
  disk_size: number;
}

export interface DiskUsage {
  store: string;
  total: { size: number; disk_size: number };
  /** Bytes free on the store's filesystem (for an unprivileged user). */
  free: number;
  repositories: Array<Usage & { templates: Array<Usage & { versions: Usage[] }> }>;
}

function group<T extends { size: number; disk_size: number }>(
  items: T[],
  nameOf: (item: T) => string,
): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) out.set(nameOf(item), [...(out.get(nameOf(item)) ?? []), item]);
  return out;
}

const sum = (items: Array<{ size: number; disk_size: number }>) => ({
  size: items.reduce((total, item) => total + item.size, 0),
  disk_size: items.reduce((total, item) => total + item.disk_size, 0),
});

export async function diskUsage({ store }: { store: Store }): Promise<DiskUsage> {
  const entries = (await listStored({ store })).map((entry) => ({
    ...entry.key,
    size: entry.size,
    disk_size: entry.diskSize,
  }));
  const repositories = [...group(entries, (e) => e.repository)].map(([repository, inRepo]) => ({
    name: repository,
    ...sum(inRepo),
    templates: [...group(inRepo, (e) => e.template)].map(([template, versions]) => ({
      name: template,
      ...sum(versions),
      versions: versions.map((v) => ({ name: v.version, size: v.size, disk_size: v.disk_size })),
    })),
  }));
  return { store: store.root, total: sum(entries), free: (await filesystemSpace(store)).free, repositories };
}
