// `templates index`'s chunk pass: each raw image's `<handle>.caibx` beside it, its chunks in the directory's one chunk store.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ChunkSizes } from '../chunks/buzhash.js';
import { encodeIndex } from '../chunks/caibx.js';
import { indexChunks } from '../chunks/make-index.js';
import { outputIoError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import type { Candidate } from './candidate.js';
import { type FileStamp, type IndexedImage, sameStamp } from './state.js';
import { DECOMPRESS_ARGS, spawnFilter } from './xz.js';

/** The chunk store of a repository directory, shared by every template and version (casync's default name). */
export const CHUNK_STORE = 'default.castr';

export type IndexedChunks = NonNullable<IndexedImage['caibx']>;

const stampOf = async (path: string): Promise<FileStamp | undefined> => {
  const info = await stat(path).catch(() => undefined);
  return info ? { size: info.size, mtimeMs: info.mtimeMs } : undefined;
};

const sameSizes = (a: ChunkSizes, b: ChunkSizes) => a.min === b.min && a.avg === b.avg && a.max === b.max;

/** The recorded index, when its file is as it was written and it was cut at these sizes (the image unchanged too). */
export async function unchangedChunks(
  candidate: Candidate,
  previous: IndexedChunks | undefined,
  sizes: ChunkSizes,
): Promise<IndexedChunks | undefined> {
  if (!previous || !sameSizes(previous.sizes, sizes)) return undefined;
  const output = await stampOf(join(candidate.root, `${candidate.handle}.caibx`));
  const store = await stat(join(candidate.root, CHUNK_STORE)).catch(() => undefined);
  return sameStamp(previous.output, output) && store?.isDirectory() ? previous : undefined;
}

/**
 * Cuts the image (the plain file, or the `.xz` decoded) into chunks at `sizes`, stores each chunk the store lacks, and
 * writes `<handle>.caibx` by rename. Returns what the state records and the chunk bytes written.
 */
export async function writeChunkIndex(
  candidate: Candidate,
  image: IndexedImage,
  sizes: ChunkSizes,
  xz: string,
  signal: AbortSignal,
): Promise<{ chunks: IndexedChunks; written: number }> {
  const { root, handle } = candidate;
  const input = join(root, image.file.path);
  const store = join(root, CHUNK_STORE);
  const reading = createReadStream(input, { highWaterMark: 1024 * 1024, signal });
  let made: Awaited<ReturnType<typeof indexChunks>>;
  try {
    if (image.file.xz) {
      const decoder = spawnFilter(xz, DECOMPRESS_ARGS, input, signal);
      const feeding = pipeline(reading, decoder.stdin);
      [made] = await Promise.all([indexChunks(decoder.stdout, { sizes, store, signal }), feeding, decoder.done]);
    } else made = await indexChunks(reading, { sizes, store, signal });
  } catch (error) {
    throw isFsError(error) ? outputIoError(error, input, 'cannot read') : error;
  }
  const bytes = encodeIndex(made);
  const output = join(root, `${handle}.caibx`);
  const previous = await readFile(output).catch(() => undefined);
  if (!previous?.equals(bytes))
    await writeFileAtomic(output, bytes).catch((error: unknown) => {
      throw outputIoError(error, output, 'cannot write');
    });
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return { chunks: { output: (await stampOf(output))!, size: bytes.length, sha256, sizes }, written: made.written };
}

const isFsError = (error: unknown) => typeof (error as NodeJS.ErrnoException)?.syscall === 'string';
