// Recognise bytes by content: xz, zstd, disk-image formats, and things that are not disk images at all.
import { TemplatesError } from '../errors.js';

/** Bytes needed to decide; the qcow2 header fields we read fit well inside. */
export const HEAD_BYTES = 4100;

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);

export function isXz(head: Buffer): boolean {
  return head.subarray(0, XZ_MAGIC.length).equals(XZ_MAGIC);
}

/** A zstd frame (skippable frames, 0x184D2A5?, are not written by the zstd command and not accepted first). */
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** The compression a source file is in, by its first bytes: what decodes it. */
export function compressionOf(head: Buffer): 'xz' | 'zst' | undefined {
  if (isXz(head)) return 'xz';
  if (head.subarray(0, ZSTD_MAGIC.length).equals(ZSTD_MAGIC)) return 'zst';
  return undefined;
}

/** Disk formats qemu-img reads, by magic. file-type knows none of them. */
const DISK_MAGIC: Array<[string, number, Buffer]> = [
  ['qcow2', 0, Buffer.from('QFI\xfb', 'latin1')],
  ['vmdk', 0, Buffer.from('KDMV')],
  ['vmdk', 0, Buffer.from('# Disk DescriptorFile')],
  ['vdi', 64, Buffer.from([0x7f, 0x10, 0xda, 0xbe])],
  ['vhdx', 0, Buffer.from('vhdxfile')],
  ['vpc', 0, Buffer.from('conectix')],
  ['qed', 0, Buffer.from('QED\0', 'latin1')],
];

/** Containers and compressions that are not decoded here: a clear error beats storing them as "raw". */
const NOT_AN_IMAGE = new Set(['gz', 'bz2', 'zst', '7z', 'zip', 'rar', 'tar', 'lz', 'lz4', 'Z', 'cab', 'xml', 'pdf', 'exe', 'elf']);

function looksLikeHtml(head: Buffer): boolean {
  const text = head.subarray(0, 512).toString('latin1').trimStart().toLowerCase();
  return text.startsWith('<!doctype html') || text.startsWith('<html') || text.startsWith('<head') || text.startsWith('<?xml');
}

/**
 * Starts loading file-type (~70 ms of module loading) while the download runs, so that detectImageFormat finds it
 * ready instead of adding that time after the last byte. The module loader keeps the one load.
 */
export function preloadDetection(): void {
  import('file-type').catch(() => undefined);
}

/**
 * The format of a decompressed image from its first bytes: a qemu-img format name, or "raw".
 * Throws FORMAT_UNSUPPORTED for content that is clearly not a disk image.
 */
export async function detectImageFormat(head: Buffer, where: string): Promise<string> {
  for (const [format, offset, magic] of DISK_MAGIC) {
    if (head.length >= offset + magic.length && head.subarray(offset, offset + magic.length).equals(magic)) return format;
  }
  const unsupported = (what: string) =>
    new TemplatesError('FORMAT_UNSUPPORTED', `${where}: ${what}, not a disk image`, {
      url: where,
      hint: 'templates are raw or qcow2 images, optionally xz-compressed',
    });
  if (looksLikeHtml(head)) throw unsupported('an HTML/XML page');
  if (isXz(head)) throw unsupported('xz data inside xz');
  // file-type loads only on a download (preloadDetection): a cache hit never pays for it.
  const { fileTypeFromBuffer } = await import('file-type');
  const type = await fileTypeFromBuffer(head);
  if (type && NOT_AN_IMAGE.has(type.ext)) throw unsupported(`${type.mime} data`);
  return 'raw';
}

/** Offsets inside a qcow2 header (all big-endian), from qemu's docs/interop/qcow2.txt. */
export interface Qcow2Header {
  version: number;
  backingFileOffset: bigint;
  incompatibleFeatures: bigint;
}

export function readQcow2Header(head: Buffer): Qcow2Header {
  const version = head.readUInt32BE(4);
  return {
    version,
    backingFileOffset: head.readBigUInt64BE(8),
    incompatibleFeatures: version >= 3 && head.length >= 80 ? head.readBigUInt64BE(72) : 0n,
  };
}
