// One pass from source to a verified raw temp file in the store: read, decode xz, hash, write sparse, convert.
import { open, rm, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context } from '../context.js';
import { TemplatesError, abortError, isTemplatesError, storeIoError } from '../errors.js';
import { mapHttpError } from '../providers/http-client.js';
import type { Provider } from '../providers/types.js';
import { formatDigest, sameDigest, type Digest } from '../spec/digest.js';
import { peek } from '../util/peek.js';
import { checkConvertible, convertToRaw } from './convert.js';
import { checkDecoder, decodeFailed, decodeToFd, decodingStream } from './decode.js';
import { HEAD_BYTES, detectImageFormat, isXz } from './detect.js';
import { Meter } from './meter.js';
import { openImage, readHash, type OpenedImage } from './source.js';
import { createSparseWriter } from './sparse-writer.js';

export interface DownloadPlan {
  provider: Provider;
  handle: string;
  /** Digest of the uncompressed image from the repository JSON, when it has one. */
  hash?: Digest;
  /** Digest of the `.xz` file from the repository JSON, when it has one. */
  compressedHash?: Digest;
  /** Declared format; a different detected format is an error. */
  format?: string;
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
}

function mismatch(where: string, expected: Digest, actual: Digest, of: string): TemplatesError {
  return new TemplatesError('HASH_MISMATCH', `${where}: ${of} hash mismatch: expected ${formatDigest(expected)}, got ${formatDigest(actual)}`, {
    url: where,
    expected: `${expected.algorithm}:${expected.hex}`,
    actual: `${actual.algorithm}:${actual.hex}`,
    hint: 'the download was damaged or the repository is inconsistent; nothing was stored; try again or ask the repository owner',
  });
}

/** Tells apart where a pipeline failure came from: the store (write), the decoder, or the source. */
function classify(error: unknown, where: string, signal: AbortSignal | undefined, tempPath: string): TemplatesError {
  if (signal?.aborted) return abortError(signal);
  if (isTemplatesError(error)) return error;
  const err = error as NodeJS.ErrnoException & { command?: string; exitCode?: number };
  if (err.syscall === 'write' || err.syscall === 'ftruncate' || ['ENOSPC', 'EDQUOT', 'EROFS', 'EIO', 'EFBIG'].includes(err.code ?? '')) {
    return storeIoError(error, tempPath, 'cannot write');
  }
  if (err.command !== undefined || /^LZMA_/.test(err.code ?? '')) return decodeFailed(error, where, signal);
  return mapHttpError(error, where, signal);
}

async function readHead(path: string): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, HEAD_BYTES, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Streams the source into `target`, hashing what the plan needs verified. Returns the digest computed. */
async function streamToFile(ctx: Context, image: OpenedImage, target: string, algorithm: { of: 'image' | 'compressed'; digest: Digest }, options: DownloadOptions): Promise<{ actual: Digest; compressed: boolean }> {
  const { signal } = options;
  const head = await peek(image.body, 6).catch((error: unknown) => {
    throw classify(error, image.location, signal, target);
  });
  const compressed = isXz(head);
  const decoder = compressed ? checkDecoder(await ctx.decoder()) : undefined;
  const counter = (bytes: number) => options.onBytes?.(bytes, image.size, image.location);
  const opts = signal ? { signal } : {};
  let fd;
  try {
    fd = await open(target, 'wx');
  } catch (error) {
    throw storeIoError(error, target, 'cannot create');
  }
  try {
    if (decoder && algorithm.of === 'compressed') {
      const meter = new Meter(algorithm.digest.algorithm, counter);
      await decodeToFd(decoder, [image.body, meter], fd.fd, image.location, signal);
      await fd.sync();
      return { actual: meter.digest(), compressed };
    }
    const source: Readable = image.body;
    const hasher = new Meter(algorithm.digest.algorithm, decoder ? undefined : counter);
    if (decoder) {
      await pipeline(source, new Meter(undefined, counter), decodingStream(decoder, signal), hasher, createSparseWriter(fd.fd), opts);
    } else {
      await pipeline(source, hasher, createSparseWriter(fd.fd), opts);
    }
    await fd.sync();
    return { actual: hasher.digest(), compressed };
  } catch (error) {
    throw classify(error, image.location, signal, target);
  } finally {
    await fd.close().catch(() => undefined);
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

/**
 * Downloads one version into `${tempPrefix}.image` (and `.raw` when converted). The caller removes
 * every `${tempPrefix}.*` file afterwards, whatever happened.
 */
export async function downloadImage(ctx: Context, plan: DownloadPlan, tempPrefix: string, options: DownloadOptions = {}): Promise<Downloaded> {
  const { signal } = options;
  const image = await openImage(plan.provider, plan.handle, signal);
  const downloaded = `${tempPrefix}.image`;
  let chosen: Awaited<ReturnType<typeof chooseCheck>>;
  let streamed: { actual: Digest; compressed: boolean };
  try {
    chosen = await chooseCheck(plan, image, signal);
    streamed = await streamToFile(ctx, image, downloaded, chosen.check, options);
  } finally {
    // Whatever happened (even before the pipeline started), the source's file handle or socket is released now.
    image.body.destroy();
  }
  const { check, imageHash } = chosen;
  const { actual, compressed } = streamed;
  // compressed_hash describes the file at <handle>.xz, whatever its content turned out to be.
  if (!sameDigest(check.digest, actual)) throw mismatch(image.location, check.digest, actual, check.of === 'compressed' ? 'compressed file' : 'image');

  const head = await readHead(downloaded);
  const sourceFormat = await detectImageFormat(head, image.location);
  if (plan.format && plan.format !== sourceFormat) {
    throw new TemplatesError('FORMAT_MISMATCH', `${image.location}: the repository says ${plan.format} but the image is ${sourceFormat}`, {
      url: image.location,
      expected: plan.format,
      actual: sourceFormat,
      hint: 'the repository entry is inconsistent; ask its owner',
    });
  }
  let path = downloaded;
  if (sourceFormat !== 'raw') {
    checkConvertible(sourceFormat, head, image.location);
    path = `${tempPrefix}.raw`;
    options.onConvert?.(sourceFormat);
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
    location: image.location,
    compressed,
    sourceFormat,
    verified: check,
    ...(imageHash ? { imageHash } : {}),
    size,
  };
}
