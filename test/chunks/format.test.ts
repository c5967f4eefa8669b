// casync's format, checked against Debian's casync: the same .caibx as `casync make`, chunk stores it extracts, and bad input refused.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkLength, discriminator, isCut, rollHash, WINDOW, windowHash } from '../../src/chunks/buzhash.js';
import { BLOB_FLAGS, encodeIndex, parseIndex } from '../../src/chunks/caibx.js';
import { chunkPath, compressChunk, decodeChunk, readChunk } from '../../src/chunks/chunk-store.js';
import { chunkId } from '../../src/chunks/chunker.js';
import { makeIndex } from '../../src/chunks/make-index.js';
import { TOOL_PATH } from '../helpers/images.js';

const DEFAULT = { min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 };
let dir: string;
let image: string;

/** casync with only the tools' PATH; its exit code and output are checked by the caller. */
const casync = (args: string[]) => execa('casync', args, { cwd: dir, env: { PATH: TOOL_PATH }, extendEnv: false });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'templates-chunks-'));
  // 6 MiB: random data, a run of zeros (max-size chunks sharing one id), random again, and a short tail.
  image = join(dir, 'image.raw');
  await writeFile(
    image,
    Buffer.concat([randomBytes(2 << 20), Buffer.alloc(2 << 20), randomBytes(2 << 20), randomBytes(12345)]),
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the chunker', () => {
  it('rolls to the hash it would compute afresh, for any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: WINDOW + 1, maxLength: 200 }), (bytes) => {
        let h = windowHash(bytes, WINDOW);
        for (let end = WINDOW; end < bytes.length; end++) {
          h = rollHash(h, bytes[end - WINDOW]!, bytes[end]!);
          expect(h).toBe(windowHash(bytes, end + 1));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('tests the cut by multiplication exactly as the modulo would', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 2 ** 27 }), (h, d) => {
        expect(isCut(h, d, 1 / d)).toBe((h >>> 0) % d === d - 1);
      }),
      { numRuns: 20_000 },
    );
    // The edges: the largest hash, and hashes one below a multiple of d.
    for (const d of [1, 3, 49_535, 2 ** 27]) {
      expect(isCut(-1, d, 1 / d)).toBe((2 ** 32 - 1) % d === d - 1);
      expect(isCut(d * 3 - 1, d, 1 / d)).toBe(true);
    }
  });

  it("uses casync's discriminator (49,535 for 64 KiB) and cuts within min and max", () => {
    expect(discriminator(DEFAULT)).toBe(49_535);
    const sizes = { min: 64, avg: 256, max: 1024 };
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 4096 }), (bytes) => {
        let start = 0;
        while (start < bytes.length) {
          const length = chunkLength(bytes, start, bytes.length - start, sizes, discriminator(sizes), true)!;
          const last = start + length === bytes.length;
          expect(length).toBeLessThanOrEqual(sizes.max);
          if (!last) expect(length).toBeGreaterThanOrEqual(sizes.min);
          start += length;
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('against casync', () => {
  it.each([
    ['16K:64K:256K (casync default)', DEFAULT],
    ['8K:32K:128K', { min: 8192, avg: 32768, max: 131072 }],
    ['fixed 64K', { min: 65536, avg: 65536, max: 65536 }],
  ])('makes the same .caibx as casync make, %s', async (_name, sizes) => {
    const ours = await makeIndex(image, { sizes });
    const flag = `--chunk-size=${sizes.min}:${sizes.avg}:${sizes.max}`;
    await casync(['make', flag, `--store=${join(dir, 'theirs.castr')}`, 'theirs.caibx', image]);
    const theirs = await readFile(join(dir, 'theirs.caibx'));
    expect(encodeIndex(ours).equals(theirs)).toBe(true);
    expect(parseIndex(theirs, 'theirs.caibx')).toMatchObject({ flags: BLOB_FLAGS, sizes, length: ours.length });
  });

  it('writes a chunk store that casync extracts, each chunk once', async () => {
    const store = join(dir, 'default.castr');
    const index = await makeIndex(image, { sizes: DEFAULT, store });
    await writeFile(join(dir, 'ours.caibx'), encodeIndex(index));
    const unique = new Set(index.chunks.map((chunk) => chunk.id));
    expect(unique.size).toBeLessThan(index.chunks.length);
    const files = (await readdir(store, { recursive: true })).filter((name) => name.endsWith('.cacnk'));
    expect(files).toHaveLength(unique.size);
    // Indexing again writes nothing: every chunk is there.
    expect((await makeIndex(image, { sizes: DEFAULT, store })).written).toBe(0);
    await casync(['extract', `--store=${store}`, 'ours.caibx', join(dir, 'extracted.raw')]);
    expect((await readFile(join(dir, 'extracted.raw'))).equals(await readFile(image))).toBe(true);
    const first = index.chunks[0]!;
    expect((await readChunk(store, first.id, first.size)).equals((await readFile(image)).subarray(0, first.size))).toBe(
      true,
    );
  });
});

describe('bad input', () => {
  const good = () =>
    encodeIndex({
      sizes: DEFAULT,
      chunks: [
        { offset: 0, size: 1000, id: 'ab'.repeat(32) },
        { offset: 1000, size: 500, id: 'cd'.repeat(32) },
      ],
    });
  const invalid = (data: Buffer, maxLength?: number) => () => parseIndex(data, 'x.caibx', maxLength);
  const patched = (at: number, value: bigint) => {
    const data = good();
    data.writeBigUInt64LE(value, at);
    return data;
  };

  it.each([
    ['a wrong magic', patched(8, 0x1234n)],
    ['unknown flags', patched(16, BLOB_FLAGS | 1n)],
    ['min above avg', patched(24, BigInt(DEFAULT.avg + 1))],
    ['max above 128 MiB', patched(40, 129n << 20n)],
    ['offsets not increasing', patched(64 + 40, 900n)],
    ['a chunk longer than max', patched(64, BigInt(DEFAULT.max + 1))],
    ['a wrong table type', patched(56, 0n)],
    ['a wrong tail marker', patched(64 + 80 + 32, 0n)],
    ['a truncated file', good().subarray(0, 150)],
    ['an empty file', Buffer.alloc(0)],
  ])('refuses an index with %s as INDEX_INVALID', (_name, data) => {
    expect(invalid(data)).toThrow(expect.objectContaining({ code: 'INDEX_INVALID' }));
  });

  it('refuses an index describing more than the image may hold', () => {
    expect(invalid(good(), 1499)).toThrow(expect.objectContaining({ code: 'INDEX_INVALID' }));
    expect(parseIndex(good(), 'x.caibx', 1500).length).toBe(1500);
  });

  it('never throws anything but INDEX_INVALID for any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        try {
          parseIndex(Buffer.from(bytes), 'x.caibx');
        } catch (error) {
          expect(error).toMatchObject({ code: 'INDEX_INVALID' });
        }
      }),
      { numRuns: 2000 },
    );
  });

  const data = randomBytes(4096);
  const id = chunkId(data);
  it.each([
    ['bytes that do not match its id', () => compressChunk(randomBytes(4096)), data.length],
    ['a truncated chunk', () => compressChunk(data).subarray(0, 100), data.length],
    ['an oversized chunk', () => compressChunk(Buffer.concat([data, data])), data.length],
    ['a chunk shorter than the index says', () => compressChunk(data.subarray(0, 4000)), data.length],
    ['bytes that are not zstd', () => randomBytes(500), data.length],
    // 64 MiB of zeros in a few KiB: decoding stops at the size the index gives, allocating no more.
    ['a zstd bomb', () => compressChunk(Buffer.alloc(64 << 20)), data.length],
  ])('refuses %s as CHUNK_MISMATCH', (_name, file, size) => {
    expect(() => decodeChunk(file(), id, size, 'x.cacnk')).toThrow(expect.objectContaining({ code: 'CHUNK_MISMATCH' }));
  });

  it('reads back what it compressed, at its path', () => {
    expect(decodeChunk(compressChunk(data), id, data.length, 'x').equals(data)).toBe(true);
    expect(chunkPath('/s', id)).toBe(`/s/${id.slice(0, 4)}/${id}.cacnk`);
  });
});
