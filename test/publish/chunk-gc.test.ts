import { mkdtemp, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { indexDirectory } from '../../src/api/publish.js';
import { parseIndex } from '../../src/chunks/caibx.js';
import { createContext } from '../../src/index.js';
import { runCli } from '../helpers/env.js';
import { TOOL_PATH, digestOf, makeVersionPair, placeVersions } from '../helpers/images.js';

let base: string;
let dir: string;
let v1: string;
let v2: string;
const context = () => createContext({ env: { PATH: TOOL_PATH } });
const chunkIds = async () =>
  (await readdir(join(dir, 'default.castr'), { recursive: true }))
    .filter((name) => name.endsWith('.cacnk'))
    .map((name) => name.slice(-70, -6));
const indexIds = async (version: string) =>
  parseIndex(await readFile(join(dir, 'tpl', version, 'disk.raw.caibx')), version).chunks.map((chunk) => chunk.id);
/** Every chunk file's mtime set an hour and a minute back. */
async function age() {
  const old = new Date(Date.now() - 3660_000);
  for (const name of await readdir(join(dir, 'default.castr'), { recursive: true }))
    if (name.endsWith('.cacnk')) await utimes(join(dir, 'default.castr', name), old, old);
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'templates-gc-'));
  ({ v1, v2 } = await makeVersionPair(base, { sizeMiB: 8, dataKiB: 3 * 1024, changedKiB: 256, atMiB: 2 }));
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});
beforeEach(async () => {
  dir = await mkdtemp(join(base, 'dir-'));
  await placeVersions(dir, { v1, v2 });
  await indexDirectory(dir, { name: 'pub', formats: ['xz'], context: context() });
});

describe('templates index --prune-chunks', () => {
  it("removes the chunks only a removed version listed; every remaining index's chunks stay, and casync extracts it", async () => {
    const [old, kept] = [await indexIds('v1'), new Set(await indexIds('v2'))];
    const onlyV1 = new Set(old.filter((id) => !kept.has(id)));
    expect(onlyV1.size).toBeGreaterThan(0);
    await rm(join(dir, 'tpl', 'v1'), { recursive: true });
    const summary = await indexDirectory(dir, {
      name: 'pub',
      formats: ['xz'],
      pruneChunks: { graceMs: 0 },
      context: context(),
    });
    expect(summary.chunks).toMatchObject({ removed: onlyV1.size, kept: kept.size, unreadable: [] });
    expect(new Set(await chunkIds())).toEqual(kept);
    const out = join(base, 'extracted.raw');
    await execa('casync', [
      'extract',
      `--store=${join(dir, 'default.castr')}`,
      join(dir, 'tpl', 'v2', 'disk.raw.caibx'),
      out,
    ]);
    expect(await digestOf(out)).toBe(await digestOf(v2));
  });

  it('keeps unreferenced chunks younger than the grace (another tool may not have written its index yet)', async () => {
    const before = await chunkIds();
    await rm(join(dir, 'tpl', 'v1'), { recursive: true });
    const summary = await indexDirectory(dir, {
      name: 'pub',
      formats: ['xz'],
      pruneChunks: { graceMs: 3600_000 },
      context: context(),
    });
    expect(summary.chunks!.removed).toBe(0);
    expect((await chunkIds()).sort()).toEqual(before.sort());
  });

  it('removes nothing while an index in the directory cannot be read, and names it', async () => {
    const before = await chunkIds();
    await rm(join(dir, 'tpl', 'v1'), { recursive: true });
    await writeFile(join(dir, 'tpl', 'other.caibx'), 'not an index');
    const summary = await indexDirectory(dir, {
      name: 'pub',
      formats: ['xz'],
      pruneChunks: { graceMs: 0 },
      context: context(),
    });
    expect(summary.chunks).toMatchObject({ removed: 0, unreadable: ['tpl/other.caibx'] });
    expect((await chunkIds()).length).toBe(before.length);
  });

  it('the CLI prunes an hour-old chunk; while another index run holds the directory it refuses (LOCK_TIMEOUT, exit 8) and removes nothing', async () => {
    await rm(join(dir, 'tpl', 'v1'), { recursive: true });
    await age();
    const before = await chunkIds();
    const holder = execa('flock', ['-o', join(dir, '.templates-index.lock'), 'sleep', '20'], {
      reject: false,
      stdio: 'ignore',
    });
    try {
      // Held once `flock -n` cannot take it (bounded: 10 s).
      for (let i = 0; i < 100; i++) {
        const probe = await execa('flock', ['-n', join(dir, '.templates-index.lock'), 'true'], { reject: false });
        if (probe.exitCode !== 0) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const refused = await runCli(['index', dir, '--name', 'pub', '--formats', 'xz', '--prune-chunks']);
      expect(refused.exitCode, refused.stderr).toBe(8);
      expect((await chunkIds()).length).toBe(before.length);
    } finally {
      holder.kill();
      await holder;
    }
    const run = await runCli(['index', dir, '--name', 'pub', '--formats', 'xz', '--prune-chunks']);
    expect(run.exitCode, run.stderr).toBe(0);
    const kept = new Set(await indexIds('v2'));
    expect(run.stdout).toMatch(new RegExp(`chunks: removed ${before.length - kept.size} \\(.*\\), kept ${kept.size}`));
  });
});
