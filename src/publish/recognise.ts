// Decide by content whether a file is a template image (raw or qcow2, plain or xz) and learn its format and size.
import { stat } from 'node:fs/promises';
import { readHead } from '../util/read-head.js';
import { isTemplatesError, type TemplatesError } from '../errors.js';
import { checkSupported } from '../fetch/convert.js';
import { HEAD_BYTES, detectImageFormat, isXz } from '../fetch/detect.js';
import { readXzHead } from './pack.js';
import { listXz, type XzListing } from './xz.js';

export type Recognised =
  | { kind: 'image'; xz: XzListing | undefined; format: string; size: number }
  | { kind: 'other'; reason: string }
  | { kind: 'problem'; error: TemplatesError };

/** Text (no NUL byte, nearly all printable) is never a disk image; a disk's first sectors are binary. */
function looksLikeText(head: Buffer): boolean {
  if (head.length === 0 || head.includes(0)) return false;
  let printable = 0;
  for (const byte of head) if (byte >= 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d) printable++;
  return printable / head.length > 0.95;
}

/**
 * Reads only the first bytes (an xz file: the first decoded bytes, and its index for the size). Files that are
 * not disk images are `other`; disk images that cannot be templates (vmdk, a qcow2 with a backing file,
 * corrupt xz) are `problem`s.
 */
export async function recognise(path: string, xz: string, signal?: AbortSignal): Promise<Recognised> {
  let size = (await stat(path)).size;
  let head = await readHead(path, HEAD_BYTES);
  let listing: XzListing | undefined;
  try {
    if (isXz(head)) {
      listing = await listXz(xz, path, signal);
      size = listing.uncompressedBytes;
      head = await readXzHead(xz, path, Math.min(HEAD_BYTES, size), signal);
    }
  } catch (error) {
    if (isTemplatesError(error) && error.code !== 'ABORTED') return { kind: 'problem', error };
    throw error;
  }
  if (looksLikeText(head)) return { kind: 'other', reason: 'text, not a disk image' };
  let format: string;
  try {
    format = detectImageFormat(head, path);
  } catch (error) {
    if (isTemplatesError(error, 'FORMAT_UNSUPPORTED')) return { kind: 'other', reason: error.message };
    throw error;
  }
  try {
    checkSupported(format, head, size, path);
  } catch (error) {
    if (!isTemplatesError(error, 'FORMAT_UNSUPPORTED')) throw error;
    return format === 'raw'
      ? { kind: 'other', reason: `${size} bytes with no disk-image header and not whole 512-byte sectors` }
      : { kind: 'problem', error };
  }
  return { kind: 'image', xz: listing, format, size };
}
