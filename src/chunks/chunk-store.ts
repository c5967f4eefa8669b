// casync's chunk store (`default.castr/`): one zstd file per chunk at <first 4 hex>/<id>.cacnk, written once by rename.
import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import binding from 'zstd-napi/binding.js';
import { TemplatesError } from '../errors.js';
import { chunkId } from './chunker.js';

/** casync compresses chunks with zstd at level 3. */
const LEVEL = 3;

/** Where a chunk lives under a store root (pure). */
export function chunkPath(root: string, id: string): string {
  return join(root, id.slice(0, 4), `${id}.cacnk`);
}

/** A chunk's file: one zstd frame of its bytes. */
export function compressChunk(data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(binding.compressBound(data.length));
  const cctx = new binding.CCtx();
  cctx.setParameter(binding.CParameter.compressionLevel, LEVEL);
  return out.subarray(0, cctx.compress2(out, data));
}

/**
 * A chunk file's bytes, checked: exactly `size` bytes decoded (a truncated, oversized or non-zstd file, or a zstd
 * bomb, is CHUNK_MISMATCH without decoding past `size`), and their SHA-512/256 is `id`.
 */
export function decodeChunk(file: Uint8Array, id: string, size: number, where: string): Buffer {
  const mismatch = (why: string) =>
    new TemplatesError('CHUNK_MISMATCH', `${where}: chunk ${id} ${why}`, {
      url: where,
      expected: id,
      hint: 'another mirror or the whole file is tried; ask the owner to check the chunk store',
    });
  const out = Buffer.allocUnsafe(size);
  let decoded: number;
  try {
    decoded = binding.decompress(out, file);
  } catch (error) {
    throw mismatch(`is not ${size} bytes of zstd (${(error as Error).message})`);
  }
  if (decoded !== size) throw mismatch(`decodes to ${decoded} bytes, not ${size}`);
  const actual = chunkId(out);
  if (actual !== id) throw mismatch(`does not match its id (its bytes hash to ${actual})`);
  return out;
}

/** Whether the store holds the chunk (its file exists; its bytes are checked when read). */
async function hasChunk(root: string, id: string): Promise<boolean> {
  return (await stat(chunkPath(root, id)).catch(() => undefined)) !== undefined;
}

/**
 * Stores a chunk unless it is there: written beside its place and linked in (never over a file: two writers of the same
 * chunk both succeed, and a reader never sees half a file), mode 0444 as casync's. Returns the bytes written (0 if kept).
 */
export async function writeChunk(root: string, id: string, data: Uint8Array): Promise<number> {
  if (await hasChunk(root, id)) return 0;
  const file = compressChunk(data);
  await writeChunkFile(root, id, file);
  return file.length;
}

/** Stores a chunk's file as it is (already checked against its id), in the same way. */
export async function writeChunkFile(root: string, id: string, file: Uint8Array): Promise<void> {
  const path = chunkPath(root, id);
  await mkdir(join(root, id.slice(0, 4)), { recursive: true });
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temp, file, { mode: 0o444 });
    await chmod(temp, 0o444);
    await link(temp, path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
  } finally {
    await rm(temp, { force: true });
  }
}

/** A stored chunk's bytes, checked against its id and size. */
export async function readChunk(root: string, id: string, size: number): Promise<Buffer> {
  const path = chunkPath(root, id);
  return decodeChunk(await readFile(path), id, size, path);
}
