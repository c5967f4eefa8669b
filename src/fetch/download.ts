// One pass from source to a verified raw temp file in the store: read, decode xz, hash, write sparse, convert.
import { createReadStream } from 'node:fs';
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import type { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context } from '../context.js';
import { TemplatesError, abortError, isTemplatesError, storeIoError } from '../errors.js';
import { mapHttpError } from '../providers/http-client.js';
import type { Provider } from '../providers/types.js';
import { formatDigest, sameDigest, type Digest } from '../repository/digest.js';
import { peek } from '../util/peek.js';
import { checkSupported, convertToRaw } from './convert.js';
import { checkDecoder, decodeFailed, lzmaNativeDecoder, spawnXz, type XzProcess } from './decode.js';
import { HEAD_BYTES, detectImageFormat, isXz } from './detect.js';
import { Counter } from './counter.js';
import { FollowHasher } from './follow-hasher.js';
import { ParallelHasher } from './parallel-hasher.js';
import { dropPartial, findPartial, startPartial, type PartialDownload, type PartialFiles } from './partial.js';
import { openImage, readHash, type OpenedImage } from './source.js';
import { createSparseWriter } from './sparse-writer.js';
import { startWriteback } from './writeback.js';
import { readHead } from '../util/read-head.js';

const READ_CHUNK = 1024 * 1024;

export interface DownloadPlan {
  provider: Provider;
  handle: string;
  /** Digest of the uncompressed image from the repository JSON, when it has one. */
  hash?: Digest;
  /** Digest of the `.xz` file from the repository JSON, when it has one. */
  compressedHash?: Digest;
  /** Declared format; a different detected format is an error. */
  format?: string;
  /** Declared size of the decoded image (before conversion); a different size is an error. */
  size?: number;
}

export interface Downloaded {
  /** Verified, fsynced raw image inside the store's temp dir. */
  path: string;
  location: string;
  compressed: boolean;
  sourceFormat: string;
  /** The digest that was verified, and what it covered. */
  verified: { digest: Digest; of: 'image' | 'compressed' };
  /** The uncompressed image's digest for `<entry>.hash`, when known. */
  imageHash?: Digest;
  size: number;
}

export interface DownloadOptions {
  signal?: AbortSignal;
  /** Bytes read from the source so far, and the total when known. */
  onBytes?: (bytes: number, total: number | undefined, location: string) => void;
  /** Called before a non-raw image is converted. */
  onConvert?: (format: string) => void;
  /** Keep an interrupted download for resume, and resume a kept one (HTTP sources with a validator only). */
  resume?: ResumeOptions;
}

function mismatch(where: string, expected: Digest, actual: Digest, of: string): TemplatesError {
  return new TemplatesError('HASH_MISMATCH', `${where}: ${of} hash mismatch: expected ${formatDigest(expected)}, got ${formatDigest(actual)}`, {
    url: where,
    expected: `${expected.algorithm}:${expected.hex}`,
    actual: `${actual.algorithm}:${actual.hex}`,
    hint: 'the download was damaged or the repository is inconsistent; nothing was stored; try again or ask the repository owner',
  });
}

/** Errors that only say another stage of the pipeline failed first (a closed pipe, a destroyed stream). */
function isConsequence(error: unknown): boolean {
  const code = (error as { code?: string } | undefined)?.code;
  return code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ERR_STREAM_DESTROYED' || code === 'ABORT_ERR';
}

/** Waits for every stage; the first failure that is a cause rather than a consequence wins. */
async function settle(stages: Array<Promise<unknown>>): Promise<void> {
  const failures = (await Promise.allSettled(stages)).flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
  if (failures.length) throw failures.find((error) => !isConsequence(error)) ?? failures[0];
}

/** Tells apart where a pipeline failure came from: the store (write), the decoder, or the source. */
function classify(error: unknown, where: string, signal: AbortSignal | undefined, tempPath: string): TemplatesError {
  if (signal?.aborted) return abortError(signal);
  if (isTemplatesError(error)) return error;
  const err = error as NodeJS.ErrnoException;
  if (err.syscall === 'write' || err.syscall === 'ftruncate' || err.syscall === 'read' || ['ENOSPC', 'EDQUOT', 'EROFS', 'EIO', 'EFBIG'].includes(err.code ?? '')) {
    return storeIoError(error, tempPath, 'cannot write');
  }
  if (/^LZMA_/.test(err.code ?? '')) return decodeFailed(error, where, signal);
  return mapHttpError(error, where, signal);
}

async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeAll(handle: FileHandle, chunk: Buffer): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) offset += (await handle.write(chunk, offset, chunk.length - offset)).bytesWritten;
}

/**
 * The source file's bytes from offset 0: a kept prefix read back from disk (`replay`), then the body. With `tee`,
 * body bytes are appended to the partial file before they go on, so an interruption keeps them for the next fetch.
 */
async function* sourceBytes(body: Readable, replay: { path: string; length: number } | undefined, tee: FileHandle | undefined): AsyncGenerator<Buffer> {
  if (replay) yield* createReadStream(replay.path, { start: 0, end: replay.length - 1, highWaterMark: READ_CHUNK });
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (tee) await writeAll(tee, chunk);
    yield chunk;
  }
}

interface Check {
  of: 'image' | 'compressed';
  digest: Digest;
}

interface Streamed {
  actual: Digest;
  compressed: boolean;
  /** The file now holding the downloaded (decoded) image. */
  path: string;
  bytes: number;
}

/** Resume bookkeeping for one download: the entry's partial files and how old a kept one may be. */
export interface ResumeOptions {
  files: PartialFiles;
  maxAgeMs: number;
  now: number;
}

/** How many decoded bytes an image may have: the repository's `size` exactly, or at most the configured maximum. */
interface SizeLimit {
  bytes: number;
  declared: boolean;
}

function sizeError(where: string, limit: SizeLimit, actual: number, atLeast: boolean): TemplatesError {
  const got = `${atLeast ? 'at least ' : ''}${actual} bytes`;
  if (limit.declared) {
    return new TemplatesError('SIZE_MISMATCH', `${where}: the repository says ${limit.bytes} bytes but the image has ${got}`, {
      url: where,
      expected: String(limit.bytes),
      actual: String(actual),
      hint: 'the repository entry or the image is wrong (or hostile); nothing was stored; ask the repository owner',
    });
  }
  return new TemplatesError('IMAGE_TOO_LARGE', `${where}: the image decodes to more than ${limit.bytes} bytes; stopped`, {
    url: where,
    expected: `at most ${limit.bytes}`,
    hint: 'this looks like a decompression bomb; if the image is genuine, raise TEMPLATES_MAX_IMAGE_BYTES',
  });
}

/** Checks every 250 ms how far xz has written; past the limit it kills xz and remembers why. */
function watchXz(xz: XzProcess, limit: SizeLimit, where: string): { stop(): void; error(): TemplatesError | undefined } {
  let error: TemplatesError | undefined;
  const timer = setInterval(() => {
    void xz.written().then((bytes) => {
      if (bytes !== undefined && bytes > limit.bytes && !error) {
        error = sizeError(where, limit, bytes, true);
        xz.kill();
      }
    });
  }, 250);
  timer.unref();
  return { stop: () => clearInterval(timer), error: () => error };
}

/** Hashes either the bytes streaming through (a Transform) or a file right behind its writer (a worker reading it). */
type Hashing = { kind: 'stream'; hasher: ParallelHasher } | { kind: 'file'; hasher: FollowHasher; path: string };

/**
 * Streams the source into a temp file in one pass, hashing what `check` covers. xz data goes through `xz -T0`,
 * which writes the output file itself (sparse). The digest comes from a worker thread: it reads the output (or,
 * when the compressed bytes are what is verified, the kept partial copy of them) from the page cache right
 * behind the writer, so no byte is copied through this thread twice and no pass waits for another. With
 * `targets.partial`, the source's bytes are kept for resume (the compressed copy, or the output itself when
 * uncompressed); `replay` is a kept prefix to continue from.
 */
async function streamToFile(ctx: Context, image: OpenedImage, targets: { output: string; partial?: PartialFiles }, check: Check, replay: PartialDownload | undefined, limit: SizeLimit, options: DownloadOptions): Promise<Streamed> {
  const { signal } = options;
  const where = image.location;
  const resumed = replay !== undefined;
  const head = resumed ? await readHead(replay.path, 6) : await peek(image.body, 6).catch((error: unknown) => {
    throw classify(error, where, signal, targets.output);
  });
  const compressed = isXz(head);
  const decoder = compressed ? checkDecoder(await ctx.decoder()) : undefined;
  const counter = (bytes: number) => options.onBytes?.(bytes, image.size, where);
  const opts = signal ? { signal } : {};
  const algorithm = check.digest.algorithm;
  // Uncompressed and resumable: the partial file is the output itself. Compressed: the partial keeps the .xz bytes.
  const output = !compressed && targets.partial ? targets.partial.path : targets.output;
  const handles: FileHandle[] = [];
  let hashing: Hashing | undefined;
  let stopWriteback: (() => Promise<void>) | undefined;
  let watch: ReturnType<typeof watchXz> | undefined;
  const tooMany = (bytes: number) => sizeError(where, limit, bytes, true);
  const openFile = async (path: string, flags: string) => {
    const handle = await open(path, flags).catch((error: unknown) => {
      throw storeIoError(error, path, 'cannot create');
    });
    handles.push(handle);
    return handle;
  };
  try {
    const fd = await openFile(output, resumed && !compressed ? 'r+' : 'w');
    stopWriteback = startWriteback(fd);
    if (!decoder) {
      // Uncompressed: the body continues the kept prefix in place; the hasher reads the file from its start.
      const arrived = new Counter(counter, { bytes: limit.bytes, tooMany });
      arrived.bytes = resumed ? replay.offset : 0;
      hashing = { kind: 'file', hasher: new FollowHasher(output, algorithm), path: output };
      await pipeline(image.body, arrived, createSparseWriter(fd.fd, arrived.bytes), opts);
      await fd.sync();
      if (limit.declared && arrived.bytes !== limit.bytes) throw sizeError(where, limit, arrived.bytes, false);
      return { actual: await hashing.hasher.finish(arrived.bytes), compressed, path: output, bytes: arrived.bytes };
    }
    // Compressed: the kept prefix is replayed from the partial file, so every byte flows through the decoder again.
    const tee = targets.partial ? await openFile(targets.partial.path, resumed ? 'a' : 'w') : undefined;
    const source = sourceBytes(image.body, resumed ? { path: replay.path, length: replay.offset } : undefined, tee);
    const arrived = new Counter(counter);
    const fast = check.of === 'compressed';
    // Follow a file when one holds the verified bytes; otherwise hash them as they stream.
    const followed = fast ? targets.partial?.path : decoder.kind === 'xz' ? output : undefined;
    hashing = followed ? { kind: 'file', hasher: new FollowHasher(followed, algorithm), path: followed } : { kind: 'stream', hasher: new ParallelHasher(algorithm) };
    const streamed = hashing.kind === 'stream' ? hashing.hasher : undefined;
    const before: Transform[] = fast && streamed ? [arrived, streamed] : [arrived];
    const after: Transform[] = !fast && streamed ? [streamed] : [];
    if (decoder.kind === 'lzma-native') {
      const decoded = new Counter(undefined, { bytes: limit.bytes, tooMany });
      await pipeline([source, ...before, lzmaNativeDecoder(), decoded, ...after, createSparseWriter(fd.fd)] as unknown as [Readable, Writable], opts);
    } else {
      const xz = spawnXz(decoder.path, fd.fd, where, signal);
      watch = watchXz(xz, limit, where);
      await settle([pipeline([source, ...before, xz.stdin] as unknown as [Readable, Writable], opts), xz.done]);
      watch.stop();
    }
    await fd.sync();
    // The exact check: the watch only samples, and xz may end in a hole that it seeks over.
    const decodedSize = (await fd.stat()).size;
    if (decodedSize > limit.bytes || (limit.declared && decodedSize !== limit.bytes)) throw sizeError(where, limit, decodedSize, false);
    const actual = hashing.kind === 'stream' ? await hashing.hasher.digest() : await hashing.hasher.finish(hashing.path === output ? decodedSize : arrived.bytes);
    return { actual, compressed, path: output, bytes: arrived.bytes };
  } catch (error) {
    throw watch?.error() ?? classify(error, where, signal, output);
  } finally {
    watch?.stop();
    await stopWriteback?.();
    await Promise.all([hashing?.hasher.close(), ...handles.map((handle) => handle.close().catch(() => undefined))]);
  }
}

/**
 * What to verify: the `.xz` file's digest when the repository gives compressed_hash (the fast path),
 * else the image's digest from the repository JSON or the `.hash` file; no digest at all is refused.
 */
async function chooseCheck(plan: DownloadPlan, image: OpenedImage, signal: AbortSignal | undefined) {
  const fast = image.suffix === '.xz' && plan.compressedHash !== undefined;
  const imageHash = plan.hash ?? (await readHash(plan.provider, plan.handle, signal).catch((error: unknown) => {
    if (fast && isTemplatesError(error) && error.code !== 'ABORTED') return undefined;
    throw error;
  }));
  if (fast) return { check: { of: 'compressed' as const, digest: plan.compressedHash! }, imageHash };
  if (imageHash) return { check: { of: 'image' as const, digest: imageHash }, imageHash };
  throw new TemplatesError('HASH_MISSING', `no hash for ${image.location}: the repository gives none and ${plan.provider.locate(plan.handle, '.hash')} does not exist`, {
    url: image.location,
    hint: 'refusing to store an unverified image; ask the repository owner to publish a .hash file',
  });
}

/** Failures after which the bytes received so far are still good: kept for the next fetch to resume. */
const RESUMABLE_FAILURES = new Set(['SOURCE_UNREACHABLE', 'ABORTED', 'LOCK_TIMEOUT']);

/**
 * Downloads one version into a temp file under `tempPrefix` (or the entry's partial file) and returns the verified,
 * fsynced raw image. The caller removes every `${tempPrefix}.*` file afterwards, whatever happened; the partial
 * file is kept only when the download was interrupted, and removed in every other case.
 */
export async function downloadImage(ctx: Context, plan: DownloadPlan, tempPrefix: string, options: DownloadOptions = {}): Promise<Downloaded> {
  const { signal, resume } = options;
  const kept = resume ? await findPartial(resume.files, resume.maxAgeMs, resume.now) : undefined;
  let keepPartial = false;
  try {
    const image = await openImage(plan.provider, plan.handle, signal, kept);
    let chosen: Awaited<ReturnType<typeof chooseCheck>>;
    let streamed: Streamed;
    try {
      const replay = kept && image.offset === kept.offset && image.location === kept.url ? kept : undefined;
      if (kept && !replay) await dropPartial(resume!.files);
      const partial = resume && image.validator !== undefined ? resume.files : undefined;
      if (partial && !replay) await startPartial(partial, image.location, image.validator!);
      chosen = await chooseCheck(plan, image, signal);
      try {
        const limit = plan.size !== undefined ? { bytes: plan.size, declared: true } : { bytes: ctx.maxImageBytes, declared: false };
        streamed = await streamToFile(ctx, image, { output: `${tempPrefix}.image`, ...(partial ? { partial } : {}) }, chosen.check, replay, limit, options);
      } catch (error) {
        keepPartial = partial !== undefined && isTemplatesError(error) && RESUMABLE_FAILURES.has(error.code);
        throw error;
      }
      if (image.size !== undefined && streamed.bytes !== image.size) {
        throw new TemplatesError('SOURCE_UNREACHABLE', `${image.location}: received ${streamed.bytes} bytes of ${image.size}`, {
          url: image.location,
          hint: 'the connection ended early or the server sent a wrong length; run the command again',
        });
      }
    } finally {
      // Whatever happened (even before the pipeline started), the source's file handle or socket is released now.
      image.body.destroy();
    }
    return await finishImage(ctx, plan, image.location, chosen, streamed, tempPrefix, options);
  } finally {
    // A completed (or failed for good) download leaves no partial behind; an uncompressed one was moved on already.
    if (resume && !keepPartial) await dropPartial(resume.files);
  }
}

/** Verifies the streamed file, checks its format, and converts it to raw when it is not. */
async function finishImage(ctx: Context, plan: DownloadPlan, location: string, chosen: Awaited<ReturnType<typeof chooseCheck>>, streamed: Streamed, tempPrefix: string, options: DownloadOptions): Promise<Downloaded> {
  const { signal, onConvert } = options;
  const { check, imageHash } = chosen;
  const { actual, compressed } = streamed;
  // compressed_hash describes the file at <handle>.xz, whatever its content turned out to be.
  if (!sameDigest(check.digest, actual)) throw mismatch(location, check.digest, actual, check.of === 'compressed' ? 'compressed file' : 'image');
  // The verified file moves to this attempt's own name, so the partial file can be removed whatever comes next.
  const downloaded = `${tempPrefix}.image`;
  if (streamed.path !== downloaded) await rename(streamed.path, downloaded);

  const head = await readHead(downloaded, HEAD_BYTES);
  const sourceFormat = await detectImageFormat(head, location);
  if (plan.format && plan.format !== sourceFormat) {
    throw new TemplatesError('FORMAT_MISMATCH', `${location}: the repository says ${plan.format} but the image is ${sourceFormat}`, {
      url: location,
      expected: plan.format,
      actual: sourceFormat,
      hint: 'the repository entry is inconsistent; ask its owner',
    });
  }
  checkSupported(sourceFormat, head, (await stat(downloaded)).size, location);
  let path = downloaded;
  if (sourceFormat !== 'raw') {
    path = `${tempPrefix}.raw`;
    onConvert?.(sourceFormat);
    await convertToRaw(ctx.qemuImg, sourceFormat, downloaded, path, signal);
    await rm(downloaded, { force: true });
    await fsyncFile(path).catch((error: unknown) => {
      throw storeIoError(error, path, 'cannot sync');
    });
  }
  if (signal?.aborted) throw abortError(signal);
  const { size } = await stat(path);
  return {
    path,
    location,
    compressed,
    sourceFormat,
    verified: check,
    ...(imageHash ? { imageHash } : {}),
    size,
  };
}
