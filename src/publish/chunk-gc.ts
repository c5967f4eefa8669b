// Removing the chunks of a directory's chunk store that no index in the directory references (templates index --prune-chunks).
import { readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseIndex } from '../chunks/caibx.js';
import { abortError, isTemplatesError } from '../errors.js';
import { CHUNK_STORE } from './chunk-index.js';
import type { ChunkGcSummary } from './index-options.js';

export interface ChunkGcOptions {
  /** A chunk (or a writer's temp file) younger than this is kept: another tool's publish may not have written its index yet. */
  graceMs: number;
  now: number;
  signal?: AbortSignal;
}

/** The `.caibx` files below `dir`, relative to it, not descending into the chunk store. */
async function indexFiles(dir: string, rel = ''): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(join(dir, rel), { withFileTypes: true })) {
    const name = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory() && name !== CHUNK_STORE) found.push(...(await indexFiles(dir, name)));
    else if (entry.isFile() && entry.name.endsWith('.caibx')) found.push(name);
  }
  return found;
}

/** Every chunk id the `.caibx` files below `dir` (outside the chunk store) list; unreadable indexes are named. */
async function referenced(dir: string, signal?: AbortSignal): Promise<{ ids: Set<string>; unreadable: string[] }> {
  const ids = new Set<string>();
  const unreadable: string[] = [];
  for (const name of await indexFiles(dir)) {
    if (signal?.aborted) throw abortError(signal);
    const path = join(dir, name);
    try {
      for (const chunk of parseIndex(await readFile(path), path).chunks) ids.add(chunk.id);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (isTemplatesError(error) || (code !== 'ENOENT' && code !== 'EISDIR')) unreadable.push(name);
    }
  }
  return { ids, unreadable };
}

/**
 * Removes from `dir/default.castr/` each chunk no `.caibx` in the directory lists, and writers' leftover temp files,
 * when older than the grace. Run under the directory's index lock, so no `templates index` adds chunks meanwhile; the
 * grace covers other writers (`casync make`). An index that cannot be read stops it: its chunks might be in use.
 */
export async function pruneChunks(dir: string, options: ChunkGcOptions): Promise<ChunkGcSummary> {
  const { signal } = options;
  const summary: ChunkGcSummary = { removed: 0, removedBytes: 0, kept: 0, unreadable: [] };
  const { ids, unreadable } = await referenced(dir, signal);
  summary.unreadable = unreadable;
  const store = join(dir, CHUNK_STORE);
  const prefixes = await readdir(store).catch(() => [] as string[]);
  for (const prefix of prefixes) {
    if (!/^[0-9a-f]{4}$/.test(prefix)) continue;
    const names = await readdir(join(store, prefix)).catch(() => [] as string[]);
    for (const name of names) {
      if (signal?.aborted) throw abortError(signal);
      const path = join(store, prefix, name);
      const id = /^([0-9a-f]{64})\.cacnk$/.exec(name)?.[1];
      const info = await stat(path).catch(() => undefined);
      if (!info) continue;
      const old = options.now - info.mtimeMs >= options.graceMs;
      const unused = id ? !ids.has(id) : name.endsWith('.tmp');
      if (unused && old && !unreadable.length) {
        await rm(path, { force: true });
        summary.removed++;
        summary.removedBytes += info.size;
      } else if (id) summary.kept++;
    }
  }
  return summary;
}
