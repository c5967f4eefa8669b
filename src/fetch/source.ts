// The files of one version at its source: the image (`.zst` when listed, `.xz`, then plain) and its `.hash`/`.metadata` sidecars.
import { TemplatesError, abortError, isTemplatesError } from '../errors.js';
import { mapHttpError } from '../http/client.js';
import type { OpenedFile, Provider } from '../providers/types.js';
import { parseHashFile, type Digest } from '../repository/digest.js';
import { TooLargeError, readLimited } from '../util/read-limited.js';

/** Candidate suffixes in the order lago tried them; fall back only when the first is absent. */
export const IMAGE_SUFFIXES = ['.xz', ''] as const;

const MAX_HASH_BYTES = 64 * 1024;
const MAX_METADATA_BYTES = 1024 * 1024;

/** The image's suffixes to try, in order: a `.zst` only when the repository lists it (no probing). */
export type ImageSuffix = '.zst' | (typeof IMAGE_SUFFIXES)[number];

export interface OpenedImage extends OpenedFile {
  suffix: ImageSuffix;
}

/** Opens the image, the first of `suffixes` that exists; `resume` is asked for only from the URL its bytes came from. */
export async function openImage(
  provider: Provider,
  handle: string,
  signal?: AbortSignal,
  resume?: { url: string; offset: number; validator: string },
  suffixes: readonly ImageSuffix[] = IMAGE_SUFFIXES,
): Promise<OpenedImage> {
  for (const suffix of suffixes) {
    const from =
      resume && provider.locate(handle, suffix) === resume.url
        ? { resume: { offset: resume.offset, validator: resume.validator } }
        : {};
    const file = await provider.open(handle, suffix, { ...(signal ? { signal } : {}), ...from });
    if (file) return { ...file, suffix };
  }
  const tried = suffixes.map((suffix) => provider.locate(handle, suffix));
  throw new TemplatesError('IMAGE_NOT_FOUND', `image not found at ${tried.join(' or ')}`, {
    url: tried[tried.length - 1]!,
    hint: 'the repository lists a version its source does not have; ask the repository owner',
  });
}

/** Reads `<handle>.xz.<kind>`, else `<handle>.<kind>`; null when neither exists. */
async function readSidecar(
  provider: Provider,
  handle: string,
  kind: string,
  limit: number,
  signal?: AbortSignal,
): Promise<{ data: Buffer; location: string } | null> {
  for (const suffix of IMAGE_SUFFIXES) {
    const file = await provider.open(handle, `${suffix}.${kind}`, signal ? { signal } : {});
    if (!file) continue;
    try {
      return { data: await readLimited(file.body, limit, signal), location: file.location };
    } catch (error) {
      if (signal?.aborted) throw abortError(signal);
      if (error instanceof TooLargeError) {
        throw new TemplatesError(
          kind === 'hash' ? 'HASH_INVALID' : 'METADATA_INVALID',
          `${file.location}: larger than ${limit} bytes`,
          {
            url: file.location,
            hint: 'the sidecar file is not what it should be; ask the repository owner',
          },
        );
      }
      throw isTemplatesError(error) ? error : mapHttpError(error, file.location, signal);
    }
  }
  return null;
}

export async function readHash(provider: Provider, handle: string, signal?: AbortSignal): Promise<Digest | undefined> {
  const file = await readSidecar(provider, handle, 'hash', MAX_HASH_BYTES, signal);
  return file ? parseHashFile(file.data.toString('utf8'), file.location) : undefined;
}

/** The metadata JSON object (re-serialised), or `{}` when the source has none. */
export async function readMetadata(
  provider: Provider,
  handle: string,
  signal?: AbortSignal,
): Promise<Record<string, unknown>> {
  const file = await readSidecar(provider, handle, 'metadata', MAX_METADATA_BYTES, signal);
  return file ? parseMetadata(file.data, file.location) : {};
}

/** A `.metadata` file's bytes as the JSON object they must be; METADATA_INVALID otherwise. */
export function parseMetadata(data: Buffer, location: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(data.toString('utf8'));
  } catch (error) {
    value = error;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Error) {
    throw new TemplatesError('METADATA_INVALID', `${location}: metadata is not a JSON object`, {
      url: location,
      hint: 'the metadata file is broken; ask the repository owner',
    });
  }
  return value as Record<string, unknown>;
}
