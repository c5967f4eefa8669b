// templates clone: a VM disk backed by (or copied from) the stored image, registered so rm and prune keep the template.
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cloneTemplate, listStored, openStore, type Store } from '../../src/index.js';
import { TOOL_PATH, digestOf, makeDisk, publishImage } from '../helpers/images.js';
import { lagoRepo, librarySetup, runCli, workspace, type Workspace } from '../helpers/env.js';

let disk: string;
let ws: Workspace;

/** The live dependents the store lists for a stored reference. */
const dependentsOf = async (store: Store, ref: string) =>
  (await listStored({ store })).find((entry) => entry.ref === ref)?.dependents;
let repo: string;

const run = (file: string, args: string[]) => execa(file, args, { env: { PATH: TOOL_PATH } });

beforeAll(async () => {
  const shared = await workspace();
  disk = await makeDisk(join(shared.dir, 'a.raw'), { sizeMiB: 16, dataKiB: 1024 });
});
beforeEach(async () => {
  ws = await workspace();
  await publishImage(ws.www, 'tpl/v1.raw', disk);
  repo = await ws.writeRepo(
    'r',
    lagoRepo('r', ws, { tpl: { v1: { source: 'web', handle: 'tpl/v1.raw', timestamp: 1 } } }),
  );
});
afterEach(async () => {
  await ws.cleanup();
});

const cli = (args: string[], store = ws.store) => runCli([...args, '--repo', repo, '--store', store]);
const stored = () => join(ws.store, 'r:tpl:v1');

describe('templates clone', () => {
  it('makes a qcow2 overlay backed by the stored image (format pinned), fetching the template first', async () => {
    const dest = join(ws.dir, 'vm1.qcow2');
    const result = await cli(['clone', '--json', 'r:tpl:v1', dest]);
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      ref: 'r:tpl:v1',
      path: dest,
      image: stored(),
      method: 'overlay',
      fetch: { status: 'downloaded' },
    });
    const chain = JSON.parse(
      (await run('qemu-img', ['info', '--backing-chain', '--output=json', dest])).stdout,
    ) as Array<Record<string, unknown>>;
    expect(chain.map((layer) => layer.format)).toEqual(['qcow2', 'raw']);
    expect(chain[0]).toMatchObject({
      'backing-filename': stored(),
      'backing-filename-format': 'raw',
      'virtual-size': 16 * 2 ** 20,
    });
    expect((await run('qemu-img', ['check', dest])).exitCode).toBe(0);

    // The VM writes into its disk; the template stays as it was.
    await run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xab 0 1M', dest]);
    expect(await digestOf(stored())).toBe(await digestOf(disk));
    const written = join(ws.dir, 'written.raw');
    await run('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', dest, written]);
    expect(await digestOf(written)).not.toBe(await digestOf(disk));
  });

  it('keeps the template while the clone exists: rm refuses, prune keeps; once the clone is gone both free it', async () => {
    const dest = join(ws.dir, 'vm.qcow2');
    expect((await cli(['clone', '-q', 'r:tpl:v1', dest])).stdout).toBe(`${dest}\n`);
    expect(await dependentsOf(await openStore({ root: ws.store }), 'r:tpl:v1')).toEqual([dest]);
    const refused = await cli(['rm', '--json', 'r:tpl:v1']);
    expect(refused.exitCode).toBe(10);
    expect(JSON.parse(refused.stdout).error).toMatchObject({ code: 'ENTRY_IN_USE', path: dest });
    const pruned = JSON.parse((await cli(['prune', '--older-than', '0s', '--json'])).stdout);
    expect(pruned.removed).toEqual([]);
    expect(pruned.kept).toEqual([{ ref: 'r:tpl:v1', reason: `used by ${dest}` }]);
    await run('rm', [dest]);
    const again = JSON.parse((await cli(['prune', '--older-than', '0s', '--json'])).stdout);
    expect(again.removed.map((entry: { ref: string }) => entry.ref)).toEqual(['r:tpl:v1']);
  });

  it('--copy makes a sparse copy; an existing DEST is refused and left as it was', async () => {
    const dest = join(ws.dir, 'vm.raw');
    const result = JSON.parse((await cli(['clone', '--json', '--copy', 'r:tpl:v1', dest])).stdout);
    // ext4 cannot share blocks: a copy, holes kept.
    expect(result.method).toBe('copy');
    expect(await digestOf(dest)).toBe(await digestOf(disk));
    const [copy, original] = await Promise.all([stat(dest), stat(stored())]);
    expect(copy.size).toBe(original.size);
    expect(copy.blocks).toBeLessThanOrEqual(original.blocks + 8);
    expect(copy.blocks * 512).toBeLessThan(copy.size / 2);

    const nowhere = await cli(['clone', '--json', 'r:tpl:v1', join(ws.dir, 'no-such-dir', 'vm.qcow2')]);
    expect(nowhere.exitCode).toBe(9);
    expect(JSON.parse(nowhere.stdout).error).toMatchObject({ code: 'OUTPUT_IO', path: join(ws.dir, 'no-such-dir') });

    const taken = join(ws.dir, 'taken.qcow2');
    await writeFile(taken, 'mine');
    const refused = await cli(['clone', '--json', 'r:tpl:v1', taken]);
    expect(refused.exitCode).toBe(9);
    expect(JSON.parse(refused.stdout).error).toMatchObject({ code: 'OUTPUT_IO', path: taken });
    expect((await stat(taken)).size).toBe(4);
  });

  it('says TOOL_MISSING when qemu-img is not there, and leaves nothing at DEST', async () => {
    const { store, repositories, context } = await librarySetup(ws, [repo], { qemuImg: '/nonexistent/qemu-img' });
    const dest = join(ws.dir, 'vm.qcow2');
    await expect(cloneTemplate('r:tpl:v1', { dest, store, repositories, context })).rejects.toMatchObject({
      code: 'TOOL_MISSING',
      fields: { tool: '/nonexistent/qemu-img' },
    });
    await expect(stat(dest)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('--copy reflinks where the filesystem shares blocks (XFS)', async () => {
    const mount = join(ws.dir, 'xfs');
    const image = join(ws.dir, 'xfs.img');
    await mkdir(mount);
    await run('truncate', ['-s', '320M', image]);
    await run('mkfs.xfs', ['-q', '-m', 'reflink=1', image]);
    await run('mount', ['-o', 'loop', image, mount]);
    try {
      const { store, repositories, context } = await librarySetup({ ...ws, store: join(mount, 'store') }, [repo]);
      const result = await cloneTemplate('r:tpl:v1', {
        dest: join(mount, 'vm.raw'),
        store,
        repositories,
        context,
        copy: true,
      });
      expect(result.method).toBe('reflink');
      expect(await digestOf(result.path)).toBe(await digestOf(disk));
      expect(await dependentsOf(store, 'r:tpl:v1')).toEqual([result.path]);
    } finally {
      await run('umount', [mount]);
    }
  });
});
