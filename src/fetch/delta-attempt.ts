// A delta fetch attempted before the whole file: its result as a download, or undefined to fetch the whole file.
import { rm } from 'node:fs/promises';
import type { Context } from '../context.js';
import { isTemplatesError } from '../errors.js';
import type { Provider } from '../providers/types.js';
import type { Resolved } from '../repository/resolve.js';
import { deltaPartialPath } from '../store/layout.js';
import type { Store } from '../store/store.js';
import { readHead } from '../util/read-head.js';
import { deltaDownload } from './delta.js';
import { HEAD_BYTES, detectImageFormat } from './detect.js';
import type { Downloaded } from './download.js';
import type { ProgressCallback } from './progress.js';

/**
 * The version assembled from stored images and fetched chunks (in the entry's partial delta file), or undefined: no index, no useful seed, too costly, or a
 * failure of the delta's own inputs (a bad index or chunk, a lying seed), after which the whole file is fetched.
 */
export async function tryDelta(
  ctx: Context,
  store: Store,
  resolved: Resolved,
  provider: Provider,
  signal: AbortSignal,
  onProgress: ProgressCallback | undefined,
): Promise<Downloaded | undefined> {
  const { key, version, ref } = resolved;
  const partial = deltaPartialPath(store.root, key);
  try {
    const delta = await deltaDownload(
      ctx,
      store,
      key,
      {
        provider,
        handle: version.handle,
        caibx: version.caibx!,
        ...(version.hash ? { hash: version.hash } : {}),
        ...(version.size !== undefined ? { size: version.size } : {}),
        ...(version.zst?.size !== undefined ? { zstSize: version.zst.size } : {}),
      },
      partial,
      {
        signal,
        onPlan: (report) => onProgress?.({ ref, phase: 'delta', ...report }),
        onBytes: (bytes, total) =>
          onProgress?.({ ref, phase: 'download', location: provider.locate('default.castr/', ''), bytes, total }),
      },
    );
    if (!delta) return undefined;
    const format = detectImageFormat(await readHead(delta.path, HEAD_BYTES), delta.location);
    if (format !== 'raw' || (version.format && version.format !== 'raw')) return undefined;
    return {
      path: delta.path,
      location: delta.location,
      compressed: false,
      sourceFormat: 'raw',
      verified: { digest: delta.digest, of: 'image' },
      imageHash: delta.digest,
      size: delta.size,
      delta: delta.report,
      chunkIndex: delta.index,
    };
  } catch (error) {
    // Aborted (or killed), the partial file is the next try's seed; a failure of the delta's inputs leaves nothing behind.
    if (!isTemplatesError(error) || FATAL.has(error.code) || signal.aborted) throw error;
    await rm(partial, { force: true });
    onProgress?.({ ref, phase: 'delta-failed', code: error.code, message: error.message });
    return undefined;
  }
}

/** Failures a whole-file fetch would meet too: they end the fetch instead of falling back. */
const FATAL = new Set(['ABORTED', 'STORE_IO', 'STORE_FULL', 'LOCK_TIMEOUT', 'INTERNAL']);
