// casync's blob index (.caibx): chunk sizes, then each chunk's end offset and id; written byte-identical to casync make.
import { TemplatesError } from '../errors.js';
import { CHUNK_SIZE_LIMIT_MAX, type ChunkSizes } from './buzhash.js';

const HEADER_SIZE = 48n;
const INDEX_TYPE = 0x96824d9c7b129ff9n;
const TABLE_SIZE_MARKER = 0xffffffffffffffffn;
const TABLE_TYPE = 0xe75b9e112f17417dn;
const TAIL_MARKER = 0x4b4f050e5549ecd1n;
/** Chunk ids are SHA-512/256 (clear: SHA-256). */
const FLAG_SHA512_256 = 0x2000000000000000n;
const FLAG_EXCLUDE_NODUMP = 0x8000000000000000n;
const FLAG_EXCLUDE_FILE = 0x1000000000000000n;
/** What `casync make` writes for a blob; desync writes 0xa000…; both are read. */
export const BLOB_FLAGS = FLAG_SHA512_256 | FLAG_EXCLUDE_NODUMP | FLAG_EXCLUDE_FILE;
const KNOWN_FLAGS = BLOB_FLAGS;
const ITEM = 40;
const FIXED = 48 + 16 + 40;

export interface IndexedChunk {
  offset: number;
  size: number;
  /** 64 hex digits. */
  id: string;
}

export interface ChunkIndex {
  flags: bigint;
  sizes: ChunkSizes;
  chunks: IndexedChunk[];
  /** The image's size: the last chunk's end. */
  length: number;
}

/** The index file's bytes. */
export function encodeIndex(index: Pick<ChunkIndex, 'sizes' | 'chunks'> & { flags?: bigint }): Buffer {
  const { chunks, sizes } = index;
  const out = Buffer.alloc(FIXED + ITEM * chunks.length);
  const header = [
    HEADER_SIZE,
    INDEX_TYPE,
    index.flags ?? BLOB_FLAGS,
    BigInt(sizes.min),
    BigInt(sizes.avg),
    BigInt(sizes.max),
  ];
  for (const [i, value] of header.entries()) out.writeBigUInt64LE(value, i * 8);
  out.writeBigUInt64LE(TABLE_SIZE_MARKER, 48);
  out.writeBigUInt64LE(TABLE_TYPE, 56);
  let at = 64;
  for (const chunk of chunks) {
    out.writeBigUInt64LE(BigInt(chunk.offset + chunk.size), at);
    out.write(chunk.id, at + 8, 32, 'hex');
    at += ITEM;
  }
  const tail = [0n, 0n, HEADER_SIZE, BigInt(16 + ITEM * chunks.length + ITEM), TAIL_MARKER];
  for (const [i, value] of tail.entries()) out.writeBigUInt64LE(value, at + i * 8);
  return out;
}

/**
 * Parses an index, refusing what casync refuses: a wrong size or magic, unknown flags, sizes out of
 * 1 ≤ min ≤ avg ≤ max ≤ 128 MiB, a chunk longer than max (or empty), offsets not increasing, a bad tail. `where`
 * names it in errors (INDEX_INVALID); `maxLength`, when given, bounds the image it describes.
 */
export function parseIndex(data: Buffer, where: string, maxLength = Number.MAX_SAFE_INTEGER): ChunkIndex {
  const invalid = (why: string) =>
    new TemplatesError('INDEX_INVALID', `${where}: not a valid chunk index: ${why}`, {
      url: where,
      hint: 'the whole file is used instead; ask the publisher to run templates index again',
    });
  if (data.length < FIXED || (data.length - FIXED) % ITEM !== 0) throw invalid(`${data.length} bytes`);
  const u64 = (at: number) => data.readBigUInt64LE(at);
  if (u64(0) !== HEADER_SIZE || u64(8) !== INDEX_TYPE) throw invalid('wrong header (not a .caibx)');
  const flags = u64(16);
  if ((flags & ~KNOWN_FLAGS) !== 0n) throw invalid(`unknown feature flags 0x${flags.toString(16)}`);
  const [min, avg, max] = [u64(24), u64(32), u64(40)].map(Number) as [number, number, number];
  if (!(min >= 1 && min <= avg && avg <= max && max <= CHUNK_SIZE_LIMIT_MAX))
    throw invalid(`chunk sizes ${min}:${avg}:${max} out of bounds`);
  if (u64(48) !== TABLE_SIZE_MARKER || u64(56) !== TABLE_TYPE) throw invalid('wrong table header');
  const count = (data.length - FIXED) / ITEM;
  const tail = 64 + count * ITEM;
  if (
    u64(tail) !== 0n ||
    u64(tail + 8) !== 0n ||
    u64(tail + 16) !== HEADER_SIZE ||
    u64(tail + 24) !== BigInt(16 + ITEM * count + ITEM) ||
    u64(tail + 32) !== TAIL_MARKER
  )
    throw invalid('wrong table tail');
  const chunks: IndexedChunk[] = [];
  let offset = 0;
  for (let at = 64; at < tail; at += ITEM) {
    const end = u64(at);
    if (end <= BigInt(offset)) throw invalid(`offsets not increasing at chunk ${chunks.length}`);
    if (end > BigInt(maxLength)) throw invalid(`chunk ${chunks.length} ends past ${maxLength} bytes`);
    const size = Number(end) - offset;
    if (size > max) throw invalid(`chunk ${chunks.length} is ${size} bytes, more than the maximum ${max}`);
    chunks.push({ offset, size, id: data.toString('hex', at + 8, at + ITEM) });
    offset += size;
  }
  return { flags, sizes: { min, avg, max }, chunks, length: offset };
}
