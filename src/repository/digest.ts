// Digests: parse every hash notation lago repositories use, and format one the way lago stored it.
import { TemplatesError } from '../errors.js';

export type HashAlgorithm = 'sha1' | 'sha256' | 'sha512';

export interface Digest {
  algorithm: HashAlgorithm;
  hex: string;
}

const HEX_LENGTH: Record<HashAlgorithm, number> = { sha1: 40, sha256: 64, sha512: 128 };
const BY_LENGTH = new Map<number, HashAlgorithm>([
  [40, 'sha1'],
  [64, 'sha256'],
  [128, 'sha512'],
]);

function fromParts(algorithm: string | undefined, hex: string): Digest | undefined {
  const lowered = hex.toLowerCase();
  if (!/^[0-9a-f]+$/.test(lowered)) return undefined;
  if (algorithm === undefined) {
    const byLength = BY_LENGTH.get(lowered.length);
    return byLength ? { algorithm: byLength, hex: lowered } : undefined;
  }
  const algo = algorithm.toLowerCase().replace('-', '') as HashAlgorithm;
  if (!(algo in HEX_LENGTH) || HEX_LENGTH[algo] !== lowered.length) return undefined;
  return { algorithm: algo, hex: lowered };
}

/**
 * Parses a digest written as `algo:hex` or as bare hex whose length names the algorithm.
 * Returns undefined when the text is not a digest.
 */
export function parseDigest(text: string): Digest | undefined {
  const trimmed = text.trim();
  const colon = trimmed.indexOf(':');
  return colon < 0 ? fromParts(undefined, trimmed) : fromParts(trimmed.slice(0, colon), trimmed.slice(colon + 1));
}

/**
 * Parses the contents of a `.hash` file: bare hex, `algo:hex`, a `sha1sum` line (`<hex>  <name>`)
 * or a BSD tag line (`SHA256 (name) = <hex>`), with any surrounding white space.
 */
export function parseHashFile(text: string, where: string): Digest {
  const firstLine = text.trim().split(/\r?\n/, 1)[0] ?? '';
  const bsd = /^(SHA1|SHA256|SHA512|SHA-256|SHA-512)\s*\(.*\)\s*=\s*([0-9a-fA-F]+)$/.exec(firstLine);
  const candidate = bsd ? fromParts(bsd[1], bsd[2] ?? '') : parseDigest(firstLine.split(/\s+/, 1)[0] ?? '');
  if (!candidate) {
    const shown = firstLine.length > 60 ? `${firstLine.slice(0, 60)}…` : firstLine;
    throw new TemplatesError('HASH_INVALID', `${where}: not a hash: ${JSON.stringify(shown)}`, {
      url: where,
      hint: 'the hash file must hold a SHA-1/SHA-256/SHA-512 hex digest; ask the repository owner to fix it',
    });
  }
  return candidate;
}

/** The form written to `<entry>.hash`: bare hex for SHA-1 (as lago wrote it), `algo:hex` otherwise. */
export function formatDigest(digest: Digest): string {
  return digest.algorithm === 'sha1' ? digest.hex : `${digest.algorithm}:${digest.hex}`;
}

export function sameDigest(a: Digest, b: Digest): boolean {
  return a.algorithm === b.algorithm && a.hex === b.hex;
}
