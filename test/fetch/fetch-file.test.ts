// fetchTemplate with the file provider: qcow2 conversion, hash notations, containment, decoders, refused formats.
import { copyFile, mkdir, readFile, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fetchTemplate } from '../../src/index.js';
import { TOOL_PATH, digestOf, makeDisk, publishImage, toQcow2 } from '../helpers/images.js';
import { lagoRepo, librarySetup, workspace, type Workspace } from '../helpers/env.js';

let disk: string;
let qcow2: string;
let ws: Workspace;

beforeAll(async () => {
  const shared = await workspace();
  disk = await makeDisk(join(shared.dir, 'a.raw'), { sizeMiB: 16, dataKiB: 1024, label: 'a' });
  qcow2 = await toQcow2(disk, join(shared.dir, 'a.qcow2'));
});
beforeEach(async () => {
  ws = await workspace();
});
afterEach(async () => {
  await ws.cleanup();
});

const setupFor = async (versions: Record<string, Record<string, unknown>>, options = {}) =>
  librarySetup(
    ws,
    [
      await ws.writeRepo(
        'r',
        lagoRepo('r', ws, {
          tpl: Object.fromEntries(Object.entries(versions).map(([v, s]) => [v, { source: 'disk', ...s }])),
        }),
      ),
    ],
    options,
  );

describe('fetch from a file source', () => {
  it.each([
    ['uncompressed', { xz: false }],
    ['xz-compressed', { xz: true }],
  ])('converts an %s qcow2 image to raw with identical content', async (_what, publish) => {
    await publishImage(ws.www, 'tpl/v1.qcow2', qcow2, publish);
    const { store, repositories, context } = await setupFor({ v1: { handle: 'tpl/v1.qcow2', timestamp: 1 } });
    const result = await fetchTemplate('r:tpl:v1', { store, repositories, context });
    expect(result).toMatchObject({
      status: 'downloaded',
      format: 'qcow2',
      hash: await digestOf(qcow2),
      size: (await stat(disk)).size,
    });
    expect(await digestOf(result.path)).toBe(await digestOf(disk));
    expect(await ws.storeFiles()).toEqual([
      '.tmp',
      'r:tpl:v1',
      'r:tpl:v1.hash',
      'r:tpl:v1.metadata',
      'r:tpl:v1.record.json',
      'r:tpl:v1.users',
    ]);
  });

  it.each([
    ['a sha1sum line', async () => `${await digestOf(disk)}  v1.raw\n`],
    ['sha256:hex', async () => `sha256:${await digestOf(disk, 'sha256')}`],
    ['bare SHA-512 hex', async () => `${await digestOf(disk, 'sha512')}\n`],
    ['a BSD tag line', async () => `SHA256 (v1.raw) = ${await digestOf(disk, 'sha256')}`],
  ])('verifies against a .hash file holding %s', async (_what, text) => {
    await publishImage(ws.www, 'tpl/v1.raw', disk, { hashText: await text() });
    const { store, repositories, context } = await setupFor({ v1: { handle: 'tpl/v1.raw', timestamp: 1 } });
    const result = await fetchTemplate('r:tpl:v1', { store, repositories, context });
    expect(await digestOf(result.path)).toBe(await digestOf(disk));
  });

  it('prefers <handle>.xz.hash over <handle>.hash', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk, { hashText: 'f'.repeat(40) });
    await writeFile(join(ws.www, 'tpl/v1.raw.xz.hash'), await digestOf(disk));
    const { store, repositories, context } = await setupFor({ v1: { handle: 'tpl/v1.raw', timestamp: 1 } });
    await expect(fetchTemplate('r:tpl:v1', { store, repositories, context })).resolves.toMatchObject({
      status: 'downloaded',
    });
  });

  it('refuses a handle that a symlink leads outside the source root', async () => {
    await mkdir(join(ws.www, 'tpl'), { recursive: true });
    await symlink('/etc/passwd', join(ws.www, 'tpl/evil.xz'));
    const { store, repositories, context } = await setupFor({ v1: { handle: 'tpl/evil', timestamp: 1 } });
    await expect(fetchTemplate('r:tpl:v1', { store, repositories, context })).rejects.toMatchObject({
      code: 'ENTRY_BROKEN',
    });
  });

  it('refuses handles with .. segments before touching the disk', async () => {
    const { store, repositories, context } = await setupFor({ v1: { handle: '../../etc/passwd', timestamp: 1 } });
    const error = await fetchTemplate('r:tpl:v1', { store, repositories, context }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ENTRY_BROKEN', fields: { jsonPath: 'templates.tpl.versions.v1.handle' } });
  });

  it('decodes with lzma-native where there is no xz command, producing the same image', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    const { store, repositories, context } = await setupFor(
      { v1: { handle: 'tpl/v1.raw', timestamp: 1 } },
      { decoder: 'lzma-native' },
    );
    const result = await fetchTemplate('r:tpl:v1', { store, repositories, context });
    expect(await digestOf(result.path)).toBe(await digestOf(disk));
    const info = await stat(result.path);
    expect(info.blocks * 512).toBeLessThan(info.size / 4);
  });

  it('says TOOL_MISSING when an xz image arrives and no decoder exists', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    const { store, repositories, context } = await setupFor(
      { v1: { handle: 'tpl/v1.raw', timestamp: 1 } },
      { decoder: 'xz', env: { PATH: '/nonexistent' } },
    );
    await expect(fetchTemplate('r:tpl:v1', { store, repositories, context })).rejects.toMatchObject({
      code: 'TOOL_MISSING',
      fields: { tool: 'xz' },
    });
    expect(await ws.storeFiles()).toEqual(['.tmp']);
  });

  it('refuses a qcow2 that names a backing file, before qemu-img ever opens it', async () => {
    const overlay = join(ws.dir, 'overlay.qcow2');
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', '/etc/passwd', overlay, '1M'], {
      env: { PATH: TOOL_PATH },
    });
    await publishImage(ws.www, 'tpl/v1.qcow2', overlay, { xz: false });
    const { store, repositories, context } = await setupFor({ v1: { handle: 'tpl/v1.qcow2', timestamp: 1 } });
    const error = await fetchTemplate('r:tpl:v1', { store, repositories, context }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'FORMAT_UNSUPPORTED', fields: { format: 'qcow2' } });
    expect((error as Error).message).toContain('backing file');
    expect(await ws.storeFiles()).toEqual(['.tmp']);
  });

  it.each([
    [
      'gzip data',
      async (path: string) =>
        void (await execa('gzip', ['-k', '-c', disk], { encoding: 'buffer' }).then((r) => writeFile(path, r.stdout))),
    ],
    [
      'an HTML page',
      async (path: string) => writeFile(path, '<!DOCTYPE html><html><body>Sign in to the Wi-Fi</body></html>'),
    ],
    [
      'bzip2 data',
      async (path: string) =>
        void (await execa('bzip2', ['-k', '-c', disk], { encoding: 'buffer' }).then((r) => writeFile(path, r.stdout))),
    ],
    [
      'a tar archive',
      async (path: string) => void (await execa('tar', ['-cf', path, '-C', dirname(disk), basename(disk)])),
    ],
    ['a zip archive', async (path: string) => void (await execa('zip', ['-q', '-j', path, disk]))],
    ['an ELF executable', async (path: string) => copyFile('/bin/true', path)],
  ])('refuses %s as FORMAT_UNSUPPORTED', async (_what, make) => {
    const file = join(ws.dir, 'bad.img');
    await make(file);
    // Whole 512-byte sectors, as a raw image would be: refused for what it is, not for its length.
    await truncate(file, Math.ceil((await stat(file)).size / 512) * 512);
    await publishImage(ws.www, 'tpl/v1.img', file, { xz: false });
    const { store, repositories, context } = await setupFor({ v1: { handle: 'tpl/v1.img', timestamp: 1 } });
    await expect(fetchTemplate('r:tpl:v1', { store, repositories, context })).rejects.toMatchObject({
      code: 'FORMAT_UNSUPPORTED',
    });
    expect(await ws.storeFiles()).toEqual(['.tmp']);
  });

  it('refuses an image whose format differs from the declared one', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    const { store, repositories, context } = await setupFor({
      v1: { handle: 'tpl/v1.raw', timestamp: 1, format: 'qcow2' },
    });
    await expect(fetchTemplate('r:tpl:v1', { store, repositories, context })).rejects.toMatchObject({
      code: 'FORMAT_MISMATCH',
      fields: { expected: 'qcow2', actual: 'raw' },
    });
  });

  it.each([
    ['not JSON', 'distro=el7'],
    ['a JSON array', '["a"]'],
  ])('refuses .metadata that is %s before downloading the image', async (_what, metadata) => {
    await publishImage(ws.www, 'tpl/v1.raw', disk, { metadata });
    const { store, repositories, context } = await setupFor({ v1: { handle: 'tpl/v1.raw', timestamp: 1 } });
    await expect(fetchTemplate('r:tpl:v1', { store, repositories, context })).rejects.toMatchObject({
      code: 'METADATA_INVALID',
    });
    expect(await ws.storeFiles()).toEqual(['.tmp']);
  });

  it('stores {} when the source has no metadata', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk, { metadata: null });
    const { store, repositories, context } = await setupFor({ v1: { handle: 'tpl/v1.raw', timestamp: 1 } });
    const { path } = await fetchTemplate('r:tpl:v1', { store, repositories, context });
    expect(await readFile(`${path}.metadata`, 'utf8')).toBe('{}');
  });

  it('fails with DECODE_FAILED on truncated xz and stores nothing', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    const xz = join(ws.www, 'tpl/v1.raw.xz');
    const bytes = await readFile(xz);
    await writeFile(xz, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const { store, repositories, context } = await setupFor({ v1: { handle: 'tpl/v1.raw', timestamp: 1 } });
    await expect(fetchTemplate('r:tpl:v1', { store, repositories, context })).rejects.toMatchObject({
      code: 'DECODE_FAILED',
    });
    expect(await ws.storeFiles()).toEqual(['.tmp']);
  });
});
