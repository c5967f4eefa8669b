// What `templates index` takes and reports, and the check of its options before anything is read.
import type { ChunkSizes } from '../chunks/buzhash.js';
import { checkChunkSizes } from '../chunks/sizes.js';
import type { Context } from '../context.js';
import { TemplatesError, type ErrorCode } from '../errors.js';
import { isValidName } from '../repository/reference.js';
import type { IndexProgressCallback, IndexedStatus } from './progress.js';
import type { RepositorySource } from './repository-json.js';
import type { CompressChoices } from './xz.js';

/** The compressed files index writes beside each image: `.xz` always (lago reads it), `.zst` by default. */
export type IndexFormat = 'xz' | 'zst';
const DEFAULT_FORMATS: readonly IndexFormat[] = ['xz', 'zst'];

export interface IndexOptions extends CompressChoices {
  /** Which compressed files to write (default both); xz must be one of them. */
  formats?: readonly IndexFormat[];
  /** zstd's level, 1–22 (default 19), always with a 128 MiB window (`--long=27`). */
  zstdLevel?: number;
  /**
   * Chunk sizes for each raw image's `.caibx` and the directory's chunk store `default.castr/` (docs/delta.md);
   * default 8K:32K:128K; false: none (and the `.caibx` files are removed).
   */
  chunkSizes?: ChunkSizes | false;
  /**
   * After indexing, remove the chunks of `default.castr/` that no `.caibx` in the directory lists, once older than
   * `graceMs` (docs/delta.md; `templates index --prune-chunks`: one hour).
   */
  pruneChunks?: { graceMs: number };
  /** The repository's name. */
  name: string;
  /** Serve the images from this http(s) URL (an `http` source); default: a `file` source rooted at the directory. */
  baseUrl?: string;
  /** Mirror base URLs serving a copy of the directory: the JSON's top-level `mirrors` for its source (http sources only). */
  mirrors?: string[];
  /** Where the repository JSON goes; default `<dir>/<name>.json`. */
  output?: string;
  /** Globs over each image's handle (its path below the directory, without `.xz`). */
  include?: string[];
  exclude?: string[];
  /** Only images whose metadata has every one of these keys. */
  requireMetadata?: string[];
  /** Only images whose metadata `arch` is this. */
  arch?: string;
  context?: Context;
  signal?: AbortSignal;
  onProgress?: IndexProgressCallback;
}

/** What `pruneChunks` did (docs/delta.md). */
export interface ChunkGcSummary {
  /** Chunk files removed, and their bytes. */
  removed: number;
  removedBytes: number;
  /** Chunk files kept: referenced, or too young to judge. */
  kept: number;
  /** `.caibx` files that could not be read: while there is one, nothing is removed. */
  unreadable: string[];
}

export interface IndexSummary {
  repository: string;
  /** Absolute path of the repository JSON. */
  output: string;
  /** False when the repository JSON already had exactly this content (it was not rewritten). */
  written: boolean;
  /** The repository's revision: one higher than before when the JSON changed. */
  revision: number;
  templates: number;
  versions: number;
  images: Array<{ ref: string; handle: string; status: IndexedStatus }>;
  /** Images in the previous index that are gone now. */
  removed: string[];
  /** Files that are not images, or that the filters left out. */
  skipped: Array<{ path: string; reason: string }>;
  /** Images that could not be indexed; the rest of the index is still written. */
  problems: Array<{ path: string; code: ErrorCode; message: string }>;
  /** Uncompressed bytes read and compressed bytes written by this run. */
  bytesIn: number;
  bytesOut: number;
  seconds: number;
  /** What pruneChunks removed and kept. */
  chunks?: ChunkGcSummary;
}

/** Checks formats and zstdLevel (index and export); returns whether a `.zst` is wanted. */
export function checkFormats(options: { formats?: readonly IndexFormat[]; zstdLevel?: number }): boolean {
  const formats = options.formats ?? DEFAULT_FORMATS;
  if (!formats.includes('xz') || formats.some((format) => format !== 'xz' && format !== 'zst')) {
    throw new TemplatesError('USAGE', `--formats must be xz or xz,zst, not ${formats.join(',')}`, {
      hint: 'xz is always written: lago reads only it',
    });
  }
  if (
    options.zstdLevel !== undefined &&
    !(Number.isInteger(options.zstdLevel) && options.zstdLevel >= 1 && options.zstdLevel <= 22)
  ) {
    throw new TemplatesError('USAGE', `zstd level must be 1 to 22, not ${options.zstdLevel}`);
  }
  return formats.includes('zst');
}

/** The repository's source: `file` rooted at `dir`, or `http` at `--base-url`. Throws USAGE for bad options. */
export function checkOptions(dir: string, options: IndexOptions): RepositorySource {
  if (!isValidName(options.name)) {
    throw new TemplatesError('USAGE', `${JSON.stringify(options.name)} is not a valid repository name`, {
      hint: 'use [A-Za-z0-9._+-], not "." or ".."',
    });
  }
  if (
    options.blockBytes !== undefined &&
    !(Number.isSafeInteger(options.blockBytes) && options.blockBytes >= 1024 * 1024)
  ) {
    throw new TemplatesError('USAGE', `block size must be at least 1 MiB, not ${options.blockBytes}`);
  }
  if (options.level !== undefined && !(Number.isInteger(options.level) && options.level >= 0 && options.level <= 9)) {
    throw new TemplatesError('USAGE', `xz level must be 0 to 9, not ${options.level}`);
  }
  checkFormats(options);
  if (options.chunkSizes) checkChunkSizes(options.chunkSizes);
  if (options.threads !== undefined && !(Number.isInteger(options.threads) && options.threads >= 0)) {
    throw new TemplatesError('USAGE', `threads must be a whole number (0: one per core), not ${options.threads}`);
  }
  for (const mirror of options.mirrors ?? []) {
    if (!/^https?:\/\/[^/]/i.test(mirror))
      throw new TemplatesError('USAGE', `--mirror must be an http(s) URL, not ${JSON.stringify(mirror)}`);
  }
  if (options.baseUrl === undefined) {
    if (options.mirrors?.length)
      throw new TemplatesError('USAGE', '--mirror needs --base-url: mirrors copy an http source', {
        hint: 'add --base-url URL',
      });
    return { type: 'file', root: dir };
  }
  let url: URL | undefined;
  try {
    url = new URL(options.baseUrl);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new TemplatesError('USAGE', `--base-url must be an http(s) URL, not ${JSON.stringify(options.baseUrl)}`);
  }
  return { type: 'http', baseurl: options.baseUrl };
}
