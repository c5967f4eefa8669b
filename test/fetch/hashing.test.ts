// Both ways of hashing a download verify the same bytes: on the main thread for small sources, on a worker thread for large ones.
import { open, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchTemplate, isTemplatesError } from '../../src/index.js';
import { hashSparseFile, mapExtents } from '../../src/fetch/sparse-hash.js';
import { digestOf, makeDisk, publishImage } from '../helpers/images.js';
import { lagoRepo, librarySetup, withoutLockFiles, workspace, type Workspace } from '../helpers/env.js';

let disk: string;
let ws: Workspace;
let published: Awaited<ReturnType<typeof publishImage>>;

beforeAll(async () => {
  ws = await workspace();
  disk = await makeDisk(join(ws.dir, 'a.raw'), { sizeMiB: 16, dataKiB: 1024, label: 'a' });
  published = await publishImage(ws.www, 'tpl/v1.raw', disk, { xz: true, plain: true, zst: true });
});
afterAll(async () => {
  await ws.cleanup();
});

const WRONG = `sha256:${'0'.repeat(64)}`;

/** The ways of fetching the image: the repository entry that selects each, and whether zstd may be used. */
const KINDS = {
  'zst (verified: the .zst)': () => ({ entry: { ...published.zst! }, zstd: true, plain: false }),
  'xz with compressed_hash (verified: the .xz)': () => ({
    entry: { compressed_hash: `sha256:${published.xzSha256}` },
    zstd: false,
    plain: false,
  }),
  'xz, lago (verified: the decoded image)': () => ({ entry: {}, zstd: false, plain: false }),
  'plain raw (verified: the image as it arrives)': () => ({ entry: {}, zstd: false, plain: true }),
};

describe.each([
  ['on the main thread (small sources)', 1024 * 1024 * 1024],
  ['on a worker thread (reading the kept file behind the writer, or the bytes as they pass)', 0],
])('hashing %s', (_name, inlineHashMaxBytes) => {
  it.each(Object.keys(KINDS))(
    '%s: stores the verified image, and refuses a wrong digest leaving the store as it was',
    async (kind) => {
      const source = KINDS[kind as keyof typeof KINDS]();
      const store = join(ws.dir, `store-${inlineHashMaxBytes}-${kind.replace(/\W+/g, '-')}`);
      const repoFor = async (name: string, entry: Record<string, unknown>) => {
        // The plain raw case: a handle whose .xz does not exist, so the plain file is what is fetched.
        const handle = source.plain ? 'plain/v1.raw' : 'tpl/v1.raw';
        if (source.plain) await publishImage(ws.www, handle, disk, { xz: false, plain: true });
        return ws.writeRepo(
          name,
          lagoRepo(name, ws, { tpl: { v1: { source: 'web', handle, timestamp: 1, ...entry } } }),
        );
      };
      const good = await repoFor(`good${inlineHashMaxBytes}`, source.entry);
      const options = { inlineHashMaxBytes, ...(source.zstd ? {} : { zstd: false as const }) };
      const setup = await librarySetup({ ...ws, store }, [good], options);
      const result = await fetchTemplate(`good${inlineHashMaxBytes}:tpl:v1`, setup);
      expect(await digestOf(result.path)).toBe(published.sha1);

      const wrongEntry =
        'zst_hash' in source.entry
          ? { ...source.entry, zst_hash: WRONG }
          : 'compressed_hash' in source.entry
            ? { compressed_hash: WRONG }
            : { hash: WRONG };
      const bad = await repoFor(`bad${inlineHashMaxBytes}`, wrongEntry);
      const badSetup = await librarySetup({ ...ws, store }, [bad], options);
      const before = withoutLockFiles(await readdir(store)).sort();
      const error = await fetchTemplate(`bad${inlineHashMaxBytes}:tpl:v1`, badSetup).catch((e: unknown) => e);
      expect(isTemplatesError(error) && error.code).toBe('HASH_MISMATCH');
      expect(withoutLockFiles(await readdir(store)).sort()).toEqual(before);
    },
  );
});

describe('a decoded image without a FIFO', () => {
  it('is hashed and written sparse through a pipe instead, to the same image', async () => {
    const store = join(ws.dir, 'store-pipe');
    const repo = await ws.writeRepo(
      'pipe',
      lagoRepo('pipe', ws, { tpl: { v1: { source: 'web', handle: 'tpl/v1.raw', timestamp: 1 } } }),
    );
    const setup = await librarySetup({ ...ws, store }, [repo], { fifo: false, zstd: false, inlineHashMaxBytes: 0 });
    const result = await fetchTemplate('pipe:tpl:v1', setup);
    expect(await digestOf(result.path)).toBe(published.sha1);
    const bad = await ws.writeRepo(
      'pipebad',
      lagoRepo('pipebad', ws, { tpl: { v1: { source: 'web', handle: 'tpl/v1.raw', timestamp: 1, hash: WRONG } } }),
    );
    const error = await fetchTemplate(
      'pipebad:tpl:v1',
      await librarySetup({ ...ws, store }, [bad], { fifo: false, zstd: false }),
    ).catch((e: unknown) => e);
    expect(isTemplatesError(error) && error.code).toBe('HASH_MISMATCH');
  });
});

describe('a repository that gives no image digest (compressed_hash only, no .hash file)', () => {
  let bare: Awaited<ReturnType<typeof publishImage>>;
  beforeAll(async () => {
    bare = await publishImage(ws.www, 'bare/v1.raw', disk, { xz: true, hashText: null });
  });

  it.each([
    ['a large source (hashed by a worker)', { inlineHashMaxBytes: 0 }],
    ['a large source, no FIFO', { inlineHashMaxBytes: 0, fifo: false }],
    ['a small source', {}],
  ])(
    "%s: the store records the raw image's SHA-256, computed from the stored file (checked)",
    async (name, options) => {
      const repoName = `bare${name.length}`;
      const repo = await ws.writeRepo(
        repoName,
        lagoRepo(repoName, ws, {
          tpl: {
            v1: { source: 'web', handle: 'bare/v1.raw', timestamp: 1, compressed_hash: `sha256:${bare.xzSha256}` },
          },
        }),
      );
      const setup = await librarySetup({ ...ws, store: join(ws.dir, `store-${repoName}`) }, [repo], {
        ...options,
        zstd: false,
      });
      const result = await fetchTemplate(`${repoName}:tpl:v1`, setup);
      const record = JSON.parse(await readFile(`${result.path}.record.json`, 'utf8')) as {
        stored: Record<string, unknown>;
        verified: { of: string };
      };
      expect(record.verified.of).toBe('compressed');
      expect(record.stored).toEqual({ digest: `sha256:${bare.sha256}` });
      expect(await digestOf(result.path)).toBe(bare.sha1);
    },
  );
});

describe('hashSparseFile', () => {
  it('gives the digest of every byte, holes included, reading only the data qemu-img map names (or every byte without qemu-img)', async () => {
    const sparse = join(ws.dir, 'sparse.raw');
    const handle = await open(sparse, 'w');
    // A hole first, data in the middle (not block-aligned), a hole at the end.
    await handle.write(Buffer.alloc(10_000, 7), 0, 10_000, 3 * 1024 * 1024 + 123);
    await handle.write(Buffer.from('tail data'), 0, 9, 9 * 1024 * 1024);
    await handle.truncate(12 * 1024 * 1024);
    await handle.close();
    const expected = { sha256: await digestOf(sparse, 'sha256'), sha1: await digestOf(sparse, 'sha1') };
    // qemu-img sees the holes: most of the file is named as zeros, and is not read.
    const extents = (await mapExtents('qemu-img', sparse, undefined))!;
    expect(extents.filter((extent) => extent.zero).reduce((sum, extent) => sum + extent.length, 0)).toBeGreaterThan(
      10 * 1024 * 1024,
    );
    expect(await hashSparseFile('qemu-img', sparse, ['sha256', 'sha1'])).toEqual(expected);
    expect(await hashSparseFile(join(ws.dir, 'no-qemu-img'), sparse, ['sha256', 'sha1'])).toEqual(expected);
    expect(await hashSparseFile('qemu-img', join(ws.dir, 'a.raw'), ['sha1'])).toEqual({
      sha1: await digestOf(disk, 'sha1'),
    });
  });
});
