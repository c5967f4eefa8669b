// import: verify a local file against the repository's hash and publish it exactly as a download would.
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createContext, type Context } from '../context.js';
import { TemplatesError } from '../errors.js';
import { cachedResult, type FetchResult } from '../fetch/result.js';
import { createSingleFileProvider } from './import-source.js';
import { providerFor } from '../providers/index.js';
import type { RepositorySet } from '../repository/set.js';
import { resolveReference } from '../repository/resolve.js';
import { readSettledEntry, type Store } from '../store/store.js';
import { touchLastUse } from '../store/users.js';

export interface ImportOptions {
  /** The image file (raw or qcow2, plain or xz). */
  file: string;
  store: Store;
  repositories: RepositorySet;
  context?: Context;
  signal?: AbortSignal;
  /** No network: the hash must be in the repository JSON; metadata is `{}` when only the source has it. */
  offline?: boolean;
}

/**
 * Publishes `file` (raw or qcow2, plain or xz) as `ref`. It is verified against the repository's image digest
 * (or, for an xz file when the repository gives only that, its compressed digest), converted and stored under
 * the entry's lock like a download. An entry already stored is left as it is (`status: 'cached'`).
 */
export async function importTemplate(ref: string, options: ImportOptions): Promise<FetchResult> {
  const ctx = options.context ?? createContext();
  const path = resolve(options.file);
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile())
    throw new TemplatesError('INPUT_NOT_FOUND', `${path} is not a file`, {
      path,
      hint: 'give the image file to import',
    });
  const resolved = resolveReference(ref, options.repositories);
  const present = await readSettledEntry(options.store, resolved.key);
  if (present) return cachedResult(resolved.ref, present);
  const sidecars =
    options.offline && resolved.version.source.type !== 'file' ? null : providerFor(resolved.version.source, ctx.http);
  const provider = await createSingleFileProvider(path, sidecars);
  const { acquireEntry } = await import('../fetch/acquire.js');
  const result = await acquireEntry(ctx, options.store, resolved, {
    ...(options.signal ? { signal: options.signal } : {}),
    source: { provider, preferImageHash: true },
  });
  await touchLastUse(options.store, resolved.key, ctx.now());
  return result;
}
