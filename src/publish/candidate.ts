// One image of a directory being indexed: its metadata and filters, whether it changed, packing it, and its sidecars.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { TemplatesError, isTemplatesError, outputIoError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import type { IndexOptions, IndexSummary } from './index-options.js';
import { packImage } from './pack.js';
import type { IndexedStatus } from './progress.js';
import type { Recognised } from './recognise.js';
import { sameStamp, type FileStamp, type IndexedImage } from './state.js';
import { DEFAULT_ZSTD_LEVEL, compressOptions } from './xz.js';

/** Metadata keys index writes (everything else in `<handle>.metadata` is kept as it was). */
const DERIVED_KEYS = ['size', 'format', 'sha256', 'compressed_size', 'timestamp'] as const;

async function stampOf(path: string): Promise<FileStamp | undefined> {
  try {
    const info = await stat(path);
    return { size: info.size, mtimeMs: info.mtimeMs };
  } catch {
    return undefined;
  }
}

async function readText(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}

/** Writes `text` atomically unless the file already holds exactly it. Returns whether it wrote. */
export async function writeIfChanged(path: string, text: string): Promise<boolean> {
  if ((await readText(path)) === text) return false;
  await writeFileAtomic(path, text).catch((error: unknown) => {
    throw outputIoError(error, path, 'cannot write');
  });
  return true;
}

export async function readMetadataObject(path: string): Promise<Record<string, unknown> | TemplatesError> {
  const text = await readText(path);
  if (text === undefined) return {};
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  return new TemplatesError('METADATA_INVALID', `${path}: not a JSON object`, {
    path,
    hint: 'fix or remove the metadata file',
  });
}

/** Why the metadata filters leave an image out, or undefined when it is selected. */
export function filteredOut(metadata: Record<string, unknown>, options: IndexOptions): string | undefined {
  const missing = (options.requireMetadata ?? []).filter((key) => !(key in metadata));
  if (missing.length) return `metadata has no ${missing.map((key) => JSON.stringify(key)).join(', ')}`;
  if (options.arch !== undefined && metadata.arch !== options.arch)
    return `metadata arch is ${JSON.stringify(metadata.arch ?? null)}, not ${JSON.stringify(options.arch)}`;
  return undefined;
}

/** Timestamp from metadata, unless the metadata's value is the mtime this tool put there itself last time. */
function chooseTimestamp(
  metadata: Record<string, unknown>,
  previous: IndexedImage | undefined,
  mtimeMs: number,
): Pick<IndexedImage, 'timestamp' | 'timestampFrom'> {
  const given = metadata.timestamp;
  const ours = previous?.timestampFrom === 'mtime' && given === previous.timestamp;
  if (typeof given === 'number' && Number.isFinite(given) && !ours)
    return { timestamp: given, timestampFrom: 'metadata' };
  return { timestamp: Math.floor(mtimeMs / 1000), timestampFrom: 'mtime' };
}

export interface Candidate {
  /** The directory being indexed. */
  root: string;
  rel: string;
  handle: string;
  abs: string;
  metadata: Record<string, unknown>;
}

/**
 * The recorded facts, when the image and its `.xz` (and `.zst`, when one is wanted) are unchanged (size, mtime) and
 * `.hash` still holds the recorded SHA-1; a `.zst` recorded but no longer wanted is left out of them.
 */
export async function unchanged(
  candidate: Candidate,
  previous: IndexedImage | undefined,
  wantZst: boolean,
): Promise<{ image: IndexedImage; status: IndexedStatus } | undefined> {
  const { root, rel, handle, abs, metadata } = candidate;
  if (!previous || previous.file.path !== rel) return undefined;
  const fileStamp = await stampOf(abs);
  if (
    !fileStamp ||
    !sameStamp(previous.file, fileStamp) ||
    !sameStamp(previous.output, await stampOf(join(root, `${handle}.xz`)))
  )
    return undefined;
  if (wantZst && !sameStamp(previous.zst?.output, await stampOf(join(root, `${handle}.zst`)))) return undefined;
  if ((await readText(join(root, `${handle}.hash`))) !== previous.sha1) return undefined;
  const { zst: _unwanted, ...rest } = previous;
  return {
    image: { ...(wantZst ? previous : rest), ...chooseTimestamp(metadata, previous, fileStamp.mtimeMs) },
    status: 'unchanged',
  };
}

/** One pass over a recognised image: writes its multi-block `.xz` (or checks the one it is) and learns its digests. */
export async function packCandidate(
  candidate: Candidate,
  recognised: Extract<Recognised, { kind: 'image' }>,
  previous: IndexedImage | undefined,
  xz: string,
  zstd: string | undefined,
  options: IndexOptions,
  signal: AbortSignal,
  summary: IndexSummary,
): Promise<{ image: IndexedImage; status: IndexedStatus } | undefined> {
  const { root, rel, handle, abs, metadata } = candidate;
  const outputPath = join(root, `${handle}.xz`);
  const before = await stampOf(abs);
  if (!before) return undefined;
  const compression = compressOptions(options);
  const { blockBytes } = compression;
  // An xz that decodes on several threads (or is a single block anyway) is served as it is.
  const fit =
    recognised.xz !== undefined &&
    (recognised.xz.blocks > 1 ? recognised.xz.sizesInHeaders : recognised.size <= blockBytes);
  const compress = !(outputPath === abs && fit);
  try {
    const packed = await packImage({
      input: { path: abs, xz: recognised.xz !== undefined },
      output: outputPath,
      compress,
      xz,
      compression,
      signal,
      onBytes: (bytes) => options.onProgress?.({ ref: handle, phase: 'compress', bytes, total: recognised.size }),
      ...(zstd
        ? { zst: { output: join(root, `${handle}.zst`), zstd, level: options.zstdLevel ?? DEFAULT_ZSTD_LEVEL } }
        : {}),
    });
    summary.bytesIn += packed.size;
    if (compress) summary.bytesOut += packed.compressedSize;
    summary.bytesOut += packed.zst?.size ?? 0;
    // Stamps are taken after the pass: an in-place re-compression kept the mtime but changed the size.
    const image: IndexedImage = {
      file: { path: rel, xz: recognised.xz !== undefined, ...(await stampOf(abs))! },
      output: (await stampOf(outputPath))!,
      size: packed.size,
      format: recognised.format,
      sha1: packed.sha1,
      sha256: packed.sha256,
      compressedSize: packed.compressedSize,
      compressedSha256: packed.compressedSha256,
      ...(packed.zst ? { zst: { output: (await stampOf(join(root, `${handle}.zst`)))!, ...packed.zst } } : {}),
      ...chooseTimestamp(metadata, previous, before.mtimeMs),
    };
    return { image, status: compress ? 'compressed' : 'verified' };
  } catch (error) {
    if (
      !isTemplatesError(error) ||
      error.code === 'ABORTED' ||
      error.code === 'OUTPUT_IO' ||
      error.code === 'TOOL_MISSING'
    )
      throw error;
    summary.problems.push({ path: rel, code: error.code, message: error.message });
    return undefined;
  }
}

/** `<handle>.hash` (SHA-1 hex, no newline, as lago reads it) and `<handle>.metadata` (kept keys plus ours). */
export async function writeSidecars(candidate: Candidate, image: IndexedImage): Promise<void> {
  const base = join(candidate.root, candidate.handle);
  await writeIfChanged(`${base}.hash`, image.sha1);
  const metadata: Record<string, unknown> = { ...candidate.metadata };
  const derived = {
    size: image.size,
    format: image.format,
    sha256: image.sha256,
    compressed_size: image.compressedSize,
    timestamp: image.timestamp,
  };
  for (const key of DERIVED_KEYS) metadata[key] = derived[key];
  await writeIfChanged(`${base}.metadata`, `${JSON.stringify(metadata, null, 2)}\n`);
}
