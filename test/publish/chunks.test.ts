import { copyFile, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseIndex } from '../../src/chunks/caibx.js';
import { indexDirectory } from '../../src/api/publish.js';
import { createContext, parseRepository } from '../../src/index.js';
import { runCli, workspace, type Workspace } from '../helpers/env.js';
import { TOOL_PATH, digestOf, toQcow2, makeVersionPair, placeVersions } from '../helpers/images.js';

let ws: Workspace;
let v1: string;
let v2: string;
const context = () => createContext({ env: { PATH: TOOL_PATH } });
const casync = (args: string[]) => execa('casync', args, { cwd: ws.dir, env: { PATH: TOOL_PATH }, extendEnv: false });
const chunkFiles = async (dir: string) =>
  (await readdir(join(dir, 'default.castr'), { recursive: true })).filter((name) => name.endsWith('.cacnk'));

beforeAll(async () => {
  ws = await workspace();
  // v2 is v1 with 256 KiB rewritten in its middle: most chunks are shared.
  ({ v1, v2 } = await makeVersionPair(ws.dir, { sizeMiB: 16, dataKiB: 6 * 1024, changedKiB: 256, atMiB: 3 }));
  await placeVersions(ws.www, { v1, v2 });
  // Given as .xz only: decoded to be chunked. A qcow2: not chunked.
  await copyFile(v1, join(ws.www, 'only-1.raw'));
  await execa('xz', ['-T0', '-3', join(ws.www, 'only-1.raw')]);
  await toQcow2(v1, join(ws.www, 'q-1.qcow2'));
});
afterAll(async () => {
  await ws.cleanup();
});

describe('templates index: chunk indexes', () => {
  it("lists each raw image's .caibx by digest, as casync make cuts it, with every chunk stored once", async () => {
    const summary = await indexDirectory(ws.www, { name: 'pub', formats: ['xz'], context: context() });
    expect(summary.problems).toEqual([]);
    const repository = parseRepository(await readFile(summary.output, 'utf8'), summary.output, {
      env: {},
      home: '/',
      allowFileSources: true,
    });
    const versionOf = (template: string, version: string) => {
      const entry = repository.templates.get(template);
      if (!entry?.ok) throw new Error(`no ${template}`);
      const spec = entry.value.versions.get(version);
      if (!spec?.ok) throw new Error(`no ${template}:${version}`);
      return spec.value;
    };
    const indexes = { 'tpl:v1': 'tpl/v1/disk.raw', 'tpl:v2': 'tpl/v2/disk.raw', 'only:1': 'only-1.raw' };
    for (const [ref, handle] of Object.entries(indexes)) {
      const [template, version] = ref.split(':') as [string, string];
      const spec = versionOf(template, version);
      const caibx = join(ws.www, `${handle}.caibx`);
      expect(spec.caibx).toEqual({
        digest: { algorithm: 'sha256', hex: await digestOf(caibx, 'sha256') },
        size: expect.any(Number),
      });
      // The default sizes, 8K:32K:128K, cut as casync cuts them.
      await casync([
        'make',
        '--chunk-size=8192:32768:131072',
        `--store=${join(ws.dir, 'theirs.castr')}`,
        'theirs.caibx',
        join(ws.dir, handle.includes('/v2/') ? 'v2.raw' : 'v1.raw'),
      ]);
      expect((await readFile(caibx)).equals(await readFile(join(ws.dir, 'theirs.caibx')))).toBe(true);
    }
    expect(versionOf('q', '1').caibx).toBeUndefined();
    const ids = new Set<string>();
    for (const handle of Object.values(indexes))
      for (const chunk of parseIndex(await readFile(join(ws.www, `${handle}.caibx`)), handle).chunks) ids.add(chunk.id);
    expect(await chunkFiles(ws.www)).toHaveLength(ids.size);
  });

  it('serves casync: extract v2 over HTTP seeded by v1, fetching only the chunks v1 lacks', async () => {
    const out = join(ws.dir, 'extracted.raw');
    await rm(out, { force: true });
    await casync([
      'extract',
      `--seed=${v1}`,
      `--store=${ws.baseurl}default.castr`,
      `${ws.baseurl}tpl/v2/disk.raw.caibx`,
      out,
    ]);
    expect(await digestOf(out)).toBe(await digestOf(v2));
    const ids = async (handle: string) =>
      new Set(parseIndex(await readFile(join(ws.www, `${handle}.caibx`)), handle).chunks.map((chunk) => chunk.id));
    const [old, next] = [await ids('tpl/v1/disk.raw'), await ids('tpl/v2/disk.raw')];
    const missing = [...next].filter((id) => !old.has(id));
    // The rewritten 256 KiB touches a few 32 KiB chunks of the 16 MiB image; casync asked for those alone.
    expect(missing.length).toBeGreaterThan(0);
    expect(missing.length).toBeLessThan(next.size / 4);
    const asked = (await ws.requests('.cacnk')).map((line) => line.split(' ')[1]!.split('/').at(-1)!.slice(0, 64));
    expect(new Set(asked)).toEqual(new Set(missing));
  });

  it('writes no chunk and no index again when nothing changed, and removes them with --no-chunks', async () => {
    const before = await chunkFiles(ws.www);
    const again = await indexDirectory(ws.www, { name: 'pub', formats: ['xz'], context: context() });
    expect(again.written).toBe(false);
    expect(again.bytesOut).toBe(0);
    expect(await chunkFiles(ws.www)).toEqual(before);
    const off = await runCli(['index', ws.www, '--name', 'pub', '--formats', 'xz', '--no-chunks', '--json']);
    expect(off.exitCode).toBe(0);
    expect((await readdir(ws.www, { recursive: true })).filter((name) => name.endsWith('.caibx'))).toEqual([]);
    expect(await readFile(join(ws.www, 'pub.json'), 'utf8')).not.toContain('caibx_hash');
  });

  it('refuses bad --chunk-size values with USAGE before reading anything', async () => {
    for (const bad of ['8K:32K', '64K:32K:128K', '8K:32K:256M', 'a:b:c', '16:32:64']) {
      const result = await runCli(['index', ws.www, '--name', 'pub', '--chunk-size', bad, '--json']);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toMatch(/\[USAGE\]/);
    }
    expect(
      await runCli(['index', ws.www, '--name', 'pub', '--chunk-size', '8K:32K:128K', '--no-chunks']),
    ).toMatchObject({ exitCode: 2 });
  });
});
