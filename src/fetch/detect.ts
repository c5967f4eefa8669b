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

/** Disk formats qemu-img reads, by magic. */
const DISK_MAGIC: Array<[string, number, Buffer]> = [
  ['qcow2', 0, Buffer.from('QFI\xfb', 'latin1')],
  ['vmdk', 0, Buffer.from('KDMV')],
  ['vmdk', 0, Buffer.from('# Disk DescriptorFile')],
  ['vdi', 64, Buffer.from([0x7f, 0x10, 0xda, 0xbe])],
  ['vhdx', 0, Buffer.from('vhdxfile')],
  ['vpc', 0, Buffer.from('conectix')],
  ['qed', 0, Buffer.from('QED\0', 'latin1')],
];

/**
 * Containers, compressions and files that are not disk images, by magic: a clear error beats storing them as "raw".
 * A table rather than file-type: loading that module took ~70 ms of every fetch, for these few checks.
 */
const NOT_AN_IMAGE: Array<[string, number, Buffer]> = [
  ['gzip', 0, Buffer.from([0x1f, 0x8b, 0x08])],
  ['bzip2', 0, Buffer.from('BZh')],
  ['zstd', 0, ZSTD_MAGIC],
  ['7-Zip', 0, Buffer.from([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c])],
  ['zip', 0, Buffer.from('PK\x03\x04', 'latin1')],
  ['RAR', 0, Buffer.from('Rar!\x1a\x07', 'latin1')],
  ['tar', 257, Buffer.from('ustar')],
  ['lzip', 0, Buffer.from('LZIP')],
  ['LZ4', 0, Buffer.from([0x04, 0x22, 0x4d, 0x18])],
  ['compress (.Z)', 0, Buffer.from([0x1f, 0x9d])],
  ['compress (.Z)', 0, Buffer.from([0x1f, 0xa0])],
  ['cabinet', 0, Buffer.from('MSCF')],
  ['PDF', 0, Buffer.from('%PDF-')],
  ['ELF executable', 0, Buffer.from('\x7fELF', 'latin1')],
  ['DOS/Windows executable', 0, Buffer.from('MZ')],
];

function looksLikeHtml(head: Buffer): boolean {
  const text = head.subarray(0, 512).toString('latin1').trimStart().toLowerCase();
  return (
    text.startsWith('<!doctype html') ||
    text.startsWith('<html') ||
    text.startsWith('<head') ||
    text.startsWith('<?xml')
  );
}

const startsWith = (head: Buffer, offset: number, magic: Buffer) =>
  head.length >= offset + magic.length && head.subarray(offset, offset + magic.length).equals(magic);

/**
 * The format of a decompressed image from its first bytes: a qemu-img format name, or "raw".
 * Throws FORMAT_UNSUPPORTED for content that is clearly not a disk image.
 */
export function detectImageFormat(head: Buffer, where: string): string {
  for (const [format, offset, magic] of DISK_MAGIC) if (startsWith(head, offset, magic)) return format;
  const unsupported = (what: string) =>
    new TemplatesError('FORMAT_UNSUPPORTED', `${where}: ${what}, not a disk image`, {
      url: where,
      hint: 'templates are raw or qcow2 images, optionally xz-compressed',
    });
  if (looksLikeHtml(head)) throw unsupported('an HTML/XML page');
  if (isXz(head)) throw unsupported('xz data inside xz');
  const other = NOT_AN_IMAGE.find(([, offset, magic]) => startsWith(head, offset, magic));
  if (other) throw unsupported(`${other[0]} data`);
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
