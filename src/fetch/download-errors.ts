// How a download's failures become typed errors: digest and size mismatches, and which pipeline stage failed first.
import { TemplatesError, abortError, asTemplatesError, isTemplatesError, storeIoError } from '../errors.js';
import { mapHttpError } from '../http/client.js';
import { formatDigest, type Digest } from '../repository/digest.js';
import { decodeFailed } from './decode.js';

/** The digest of what was downloaded is not the one the repository promised. */
export function mismatch(where: string, expected: Digest, actual: Digest, of: string): TemplatesError {
  return new TemplatesError(
    'HASH_MISMATCH',
    `${where}: ${of} hash mismatch: expected ${formatDigest(expected)}, got ${formatDigest(actual)}`,
    {
      url: where,
      expected: `${expected.algorithm}:${expected.hex}`,
      actual: `${actual.algorithm}:${actual.hex}`,
      hint: 'the download was damaged or the repository is inconsistent; nothing was stored; try again or ask the repository owner',
    },
  );
}

/** Errors that only say another stage of the pipeline failed first (a closed pipe, a destroyed stream). */
function isConsequence(error: unknown): boolean {
  const code = (error as { code?: string } | undefined)?.code;
  return (
    code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ERR_STREAM_DESTROYED' || code === 'ABORT_ERR'
  );
}

/** Waits for every stage; the first failure that is a cause rather than a consequence wins. */
export async function settle(stages: Array<Promise<unknown>>): Promise<void> {
  const failures = (await Promise.allSettled(stages)).flatMap((result) =>
    result.status === 'rejected' ? [result.reason as unknown] : [],
  );
  if (failures.length) throw failures.find((error) => !isConsequence(error)) ?? failures[0];
}

/** Tells apart where a pipeline failure came from: the store (write), the decoder, or the source. */
export function classify(
  error: unknown,
  where: string,
  signal: AbortSignal | undefined,
  tempPath: string,
): TemplatesError {
  if (signal?.aborted) return abortError(signal);
  if (isTemplatesError(error)) return error;
  const err = error as NodeJS.ErrnoException;
  if (
    err.syscall === 'write' ||
    err.syscall === 'ftruncate' ||
    err.syscall === 'read' ||
    ['ENOSPC', 'EDQUOT', 'EROFS', 'EIO', 'EFBIG'].includes(err.code ?? '')
  ) {
    return storeIoError(error, tempPath, 'cannot write');
  }
  if (/^LZMA_/.test(err.code ?? '')) return decodeFailed(error, where, signal);
  // A hashing worker that cannot load is a broken install, not the source's failure.
  if (err.code === 'MODULE_NOT_FOUND' || err.code === 'ERR_MODULE_NOT_FOUND' || err.code?.startsWith('ERR_WORKER_'))
    return asTemplatesError(error);
  return mapHttpError(error, where, signal);
}

/** How many decoded bytes an image may have: the repository's `size` exactly, or at most the configured maximum. */
export interface SizeLimit {
  bytes: number;
  declared: boolean;
}

export function sizeError(where: string, limit: SizeLimit, actual: number, atLeast: boolean): TemplatesError {
  const got = `${atLeast ? 'at least ' : ''}${actual} bytes`;
  if (limit.declared) {
    return new TemplatesError(
      'SIZE_MISMATCH',
      `${where}: the repository says ${limit.bytes} bytes but the image has ${got}`,
      {
        url: where,
        expected: String(limit.bytes),
        actual: String(actual),
        hint: 'the repository entry or the image is wrong (or hostile); nothing was stored; ask the repository owner',
      },
    );
  }
  return new TemplatesError(
    'IMAGE_TOO_LARGE',
    `${where}: the image decodes to more than ${limit.bytes} bytes; stopped`,
    {
      url: where,
      expected: `at most ${limit.bytes}`,
      hint: 'this looks like a decompression bomb; if the image is genuine, raise TEMPLATES_MAX_IMAGE_BYTES',
    },
  );
}
