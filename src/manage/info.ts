// info: what a reference resolves to (version, URLs, hashes), its metadata, and what the store holds of it.
import { createContext, type Context } from '../context.js';
import { resolveTemplate, type Resolution } from '../fetch/describe.js';
import { readMetadata } from '../fetch/source.js';
import { providerFor } from '../providers/index.js';
import type { RepositorySet } from '../repository/set.js';
import { resolveReference } from '../repository/resolve.js';
import { summarizeEntry, type StoredSummary } from '../store/inventory.js';
import { entryName } from '../store/layout.js';
import type { EntryRecord } from '../store/record.js';
import type { Store } from '../store/store.js';
import { storedKey } from './refs.js';

export interface TemplateInfo {
  ref: string;
  /** What the repository says; null when no configured repository has it (a stored entry of another one). */
  resolution: Resolution | null;
  metadata: unknown;
  stored:
    | (Pick<
        StoredSummary,
        'path' | 'size' | 'diskSize' | 'fetchedAt' | 'lastUsed' | 'source' | 'server' | 'mirror' | 'dependents'
      > & { hash: string | null; record: EntryRecord | null })
    | null;
}

export interface InfoOptions {
  repositories: RepositorySet;
  store: Store;
  context?: Context;
  signal?: AbortSignal;
  offline?: boolean;
}

export async function templateInfo(ref: string, options: InfoOptions): Promise<TemplateInfo> {
  const ctx = options.context ?? createContext();
  let resolution: Resolution | null = null;
  let key: ReturnType<typeof resolveReference>['key'] | undefined;
  try {
    const resolved = resolveReference(ref, options.repositories);
    key = resolved.key;
    resolution = await resolveTemplate(ref, {
      repositories: options.repositories,
      context: ctx,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.offline ? { offline: true } : {}),
    });
  } catch (error) {
    // A fully qualified ref of a stored entry is still described from the store.
    if (ref.split(':').length !== 3) throw error;
    key = storedKey(ref);
    if (!(await summarizeEntry(options.store, key))) throw error;
  }
  const summary = await summarizeEntry(options.store, key);
  let metadata: unknown = summary?.entry.metadata ?? null;
  if (!summary && resolution && !options.offline) {
    const version = resolveReference(ref, options.repositories).version;
    metadata = await readMetadata(providerFor(version.source, ctx.http), version.handle, options.signal);
  }
  return {
    ref: resolution?.ref ?? entryName(key),
    resolution,
    metadata,
    stored: summary
      ? {
          path: summary.path,
          size: summary.size,
          diskSize: summary.diskSize,
          fetchedAt: summary.fetchedAt,
          lastUsed: summary.lastUsed,
          source: summary.source,
          server: summary.server,
          mirror: summary.mirror,
          hash: summary.entry.hash ?? null,
          record: summary.entry.record ?? null,
          dependents: summary.dependents,
        }
      : null,
  };
}
