// A manifest as a registry sent it (pure): its bytes checked against the digest they were asked by, and a JSON object.
import { createHash } from 'node:crypto';
import { TemplatesError } from '../errors.js';

/** Manifests and configs larger than this are refused. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface Manifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
  json: Record<string, unknown>;
}

/**
 * The manifest in `bytes` from `url` (shown in errors, without credentials): HASH_MISMATCH when `claimed` (the digest
 * asked for, or the one the registry named) is not theirs, FORMAT_UNSUPPORTED when they are not a JSON object.
 */
export function checkManifest(bytes: Buffer, url: string, claimed: string | undefined, contentType: unknown): Manifest {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  if (claimed && claimed !== digest) {
    throw new TemplatesError('HASH_MISMATCH', `${url}: the manifest's digest is ${digest}, not ${claimed}`, {
      url,
      expected: claimed,
      actual: digest,
      hint: 'the registry (or something between) serves a manifest that is not the one named; nothing was stored',
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    json = undefined;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new TemplatesError('FORMAT_UNSUPPORTED', `${url}: the manifest is not a JSON object`, { url });
  }
  const mediaType = String((json as { mediaType?: unknown }).mediaType ?? contentType ?? '');
  return { digest, mediaType, bytes, json: json as Record<string, unknown> };
}
