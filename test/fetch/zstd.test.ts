// zstd as the preferred compressed form: index writes and lists `.zst`, fetch takes it only when listed, falls back to `.xz`.
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { indexDirectory } from '../../src/api/publish.js';
import { fetchTemplate, resolveTemplate } from '../../src/index.js';
import { digestOf, makeDisk, publishImage } from '../helpers/images.js';
import { lagoRepo, librarySetup, runCli, workspace, type Workspace } from '../helpers/env.js';

let disk: string;
let ws: Workspace;

beforeAll(async () => {
  const shared = await workspace();
  disk = await makeDisk(join(shared.dir, 'a.raw'), { sizeMiB: 16, dataKiB: 1024, label: 'a' });
});
beforeEach(async () => {
  ws = await workspace();
});
afterEach(async () => {
  await ws.cleanup();
});

const record = async (ref: string) =>
  JSON.parse(await readFile(join(ws.store, `${ref}.record.json`), 'utf8')) as {
    source: string;
    verified: { of: string; digest: string };
  };

async function repoWith(version: Record<string, unknown>) {
  return ws.writeRepo(
    'r',
    lagoRepo('r', ws, { tpl: { v1: { source: 'web', handle: 'tpl/v1.raw', timestamp: 1, ...version } } }),
  );
}

describe('index writes a .zst', () => {
  it('beside the .xz, listed with its sha256 and size; compressed_hash keeps meaning the .xz; a fetch takes only the .zst', async () => {
    await publishImage(ws.www, 'tpl/v1/disk.raw', disk, { xz: false, plain: true });
    const summary = await indexDirectory(ws.www, { name: 'r', baseUrl: ws.baseurl, zstdLevel: 3 });
    expect(summary.problems).toEqual([]);
    const json = JSON.parse(await readFile(summary.output, 'utf8'));
    const listed = json.templates.tpl.versions.v1;
    const zst = join(ws.www, 'tpl/v1/disk.raw.zst');
    expect(listed).toMatchObject({
      hash: `sha1:${await digestOf(disk)}`,
      compressed_hash: `sha256:${await digestOf(join(ws.www, 'tpl/v1/disk.raw.xz'), 'sha256')}`,
      zst_hash: `sha256:${await digestOf(zst, 'sha256')}`,
      zst_size: (await stat(zst)).size,
    });
    const { store, repositories, context } = await librarySetup(ws, [summary.output]);
    expect((await resolveTemplate('r:tpl:v1', { repositories, context })).urls[0]).toBe(
      `${ws.baseurl}tpl/v1/disk.raw.zst`,
    );
    const result = await fetchTemplate('r:tpl:v1', { store, repositories, context });
    expect(await digestOf(result.path)).toBe(await digestOf(disk));
    expect(await record('r:tpl:v1')).toMatchObject({
      source: `${ws.baseurl}tpl/v1/disk.raw.zst`,
      verified: { of: 'zst', digest: listed.zst_hash },
    });
    expect(await ws.requests('/tpl/v1/disk.raw.zst')).toHaveLength(1);
    expect(await ws.requests('/tpl/v1/disk.raw.xz')).toHaveLength(0);
    // zstd --sparse writes holes through the descriptor, as xz does.
    const info = await stat(result.path);
    expect(info.blocks * 512).toBeLessThan(info.size / 4);
  });

  it('--formats xz writes none and removes one written before; a second run is incremental', async () => {
    await publishImage(ws.www, 'tpl/v1/disk.raw', disk, { xz: false, plain: true });
    await indexDirectory(ws.www, { name: 'r', zstdLevel: 3 });
    const again = await indexDirectory(ws.www, { name: 'r', zstdLevel: 3 });
    expect(again.images.map((image) => image.status)).toEqual(['unchanged']);
    const xzOnly = await runCli(['index', ws.www, '--name', 'r', '--formats', 'xz', '-q']);
    expect(xzOnly.exitCode).toBe(0);
    expect(await stat(join(ws.www, 'tpl/v1/disk.raw.zst')).catch(() => undefined)).toBeUndefined();
    expect(
      JSON.parse(await readFile(join(ws.www, 'r.json'), 'utf8')).templates.tpl.versions.v1.zst_hash,
    ).toBeUndefined();
    const bad = await runCli(['index', ws.www, '--name', 'r', '--formats', 'zst']);
    expect(bad.exitCode).toBe(2);
  });
});

describe('fetch chooses the .zst only when it should', () => {
  it('a lago repository (no zst fields) costs no .zst request, even when one exists', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk, { zst: true });
    const { store, repositories, context } = await librarySetup(ws, [await repoWith({})]);
    await fetchTemplate('r:tpl:v1', { store, repositories, context });
    expect(await ws.requests('.zst')).toHaveLength(0);
    expect(await ws.requests('/tpl/v1.raw.xz')).toHaveLength(1);
  });

  it('without the zstd command, the .xz is taken', async () => {
    const published = await publishImage(ws.www, 'tpl/v1.raw', disk, { zst: true });
    const { store, repositories, context } = await librarySetup(ws, [await repoWith(published.zst!)], { zstd: false });
    const result = await fetchTemplate('r:tpl:v1', { store, repositories, context });
    expect(await digestOf(result.path)).toBe(await digestOf(disk));
    expect(await ws.requests('.zst')).toHaveLength(0);
    expect((await record('r:tpl:v1')).verified.of).toBe('image');
  });

  it('a listed .zst that is absent (404) falls back to the .xz', async () => {
    const published = await publishImage(ws.www, 'tpl/v1.raw', disk, { zst: true });
    await rm(join(ws.www, 'tpl/v1.raw.zst'));
    const { store, repositories, context } = await librarySetup(ws, [
      await repoWith({ ...published.zst, compressed_hash: `sha256:${published.xzSha256}` }),
    ]);
    const result = await fetchTemplate('r:tpl:v1', { store, repositories, context });
    expect(await digestOf(result.path)).toBe(await digestOf(disk));
    expect((await ws.requests('/tpl/v1.raw.zst')).map((line) => line.split(' ')[2])).toEqual(['404']);
    expect((await record('r:tpl:v1')).verified.of).toBe('compressed');
  });
});
