// fetchTemplate against a real nginx: candidates, fallbacks, hashes, fast path, failures that leave the store as it was.
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fetchTemplate, type ProgressEvent } from '../../src/index.js';
import { digestOf, makeDisk, publishImage } from '../helpers/images.js';
import { lagoRepo, librarySetup, workspace, type Workspace } from '../helpers/env.js';

let disk: string;
let disk2: string;
let ws: Workspace;

beforeAll(async () => {
  const shared = await workspace();
  disk = await makeDisk(join(shared.dir, 'a.raw'), { sizeMiB: 16, dataKiB: 1024, label: 'a' });
  disk2 = await makeDisk(join(shared.dir, 'b.raw'), { sizeMiB: 16, dataKiB: 1024, label: 'b' });
});
beforeEach(async () => {
  ws = await workspace();
});
afterEach(async () => {
  await ws.cleanup();
});

/** Bytes in the 4 KiB blocks of `path` that are not all zero. */
async function nonZeroBytes(path: string): Promise<number> {
  const bytes = await readFile(path);
  const zero = Buffer.alloc(4096);
  let count = 0;
  for (let offset = 0; offset < bytes.length; offset += 4096)
    if (!bytes.subarray(offset, offset + 4096).equals(zero.subarray(0, Math.min(4096, bytes.length - offset))))
      count += 4096;
  return count;
}

async function repoWith(versions: Record<string, Record<string, unknown>>, source = 'web') {
  const templates = { tpl: Object.fromEntries(Object.entries(versions).map(([v, spec]) => [v, { source, ...spec }])) };
  return ws.writeRepo('r', lagoRepo('r', ws, templates));
}

describe('fetch over HTTP', () => {
  it('fetches the newest version by timestamp from the .xz file, verifies it and stores it raw', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    await publishImage(ws.www, 'tpl/v2.raw', disk2);
    const { store, repositories, context } = await librarySetup(ws, [
      await repoWith({ v1: { handle: 'tpl/v1.raw', timestamp: 100 }, v2: { handle: 'tpl/v2.raw', timestamp: 200 } }),
    ]);
    const events: ProgressEvent[] = [];
    const result = await fetchTemplate('r:tpl', { store, repositories, context, onProgress: (e) => events.push(e) });
    expect(result).toMatchObject({
      ref: 'r:tpl:v2',
      status: 'downloaded',
      format: 'raw',
      hash: await digestOf(disk2),
      size: (await stat(disk2)).size,
    });
    expect(result.path).toBe(join(ws.store, 'r:tpl:v2'));
    expect(await digestOf(result.path)).toBe(await digestOf(disk2));
    expect(JSON.parse(await readFile(`${result.path}.metadata`, 'utf8'))).toEqual({ distro: 'test', arch: 'x86_64' });
    expect(await readFile(`${result.path}.hash`, 'utf8')).toBe(await digestOf(disk2));
    expect(await ws.requests('/tpl/v2.raw.xz')).toHaveLength(1);
    expect(await ws.requests('/tpl/v2.raw')).toHaveLength(0);
    expect(events.at(-1)).toEqual({ ref: 'r:tpl:v2', phase: 'done', status: 'downloaded' });
    expect(events.some((e) => e.phase === 'download' && e.bytes > 0 && e.total !== undefined)).toBe(true);
    // The store holds the image and its sidecars, nothing else.
    expect(await ws.storeFiles()).toEqual([
      '.tmp',
      'r:tpl:v2',
      'r:tpl:v2.hash',
      'r:tpl:v2.metadata',
      'r:tpl:v2.record.json',
      'r:tpl:v2.users',
    ]);
  });

  it('stores the image sparse: zero blocks become holes', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    const { store, repositories, context } = await librarySetup(ws, [
      await repoWith({ v1: { handle: 'tpl/v1.raw', timestamp: 1 } }),
    ]);
    const { path } = await fetchTemplate('r:tpl:v1', { store, repositories, context });
    const info = await stat(path);
    expect(info.size).toBe(16 * 1024 * 1024);
    expect(info.blocks * 512).toBeLessThan(info.size / 4);
  });

  it('falls back to the plain file when .xz is absent (404), and reuses the store afterwards', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk, { xz: false });
    const { store, repositories, context } = await librarySetup(ws, [
      await repoWith({ v1: { handle: 'tpl/v1.raw', timestamp: 1 } }),
    ]);
    const first = await fetchTemplate('r:tpl:v1', { store, repositories, context });
    expect(first.status).toBe('downloaded');
    expect(await digestOf(first.path)).toBe(await digestOf(disk));
    expect((await ws.requests('/tpl/v1.raw.xz')).map((l) => l.split(' ')[2])).toEqual(['404']);
    expect(await ws.requests('/tpl/v1.raw')).toHaveLength(1);
    const second = await fetchTemplate('r:tpl:v1', { store, repositories, context });
    expect(second).toEqual({ ...first, status: 'cached' });
    expect(await ws.requests('/tpl/v1.raw')).toHaveLength(1);
  });

  it('treats a 500 on the .xz file as an error instead of falling back', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk, { xz: true, plain: true });
    const repo = lagoRepo('r', ws, { tpl: { v1: { source: 'web', handle: 'tpl/v1.raw', timestamp: 1 } } });
    repo.sources.web.args.baseurl = ws.baseurl.replace(/\/(ws-[^/]+)\/$/, '/fail500/$1/');
    const { store, repositories, context } = await librarySetup(ws, [await ws.writeRepo('r', repo)]);
    const error = await fetchTemplate('r:tpl:v1', { store, repositories, context }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SOURCE_HTTP_ERROR', fields: { status: 500 } });
    expect((error as { fields: { url: string } }).fields.url).toMatch(/\/tpl\/v1\.raw\.xz$/);
    // Tried once and retried three times, never falling back to the plain file.
    expect(await ws.requests('/tpl/v1.raw.xz')).toHaveLength(4);
    expect(await ws.requests('/tpl/v1.raw')).toHaveLength(0);
    expect(await ws.storeFiles()).toEqual(['.tmp']);
  });

  it('decides xz by content, not by name: plain bytes served as .xz and xz bytes served plain both work', async () => {
    await publishImage(ws.www, 'odd/v1', disk, { xz: false, plain: true });
    await writeFile(join(ws.www, 'odd/v2.xz'), await readFile(disk)); // not xz at all
    await writeFile(join(ws.www, 'odd/v2.hash'), await digestOf(disk));
    await publishImage(ws.www, 'odd/v3.tmp', disk, { xz: true });
    await rename(join(ws.www, 'odd/v3.tmp.xz'), join(ws.www, 'odd/v3')); // xz bytes, plain name
    await rename(join(ws.www, 'odd/v3.tmp.hash'), join(ws.www, 'odd/v3.hash'));
    const { store, repositories, context } = await librarySetup(ws, [
      await repoWith({ v2: { handle: 'odd/v2', timestamp: 1 }, v3: { handle: 'odd/v3', timestamp: 2 } }),
    ]);
    for (const v of ['v2', 'v3']) {
      const { path } = await fetchTemplate(`r:tpl:${v}`, { store, repositories, context });
      expect(await digestOf(path)).toBe(await digestOf(disk));
    }
  });

  it('verifies the compressed file on the fast path when the repository gives compressed_hash', async () => {
    const digests = await publishImage(ws.www, 'tpl/v1.raw', disk, { hashText: null });
    const { store, repositories, context } = await librarySetup(ws, [
      await repoWith({ v1: { handle: 'tpl/v1.raw', timestamp: 1, compressed_hash: `sha256:${digests.xzSha256}` } }),
    ]);
    const result = await fetchTemplate('r:tpl:v1', { store, repositories, context });
    expect(await digestOf(result.path)).toBe(digests.sha1);
    const record = JSON.parse(await readFile(`${result.path}.record.json`, 'utf8'));
    expect(record).toMatchObject({
      verified: { of: 'compressed', digest: `sha256:${digests.xzSha256}` },
      compressed: true,
      sourceFormat: 'raw',
    });
    // No raw hash known: .hash records the digest that was verified.
    expect(result.hash).toBe(`sha256:${digests.xzSha256}`);
  });

  it('stores identical, equally sparse files on every path: xz writing the file, the raw-hash path, plain, and lzma-native', async () => {
    const digests = await publishImage(ws.www, 'tpl/v1.raw', disk);
    await publishImage(ws.www, 'tpl/plain.raw', disk, { xz: false, plain: true });
    const repo = await repoWith({
      fast: { handle: 'tpl/v1.raw', timestamp: 1, compressed_hash: `sha256:${digests.xzSha256}` },
      lago: { handle: 'tpl/v1.raw', timestamp: 1 },
      native: { handle: 'tpl/v1.raw', timestamp: 1 },
      plain: { handle: 'tpl/plain.raw', timestamp: 1 },
    });
    const { store, repositories, context } = await librarySetup(ws, [repo]);
    const fast = await fetchTemplate('r:tpl:fast', { store, repositories, context });
    const lago = await fetchTemplate('r:tpl:lago', { store, repositories, context });
    const plain = await fetchTemplate('r:tpl:plain', { store, repositories, context });
    const lzma = await librarySetup(ws, [repo], { decoder: 'lzma-native' });
    const native = await fetchTemplate('r:tpl:native', {
      store: lzma.store,
      repositories: lzma.repositories,
      context: lzma.context,
    });
    expect(JSON.parse(await readFile(`${fast.path}.record.json`, 'utf8')).verified.of).toBe('compressed');
    const allocated: number[] = [];
    for (const path of [fast.path, lago.path, plain.path, native.path]) {
      expect(await digestOf(path)).toBe(digests.sha1);
      allocated.push((await stat(path)).blocks);
    }
    // Every path leaves zero blocks as holes: what is allocated is the non-zero data, give or take 5%.
    const data = await nonZeroBytes(disk);
    for (const blocks of allocated) expect(blocks * 512).toBeLessThanOrEqual(data * 1.05);
  });

  it('uses the hash from the repository JSON, in any algorithm, without reading the .hash file', async () => {
    const digests = await publishImage(ws.www, 'tpl/v1.raw', disk, { hashText: 'garbage' });
    const { store, repositories, context } = await librarySetup(ws, [
      await repoWith({ v1: { handle: 'tpl/v1.raw', timestamp: 1, hash: `sha256:${digests.sha256}` } }),
    ]);
    const result = await fetchTemplate('r:tpl:v1', { store, repositories, context });
    expect(result.hash).toBe(`sha256:${digests.sha256}`);
    expect(await ws.requests('.hash')).toHaveLength(0);
  });

  it.each([
    ['the .hash file', { hashText: '0'.repeat(40) }, {}],
    ['the repository hash', {}, { hash: `sha1:${'1'.repeat(40)}` }],
    ['the compressed hash', {}, { compressed_hash: `sha256:${'2'.repeat(64)}` }],
  ])('on a mismatch with %s it names both hashes and leaves the store as it was', async (_what, publish, spec) => {
    await publishImage(ws.www, 'tpl/v1.raw', disk, publish);
    const { store, repositories, context } = await librarySetup(ws, [
      await repoWith({ v1: { handle: 'tpl/v1.raw', timestamp: 1, ...spec } }),
    ]);
    const before = await ws.storeFiles();
    const error = await fetchTemplate('r:tpl:v1', { store, repositories, context }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'HASH_MISMATCH' });
    const { expected, actual } = (error as { fields: { expected: string; actual: string } }).fields;
    expect(expected).toMatch(/^sha(1|256):(0+|1+|2+)$/);
    expect(actual).not.toBe(expected);
    expect(actual).toMatch(/^sha(1|256):[0-9a-f]+$/);
    expect(await ws.storeFiles()).toEqual(before);
  });

  it('refuses to store an image nobody can verify (no hash anywhere)', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk, { hashText: null });
    const { store, repositories, context } = await librarySetup(ws, [
      await repoWith({ v1: { handle: 'tpl/v1.raw', timestamp: 1 } }),
    ]);
    await expect(fetchTemplate('r:tpl:v1', { store, repositories, context })).rejects.toMatchObject({
      code: 'HASH_MISSING',
    });
    expect(await ws.storeFiles()).toEqual(['.tmp']);
  });

  it('reports an image missing at both candidates as IMAGE_NOT_FOUND', async () => {
    const { store, repositories, context } = await librarySetup(ws, [
      await repoWith({ v1: { handle: 'tpl/none.raw', timestamp: 1 } }),
    ]);
    await expect(fetchTemplate('r:tpl:v1', { store, repositories, context })).rejects.toMatchObject({
      code: 'IMAGE_NOT_FOUND',
    });
    // The image candidates in lago's order, each absent (the sidecars are asked for alongside, and may still be on their way).
    const seen = (await ws.requests()).map((line) =>
      line
        .split(' ')
        .slice(1, 3)
        .join(' ')
        .replace(/^\/ws-[^/]+/, ''),
    );
    expect(seen.filter((line) => !/\.(metadata|hash) /.test(line))).toEqual([
      '/tpl/none.raw.xz 404',
      '/tpl/none.raw 404',
    ]);
  });

  it('sends a User-Agent naming the tool and its version', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    const { store, repositories, context } = await librarySetup(ws, [
      await repoWith({ v1: { handle: 'tpl/v1.raw', timestamp: 1 } }),
    ]);
    await fetchTemplate('r:tpl:v1', { store, repositories, context });
    const [line] = await ws.requests('/tpl/v1.raw.xz');
    expect(line).toMatch(/"templates\/\d+\.\d+\.\d+ \(node /);
  });

  it('refuses redirects to non-http schemes', async () => {
    const repo = lagoRepo('r', ws, { tpl: { v1: { source: 'web', handle: 'x', timestamp: 1 } } });
    repo.sources.web.args.baseurl = ws.baseurl.replace(/\/(ws-[^/]+)\/$/, '/to-file/');
    const { store, repositories, context } = await librarySetup(ws, [await ws.writeRepo('r', repo)]);
    await expect(fetchTemplate('r:tpl:v1', { store, repositories, context })).rejects.toMatchObject({
      code: 'SOURCE_HTTP_ERROR',
      fields: { status: 302 },
    });
  });

  it('fails with SOURCE_UNREACHABLE naming the URL when the server is down', async () => {
    const repo = lagoRepo('r', ws, { tpl: { v1: { source: 'web', handle: 'x', timestamp: 1 } } });
    repo.sources.web.args.baseurl = 'http://user:secret@127.0.0.1:9/';
    const { store, repositories, context } = await librarySetup(ws, [await ws.writeRepo('r', repo)]);
    const error = await fetchTemplate('r:tpl:v1', { store, repositories, context }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SOURCE_UNREACHABLE' });
    expect((error as Error).message).toContain('127.0.0.1:9');
    expect((error as Error).message).not.toContain('secret');
  });

  it('aborts through its AbortSignal, leaving no entry, only the partial download kept for resume', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    const repo = lagoRepo('r', ws, { tpl: { v1: { source: 'web', handle: 'tpl/v1.raw', timestamp: 1 } } });
    repo.sources.web.args.baseurl = ws.baseurl.replace(/\/(ws-[^/]+)\/$/, '/slow/$1/');
    const { store, repositories, context } = await librarySetup(ws, [await ws.writeRepo('r', repo)]);
    const controller = new AbortController();
    const pending = fetchTemplate('r:tpl:v1', {
      store,
      repositories,
      context,
      signal: controller.signal,
      onProgress: (e) => e.phase === 'download' && e.bytes > 0 && controller.abort(),
    });
    await expect(pending).rejects.toMatchObject({ code: 'ABORTED' });
    expect(await ws.storeFiles()).toEqual([
      '.tmp',
      '.tmp/r:tpl:v1',
      '.tmp/r:tpl:v1/partial',
      '.tmp/r:tpl:v1/partial.json',
    ]);
  });
});
