// A store within bounds: a fetch makes room (least recently used first, never a depended-on entry) or refuses before downloading.
import { mkdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fetchTemplate, listStored, openStore, useTemplate } from '../../src/index.js';
import { freeBytes } from '../../src/store/room.js';
import { TOOL_PATH, makeDisk, publishImage } from '../helpers/images.js';
import { lagoRepo, librarySetup, runCli, workspace, type Workspace } from '../helpers/env.js';

let disks: string[];
let ws: Workspace;
let repo: string;

const run = (file: string, args: string[]) => execa(file, args, { env: { PATH: TOOL_PATH } });

beforeAll(async () => {
  const shared = await workspace();
  // 1 MiB of random data each: about 1 MiB of xz, and 1 MiB and a little allocated once stored.
  disks = await Promise.all(
    ['a', 'b', 'c', 'd'].map((name) =>
      makeDisk(join(shared.dir, `${name}.raw`), { sizeMiB: 8, dataKiB: 1024, label: name }),
    ),
  );
});
beforeEach(async () => {
  ws = await workspace();
  const versions: Record<string, Record<string, unknown>> = {};
  for (const [i, name] of ['v1', 'v2', 'v3', 'v4'].entries()) {
    await publishImage(ws.www, `tpl/${name}.raw`, disks[i]!);
    versions[name] = { source: 'web', handle: `tpl/${name}.raw`, timestamp: i + 1 };
  }
  repo = await ws.writeRepo('r', lagoRepo('r', ws, { tpl: versions }));
});
afterEach(async () => {
  await ws.cleanup();
});

/** Marks an entry as last used `minutesAgo`. */
async function usedAgo(store: string, version: string, minutesAgo: number) {
  const time = new Date(Date.now() - minutesAgo * 60_000);
  await utimes(join(store, `r:tpl:${version}.users`), time, time);
}

describe('room in the store', () => {
  it('evicts the least recently used entries nothing depends on to stay under maxBytes', async () => {
    const { repositories, context } = await librarySetup(ws, [repo]);
    let store = await openStore({ root: ws.store });
    for (const version of ['v1', 'v2', 'v3']) await fetchTemplate(`r:tpl:${version}`, { store, repositories, context });
    const vm = join(ws.dir, 'vm.qcow2');
    await writeFile(vm, 'disk');
    await useTemplate('r:tpl:v1', { store, by: vm });
    // v1 is the oldest but depended on; v2 older than v3.
    await usedAgo(ws.store, 'v1', 30);
    await usedAgo(ws.store, 'v2', 20);
    await usedAgo(ws.store, 'v3', 10);
    const used = (await listStored({ store })).reduce((sum, entry) => sum + entry.diskSize, 0);
    // Room for about one more: v4 needs its xz and its image.
    store = await openStore({ root: ws.store, maxBytes: used + 1.5 * 2 ** 20 });
    const result = await fetchTemplate('r:tpl:v4', { store, repositories, context });
    expect(result.status).toBe('downloaded');
    expect((await listStored({ store })).map((entry) => entry.ref).sort()).toEqual([
      'r:tpl:v1',
      'r:tpl:v3',
      'r:tpl:v4',
    ]);
  });

  it('refuses with STORE_FULL, before any image byte lands and evicting nothing, when it could not fit', async () => {
    const { repositories, context } = await librarySetup(ws, [repo]);
    const open = await openStore({ root: ws.store });
    await fetchTemplate('r:tpl:v1', { store: open, repositories, context });
    const vm = join(ws.dir, 'vm.qcow2');
    await writeFile(vm, 'disk');
    await useTemplate('r:tpl:v1', { store: open, by: vm });
    // v3 depends on nothing, but removing it would not make room: it is kept.
    await fetchTemplate('r:tpl:v3', { store: open, repositories, context });
    const store = await openStore({ root: ws.store, maxBytes: 2 ** 20 });
    await expect(fetchTemplate('r:tpl:v2', { store, repositories, context })).rejects.toMatchObject({
      code: 'STORE_FULL',
      fields: { ref: 'r:tpl:v2' },
    });
    expect((await listStored({ store })).map((entry) => entry.ref)).toEqual(['r:tpl:v1', 'r:tpl:v3']);
    // The CLI says so in one line, with exit 9; TEMPLATES_STORE_MAX_BYTES sets the limit.
    const cli = await runCli(['fetch', '--json', '--repo', repo, '--store', ws.store, 'r:tpl:v2'], {
      TEMPLATES_STORE_MAX_BYTES: String(2 ** 20),
    });
    expect(cli.exitCode).toBe(9);
    expect(JSON.parse(cli.stdout).error).toMatchObject({ code: 'STORE_FULL' });
    expect(cli.stderr).toMatch(/^templates: no room for r:tpl:v2: .*in use by .*: r:tpl:v1; .*\[STORE_FULL\]\n$/);
    await expect(stat(join(ws.store, 'r:tpl:v2'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('keeps minFreeBytes free on the filesystem, evicting first', async () => {
    const small = join(ws.dir, 'small');
    await mkdir(small);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', small]);
    try {
      const { repositories, context } = await librarySetup(ws, [repo]);
      const root = join(small, 'store');
      let store = await openStore({ root });
      for (const version of ['v1', 'v2']) await fetchTemplate(`r:tpl:${version}`, { store, repositories, context });
      await usedAgo(root, 'v1', 20);
      await usedAgo(root, 'v2', 10);
      // Free space now, less a little more than one entry: v3 fits only once v1 (the least recently used) is gone.
      store = await openStore({ root, minFreeBytes: (await freeBytes(root)) - 1.5 * 2 ** 20 });
      expect((await fetchTemplate('r:tpl:v3', { store, repositories, context })).status).toBe('downloaded');
      expect((await listStored({ store })).map((entry) => entry.ref).sort()).toEqual(['r:tpl:v2', 'r:tpl:v3']);
      expect(await freeBytes(root)).toBeGreaterThanOrEqual(store.minFreeBytes);
    } finally {
      await run('umount', [small]);
    }
  });
});
