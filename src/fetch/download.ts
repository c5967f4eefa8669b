// One version from its source to a verified raw temp file in the store: choose the file and digest, stream, verify, convert.
import { rename, rm, stat } from 'node:fs/promises';
import type { Context } from '../context.js';
import { TemplatesError, abortError, isTemplatesError, storeIoError } from '../errors.js';
import type { Provider } from '../providers/types.js';
import { sameDigest, type Digest } from '../repository/digest.js';
import { fsyncPath } from '../util/atomic-write.js';
import { readHead } from '../util/read-head.js';
import { checkSupported, convertToRaw } from './convert.js';
import { HEAD_BYTES, detectImageFormat } from './detect.js';
import type { Compression } from './decode.js';
import type { DeltaReport } from './delta-plan.js';
import { mismatch } from './download-errors.js';
import { dropPartial, findPartial, startPartial, type PartialFiles } from './partial.js';
import { IMAGE_SUFFIXES, openImage, readHash, type ImageSuffix, type OpenedImage } from './source.js';
import type { StreamOptions, Verified } from './stream-job.js';
import { type Streamed, streamToFile } from './stream-to-file.js';

export interface DownloadPlan {
  provider: Provider;
  handle: string;
  /** Digest of the uncompressed image from the repository JSON, when it has one. */
  hash?: Digest;
  /** Digest of the `.xz` file from the repository JSON, when it has one. */
  compressedHash?: Digest;
  /** The `.zst` the repository lists (digest and size): tried first when the zstd command exists. */
  zst?: { digest: Digest; size?: number };
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
  /** The digest that was verified, and what it covered: the image, the `.xz` (compressed) or the `.zst`. */
  verified: { digest: Digest; of: Verified };
  /** The uncompressed image's digest for `<entry>.hash`, when known. */
  imageHash?: Digest;
  /** The verified source `.xz` or `.zst` beside it (keepCompressed), inside the store's temp dir. */
  compressedFile?: string;
  /** What compressedFile is. */
  compression?: Compression;
  size: number;
  /** When it was assembled from stored images and fetched chunks: what that moved. */
  delta?: DeltaReport;
  /** A delta fetch's chunk index, kept beside the entry once it is published. */
  chunkIndex?: Buffer;
}

/** Resume bookkeeping for one download: the entry's partial files and how old a kept one may be. */
interface ResumeOptions {
  files: PartialFiles;
  maxAgeMs: number;
  now: number;
}

export interface DownloadOptions extends StreamOptions {
  /** Called before a non-raw image is converted. */
  onConvert?: (format: string) => void;
  /** Keep an interrupted download for resume, and resume a kept one (HTTP sources with a validator only). */
  resume?: ResumeOptions;
  /** Keep the source's compressed bytes too (Downloaded.compressedFile), when the source served xz or zstd. */
  keepCompressed?: boolean;
  /** Awaited once the image is open and before any of its bytes is read: the caller's own requests, run alongside. */
  ready?: Promise<unknown>;
  /**
   * Asked once the image is open, after `ready`, before any of its bytes is read: `bytes` still to come (undefined when
   * the source does not say) and whether they are compressed. Throws to refuse the download (no room for it).
   */
  admit?: (image: { bytes: number | undefined; compressed: boolean }) => Promise<void>;
}

/**
 * What to verify: the `.zst` file's digest when that is what was opened, the `.xz` file's when the repository gives
 * compressed_hash (the fast paths), else the image's digest from the repository JSON or the `.hash` file; no
 * digest at all is refused.
 */
async function chooseCheck(plan: DownloadPlan, image: OpenedImage, signal: AbortSignal | undefined) {
  const zst = image.suffix === '.zst' ? plan.zst : undefined;
  const fast = zst !== undefined || (image.suffix === '.xz' && plan.compressedHash !== undefined);
  const asked: Promise<Digest | undefined> = plan.hash
    ? Promise.resolve(plan.hash)
    : readHash(plan.provider, plan.handle, signal).catch((error: unknown) => {
        if (fast && isTemplatesError(error) && error.code !== 'ABORTED') return undefined;
        throw error;
      });
  // On the fast paths the image's digest is only recorded: it is awaited once the bytes are in, not before they flow.
  if (fast) {
    asked.catch(() => undefined);
    return {
      check: zst
        ? { of: 'zst' as const, digest: zst.digest }
        : { of: 'compressed' as const, digest: plan.compressedHash! },
      imageHash: asked,
    };
  }
  const imageHash = await asked;
  if (imageHash) return { check: { of: 'image' as const, digest: imageHash }, imageHash: asked };
  throw new TemplatesError(
    'HASH_MISSING',
    `no hash for ${image.location}: the repository gives none and ${plan.provider.locate(plan.handle, '.hash')} does not exist`,
    {
      url: image.location,
      hint: 'refusing to store an unverified image; ask the repository owner to publish a .hash file',
    },
  );
}

/** Failures after which the bytes received so far are still good: kept for the next fetch to resume. */
const RESUMABLE_FAILURES = new Set(['SOURCE_UNREACHABLE', 'ABORTED', 'LOCK_TIMEOUT']);

/**
 * Downloads one version into a temp file under `tempPrefix` (or the entry's partial file) and returns the verified,
 * fsynced raw image. The caller removes every `${tempPrefix}.*` file afterwards, whatever happened; the partial
 * file is kept only when the download was interrupted, and removed in every other case.
 */
export async function downloadImage(
  ctx: Context,
  plan: DownloadPlan,
  tempPrefix: string,
  options: DownloadOptions = {},
): Promise<Downloaded> {
  const { signal, resume } = options;
  const kept = resume ? await findPartial(resume.files, resume.maxAgeMs, resume.now) : undefined;
  let keepPartial = false;
  try {
    const suffixes: readonly ImageSuffix[] =
      plan.zst && (await ctx.zstd()) ? ['.zst', ...IMAGE_SUFFIXES] : IMAGE_SUFFIXES;
    const image = await openImage(plan.provider, plan.handle, signal, kept, suffixes);
    let chosen: Awaited<ReturnType<typeof chooseCheck>>;
    let streamed: Streamed;
    try {
      await options.ready;
      await options.admit?.({
        bytes: image.size === undefined ? undefined : image.size - image.offset,
        compressed: image.suffix !== '',
      });
      const replay = kept && image.offset === kept.offset && image.location === kept.url ? kept : undefined;
      if (kept && !replay) await dropPartial(resume!.files);
      const partial = resume && image.validator !== undefined ? resume.files : undefined;
      if (partial && !replay) await startPartial(partial, image.location, image.validator!);
      // The .hash is asked for once the image answered, not alongside: it must describe what this server sends
      // for it, which a cache host decides only then (a pulled qcow2 is sent converted, with the raw image's digest).
      chosen = await chooseCheck(plan, image, signal);
      try {
        const limit =
          plan.size !== undefined
            ? { bytes: plan.size, declared: true }
            : { bytes: ctx.maxImageBytes, declared: false };
        const keep = options.keepCompressed ? { keep: `${tempPrefix}.compressed` } : {};
        streamed = await streamToFile(
          ctx,
          image,
          { output: `${tempPrefix}.image`, ...(partial ? { partial } : {}), ...keep },
          chosen.check,
          replay,
          limit,
          options,
        );
      } catch (error) {
        keepPartial = partial !== undefined && isTemplatesError(error) && RESUMABLE_FAILURES.has(error.code);
        throw error;
      }
      if (image.size !== undefined && streamed.bytes !== image.size) {
        throw new TemplatesError(
          'SOURCE_UNREACHABLE',
          `${image.location}: received ${streamed.bytes} bytes of ${image.size}`,
          {
            url: image.location,
            hint: 'the connection ended early or the server sent a wrong length; run the command again',
          },
        );
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
async function finishImage(
  ctx: Context,
  plan: DownloadPlan,
  location: string,
  chosen: Awaited<ReturnType<typeof chooseCheck>>,
  streamed: Streamed,
  tempPrefix: string,
  options: DownloadOptions,
): Promise<Downloaded> {
  const { signal, onConvert } = options;
  const { check } = chosen;
  const { actual, compressed } = streamed;
  // compressed_hash describes the file at <handle>.xz, whatever its content turned out to be.
  if (!sameDigest(check.digest, actual))
    throw mismatch(location, check.digest, actual, check.of === 'image' ? 'image' : 'compressed file');
  // The verified file moves to this attempt's own name, so the partial file can be removed whatever comes next.
  const downloaded = `${tempPrefix}.image`;
  if (streamed.path !== downloaded) await rename(streamed.path, downloaded);
  // The verified source .xz or .zst, kept for serving: it was decoded into the verified image (or is what was verified).
  const compression = streamed.compression;
  const keptFile =
    options.keepCompressed && streamed.compressedPath && compression ? `${tempPrefix}.${compression}` : undefined;
  if (keptFile && streamed.compressedPath !== keptFile) await rename(streamed.compressedPath!, keptFile);

  const head = await readHead(downloaded, HEAD_BYTES);
  const sourceFormat = detectImageFormat(head, location);
  if (plan.format && plan.format !== sourceFormat) {
    throw new TemplatesError(
      'FORMAT_MISMATCH',
      `${location}: the repository says ${plan.format} but the image is ${sourceFormat}`,
      {
        url: location,
        expected: plan.format,
        actual: sourceFormat,
        hint: 'the repository entry is inconsistent; ask its owner',
      },
    );
  }
  checkSupported(sourceFormat, head, (await stat(downloaded)).size, location);
  let path = downloaded;
  if (sourceFormat !== 'raw') {
    path = `${tempPrefix}.raw`;
    onConvert?.(sourceFormat);
    await convertToRaw(ctx.qemuImg, sourceFormat, downloaded, path, signal);
    await rm(downloaded, { force: true });
    await fsyncPath(path).catch((error: unknown) => {
      throw storeIoError(error, path, 'cannot sync');
    });
  }
  if (signal?.aborted) throw abortError(signal);
  const { size } = await stat(path);
  const imageHash = await chosen.imageHash;
  return {
    path,
    location,
    compressed,
    sourceFormat,
    verified: check,
    ...(imageHash ? { imageHash } : {}),
    ...(keptFile ? { compressedFile: keptFile, compression } : {}),
    size,
  };
}
