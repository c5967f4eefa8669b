// Hostile or broken repositories, images and sidecars: each one a typed error, and the store exactly as it was.
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RepositorySet, fetchTemplate, loadRepositories, openStore } from '../../src/index.js';
import { parseRepository } from '../../src/repository/parse.js';
import { resolveReference } from '../../src/repository/resolve.js';
import { TOOL_PATH, digestOf, makeDisk, publishImage } from '../helpers/images.js';
import { lagoRepo, librarySetup, workspace, type Workspace } from '../helpers/env.js';

let disk: string;
let ws: Workspace;

beforeAll(async () => {
  const shared = await workspace();
  disk = await makeDisk(join(shared.dir, 'a.raw'), { sizeMiB: 16, dataKiB: 1024 });
});
beforeEach(async () => {
  ws = await workspace();
});
afterEach(async () => {
  await ws.cleanup();
});

async function setupWith(
  versions: Record<string, Record<string, unknown>>,
  context: Parameters<typeof librarySetup>[2] = {},
) {
  const templates = {
    tpl: Object.fromEntries(Object.entries(versions).map(([v, spec]) => [v, { source: 'web', timestamp: 1, ...spec }])),
  };
  return librarySetup(ws, [await ws.writeRepo('r', lagoRepo('r', ws, templates))], context);
}

async function expectRefused(
  version: Record<string, unknown>,
  code: string,
  context: Parameters<typeof librarySetup>[2] = {},
) {
  const { store, repositories, context: ctx } = await setupWith({ v1: version }, context);
  await expect(fetchTemplate('r:tpl:v1', { store, repositories, context: ctx })).rejects.toMatchObject({ code });
  expect(await ws.storeFiles()).toEqual(['.tmp']);
}

describe('hostile repositories', () => {
  it('refuses a repository file over 64 MiB before reading it, local or over HTTP', async () => {
    const local = join(ws.dir, 'huge.json');
    await writeFile(local, '{"name":"huge"}');
    await truncate(local, 65 * 1024 * 1024);
    const store = await openStore({ root: ws.store });
    await expect(loadRepositories({ store, repos: [local] })).rejects.toMatchObject({ code: 'REPO_INVALID' });
    await writeFile(join(ws.www, 'huge.json'), '');
    await truncate(join(ws.www, 'huge.json'), 65 * 1024 * 1024);
    await expect(loadRepositories({ store, repos: [`${ws.baseurl}huge.json`] })).rejects.toMatchObject({
      code: 'REPO_INVALID',
    });
  });

  it('decides by content: HTML under a JSON content type is REPO_INVALID, JSON under another content type is read', async () => {
    const store = await openStore({ root: ws.store });
    await writeFile(join(ws.www, 'portal.json'), '<!DOCTYPE html><html><body>log in</body></html>');
    await expect(loadRepositories({ store, repos: [`${ws.baseurl}portal.json`] })).rejects.toMatchObject({
      code: 'REPO_INVALID',
    });
    await writeFile(
      join(ws.www, 'repo.bin'),
      JSON.stringify(lagoRepo('r', ws, { tpl: { v1: { source: 'web', handle: 'x', timestamp: 1 } } })),
    );
    const set = await loadRepositories({ store, repos: [`${ws.baseurl}repo.bin`] });
    expect(set.get('r')?.templates.has('tpl')).toBe(true);
  });

  it.each([
    ['no handle', { source: 'web', timestamp: 1 }, 'handle'],
    ['no source', { handle: 'x', timestamp: 1 }, 'source'],
    ['no timestamp', { source: 'web', handle: 'x' }, 'timestamp'],
    ['a handle that is a number', { source: 'web', handle: 7, timestamp: 1 }, 'handle'],
    ['versions that are a list', undefined, 'versions'],
  ])('marks a version with %s ENTRY_BROKEN, naming the JSON path', (_what, version, field) => {
    const spec = version === undefined ? { versions: [] } : { versions: { v1: version } };
    const text = JSON.stringify({
      name: 'r',
      sources: { web: { type: 'http', args: { baseurl: 'http://127.0.0.1/' } } },
      templates: { tpl: spec },
    });
    const repo = parseRepository(text, 'r.json', { allowFileSources: true, env: {}, home: '/root' });
    const set = new RepositorySet([repo]);
    let error: unknown;
    try {
      resolveReference('r:tpl:v1', set);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({
      code: 'ENTRY_BROKEN',
      fields: { file: 'r.json', jsonPath: expect.stringContaining(field) },
    });
  });

  it.each([
    ['a slash', 'a/b'],
    ['a parent segment', '..'],
    ['a colon', 'a:b'],
    ['a NUL', 'a\u0000b'],
    ['a control character', 'a\u001bb'],
  ])('keeps a template or version named with %s out (ENTRY_BROKEN), the rest usable', (_what, name) => {
    const text = JSON.stringify({
      name: 'r',
      sources: { web: { type: 'http', args: { baseurl: 'http://127.0.0.1/' } } },
      templates: {
        [name]: { versions: { v1: { source: 'web', handle: 'x', timestamp: 1 } } },
        good: {
          versions: {
            [name]: { source: 'web', handle: 'x', timestamp: 2 },
            v1: { source: 'web', handle: 'x', timestamp: 1 },
          },
        },
      },
    });
    const repo = parseRepository(text, 'r.json', { allowFileSources: true, env: {}, home: '/root' });
    expect(repo.problems).toHaveLength(2);
    expect(repo.templates.get(name)).toMatchObject({ ok: false, error: { code: 'ENTRY_BROKEN' } });
    expect(resolveReference('r:good', new RepositorySet([repo])).version.name).toBe('v1');
  });

  it.each([
    ['../ in an http handle', '../outside'],
    ['an absolute http handle', '/etc/passwd'],
  ])('refuses %s with ENTRY_BROKEN before any request', async (_what, handle) => {
    await expectRefused({ handle }, 'ENTRY_BROKEN');
    expect(await ws.requests()).toEqual([]);
  });
});

describe('hostile images and sidecars', () => {
  it.each([
    ['empty', ''],
    ['HTML', '<!DOCTYPE html><html><body>login</body></html>'],
    ['in an unknown format', 'md4:0123456789abcdef0123456789abcdef'],
  ])('refuses a .hash file that is %s with HASH_INVALID', async (_what, text) => {
    await publishImage(ws.www, 'tpl/v1.raw', disk, { hashText: text });
    await expectRefused({ handle: 'tpl/v1.raw' }, 'HASH_INVALID');
  });

  it('refuses xz followed by garbage with DECODE_FAILED', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    const xz = join(ws.www, 'tpl/v1.raw.xz');
    await writeFile(xz, Buffer.concat([await readFile(xz), Buffer.from('garbage after the stream')]));
    await expectRefused({ handle: 'tpl/v1.raw' }, 'DECODE_FAILED');
  });

  it('stops a decompression bomb at the configured limit (IMAGE_TOO_LARGE), xz or plain', async () => {
    const bomb = join(ws.dir, 'bomb.raw');
    await writeFile(bomb, '');
    await truncate(bomb, 128 * 1024 * 1024); // 128 MiB of zeros: about 20 KiB of xz
    await publishImage(ws.www, 'tpl/bomb.raw', bomb);
    await publishImage(ws.www, 'tpl/plain.raw', disk, { xz: false, plain: true });
    await expectRefused({ handle: 'tpl/bomb.raw' }, 'IMAGE_TOO_LARGE', { maxImageBytes: 8 * 1024 * 1024 });
    await expectRefused({ handle: 'tpl/bomb.raw' }, 'IMAGE_TOO_LARGE', { maxImageBytes: 8 * 1024 * 1024, fifo: false });
    await expectRefused({ handle: 'tpl/plain.raw' }, 'IMAGE_TOO_LARGE', { maxImageBytes: 8 * 1024 * 1024 });
    await expectRefused({ handle: 'tpl/bomb.raw' }, 'IMAGE_TOO_LARGE', {
      decoder: 'lzma-native',
      maxImageBytes: 8 * 1024 * 1024,
    });
  });

  it('treats a listed .zst as the xz path does: bombs, garbage, wrong sizes and a wrong digest are refused', async () => {
    const bomb = join(ws.dir, 'bomb.raw');
    await writeFile(bomb, '');
    await truncate(bomb, 128 * 1024 * 1024);
    const bombed = await publishImage(ws.www, 'tpl/bomb.raw', bomb, { zst: true });
    await expectRefused({ handle: 'tpl/bomb.raw', ...bombed.zst }, 'IMAGE_TOO_LARGE', {
      maxImageBytes: 8 * 1024 * 1024,
    });
    const published = await publishImage(ws.www, 'tpl/v1.raw', disk, { zst: true });
    await expectRefused({ handle: 'tpl/v1.raw', ...published.zst, size: 1024 * 1024 }, 'SIZE_MISMATCH');
    await expectRefused(
      { handle: 'tpl/v1.raw', ...published.zst, zst_hash: `sha256:${'0'.repeat(64)}` },
      'HASH_MISMATCH',
    );
    // Garbage after the frame, published with its own digest: the digest matches, zstd refuses it.
    const zst = join(ws.www, 'tpl/v1.raw.zst');
    await writeFile(zst, Buffer.concat([await readFile(zst), Buffer.from('garbage after the frame')]));
    await expectRefused({ handle: 'tpl/v1.raw', zst_hash: `sha256:${await digestOf(zst, 'sha256')}` }, 'DECODE_FAILED');
    // Cut short, with its own digest: truncated data is DECODE_FAILED too.
    await truncate(zst, 200_000);
    await expectRefused({ handle: 'tpl/v1.raw', zst_hash: `sha256:${await digestOf(zst, 'sha256')}` }, 'DECODE_FAILED');
    // Not zstd at all under the .zst name (HTML from a portal): refused by content, not stored as an image.
    await writeFile(zst, '<!DOCTYPE html><html><body>login</body></html>');
    await expectRefused(
      { handle: 'tpl/v1.raw', zst_hash: `sha256:${await digestOf(zst, 'sha256')}` },
      'FORMAT_UNSUPPORTED',
    );
  });

  it('refuses an image that decodes to more or fewer bytes than the repository says (SIZE_MISMATCH)', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    await expectRefused({ handle: 'tpl/v1.raw', size: 1024 * 1024 }, 'SIZE_MISMATCH');
    await expectRefused({ handle: 'tpl/v1.raw', size: 32 * 1024 * 1024 }, 'SIZE_MISMATCH');
  });

  it('refuses a qcow2 with an external data file before qemu-img opens it', async () => {
    const qcow = join(ws.dir, 'ext.qcow2');
    await execa(
      'qemu-img',
      ['create', '-q', '-f', 'qcow2', '-o', `data_file=${join(ws.dir, 'ext.data')}`, qcow, '16M'],
      { env: { PATH: TOOL_PATH } },
    );
    await publishImage(ws.www, 'tpl/v1.qcow2', qcow);
    await expectRefused({ handle: 'tpl/v1.qcow2' }, 'FORMAT_UNSUPPORTED');
  });

  it.each([
    ['empty', Buffer.alloc(0)],
    ['not whole 512-byte sectors', Buffer.alloc(1000, 1)],
  ])('refuses an image whose format cannot be determined (%s) with FORMAT_UNSUPPORTED', async (_what, bytes) => {
    const odd = join(ws.dir, 'odd.img');
    await writeFile(odd, bytes);
    await publishImage(ws.www, 'tpl/v1.img', odd, { xz: false, plain: true });
    await expectRefused({ handle: 'tpl/v1.img' }, 'FORMAT_UNSUPPORTED');
  });

  it('refuses .metadata over 1 MiB with METADATA_INVALID', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk, { metadata: JSON.stringify({ pad: 'x'.repeat(1024 * 1024) }) });
    await expectRefused({ handle: 'tpl/v1.raw' }, 'METADATA_INVALID');
  });

  it('still fetches the good image afterwards (the store stayed usable)', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk, { hashText: '' });
    await expectRefused({ handle: 'tpl/v1.raw' }, 'HASH_INVALID');
    await publishImage(ws.www, 'tpl/v2.raw', disk);
    const { store, repositories, context } = await setupWith({ v2: { handle: 'tpl/v2.raw' } });
    const result = await fetchTemplate('r:tpl:v2', { store, repositories, context });
    expect(await digestOf(result.path)).toBe(await digestOf(disk));
  });
});
