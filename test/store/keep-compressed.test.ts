// keepCompressed: a fetch keeps the verified source .xz beside the entry; du, verify, rm and prune treat it as part of the entry.
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createContext,
  diskUsage,
  fetchTemplate,
  loadRepositories,
  openStore,
  pruneStore,
  removeTemplate,
  verifyTemplate,
} from '../../src/index.js';
import { TOOL_PATH, digestOf, makeDisk, publishImage, toQcow2 } from '../helpers/images.js';
import { lagoRepo, withoutLockFiles, workspace, type Workspace } from '../helpers/env.js';

let ws: Workspace;
beforeEach(async () => {
  ws = await workspace();
});
afterEach(async () => {
  await ws.cleanup();
});

async function setup(templates: Record<string, Record<string, Record<string, unknown>>>) {
  const context = createContext({ env: { PATH: TOOL_PATH, HOME: ws.dir } });
  const store = await openStore({ root: ws.store, keepCompressed: true });
  const repositories = await loadRepositories({
    context,
    store,
    repos: [await ws.writeRepo('r', lagoRepo('r', ws, templates))],
  });
  return { context, store, repositories };
}

describe('keepCompressed', () => {
  it('keeps the verified .xz (http with resume, and a file source), records its SHA-256, and counts it in du', async () => {
    const disk = await makeDisk(join(ws.dir, 'a.raw'), { sizeMiB: 4, dataKiB: 256 });
    const qcow2 = await toQcow2(disk, join(ws.dir, 'a.qcow2'));
    await publishImage(ws.www, 'a/v1', disk);
    await publishImage(ws.www, 'q/v1', qcow2);
    const { store, repositories, context } = await setup({
      a: { v1: { source: 'web', handle: 'a/v1', timestamp: 1 } },
      q: { v1: { source: 'disk', handle: 'q/v1', timestamp: 1 } },
    });
    for (const ref of ['r:a:v1', 'r:q:v1']) await fetchTemplate(ref, { store, repositories, context });
    expect(await digestOf(join(ws.store, 'r:a:v1.xz'), 'sha256')).toBe(
      await digestOf(join(ws.www, 'a/v1.xz'), 'sha256'),
    );
    expect(await digestOf(join(ws.store, 'r:q:v1.xz'), 'sha256')).toBe(
      await digestOf(join(ws.www, 'q/v1.xz'), 'sha256'),
    );
    const record = JSON.parse(
      await (await import('node:fs/promises')).readFile(join(ws.store, 'r:q:v1.record.json'), 'utf8'),
    ) as { kept: { xz: { digest: string; size: number } } };
    expect(record.kept.xz).toEqual({
      digest: `sha256:${await digestOf(join(ws.www, 'q/v1.xz'), 'sha256')}`,
      size: (await stat(join(ws.www, 'q/v1.xz'))).size,
    });
    const usage = await diskUsage({ store });
    expect(usage.total.size).toBe(
      2 * 4 * 2 ** 20 + (await stat(join(ws.www, 'a/v1.xz'))).size + (await stat(join(ws.www, 'q/v1.xz'))).size,
    );
    expect(await readdir(join(ws.store, '.tmp', 'r:a:v1')).catch(() => [])).toEqual([]);
  });

  it('verify finds a damaged kept .xz; rm and prune remove it with the entry', async () => {
    const disk = await makeDisk(join(ws.dir, 'a.raw'), { sizeMiB: 2, dataKiB: 128 });
    await publishImage(ws.www, 'a/v1', disk);
    await publishImage(ws.www, 'b/v1', disk);
    const { store, repositories, context } = await setup({
      a: { v1: { source: 'web', handle: 'a/v1', timestamp: 1 } },
      b: { v1: { source: 'web', handle: 'b/v1', timestamp: 1 } },
    });
    await fetchTemplate('r:a', { store, repositories, context });
    await fetchTemplate('r:b', { store, repositories, context });
    expect((await verifyTemplate('r:a:v1', { store })).status).toBe('ok');
    await writeFile(join(ws.store, 'r:a:v1.xz'), 'not the xz any more');
    expect(await verifyTemplate('r:a:v1', { store })).toMatchObject({
      status: 'corrupt',
      file: join(ws.store, 'r:a:v1.xz'),
    });
    // A short reference goes through the repositories; what is gone is NOT_STORED.
    expect(await removeTemplate('r:a', { store, repositories })).toMatchObject({ ref: 'r:a:v1' });
    await expect(verifyTemplate('r:a:v1', { store })).rejects.toMatchObject({ code: 'NOT_STORED' });
    await pruneStore({ store, olderThanMs: 0, now: () => Date.now() + 1000 });
    expect(withoutLockFiles(await readdir(ws.store)).filter((name) => name.startsWith('r:'))).toEqual([]);
  });
});
