// Delta fetches: a new version assembled from the stored one and only the chunks it lacks, over nginx; every bad input falls back.
import { createHash, randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { copyFile, mkdir, open, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseIndex } from '../../src/chunks/caibx.js';
import { indexDirectory } from '../../src/api/publish.js';
import { createContext, fetchTemplates, type ProgressEvent } from '../../src/index.js';
import { runCli, workspace, type Workspace } from '../helpers/env.js';
import { TOOL_PATH, digestOf, makeVersionPair, placeVersions } from '../helpers/images.js';

let ws: Workspace;
let v1: string;
let v2: string;
let repo: string;

const context = () => createContext({ env: { PATH: TOOL_PATH } });

/** Fetches REF into the workspace's store, collecting progress events. */
async function fetchOne(ref: string) {
  const events: ProgressEvent[] = [];
  const [result] = await fetchTemplates([ref], {
    repos: [repo],
    store: ws.store,
    context: context(),
    onProgress: (event) => events.push(event),
  });
  return { result: result!, events };
}

const chunkRequests = async () => (await ws.requests('.cacnk')).length;
const wholeRequests = async () =>
  (await ws.requests('v2/disk.raw.zst')).length + (await ws.requests('v2/disk.raw.xz')).length;
const ids = async (handle: string) =>
  parseIndex(await readFile(join(ws.www, `${handle}.caibx`)), handle).chunks.map((chunk) => chunk.id);

beforeAll(async () => {
  ws = await workspace();
  ({ v1, v2 } = await makeVersionPair(ws.dir, { sizeMiB: 24, dataKiB: 8 * 1024, changedKiB: 256, atMiB: 2 }));
  await placeVersions(ws.www, { v1, v2 });
  const summary = await indexDirectory(ws.www, { name: 'pub', baseUrl: ws.baseurl, context: context() });
  repo = summary.output;
  await fetchOne('pub:tpl:v1');
});
afterAll(async () => {
  await ws.cleanup();
});
beforeEach(async () => {
  await rm(join(ws.store, 'pub:tpl:v2'), { force: true });
});

describe('delta fetch', () => {
  it('fetches only the chunks v1 lacks, says so before and in the result, and stores the verified v2', async () => {
    const [old, next] = [new Set(await ids('tpl/v1/disk.raw')), await ids('tpl/v2/disk.raw')];
    const missing = new Set(next.filter((id) => !old.has(id)));
    const [chunksBefore, wholeBefore] = [await chunkRequests(), await wholeRequests()];
    const { result, events } = await fetchOne('pub:tpl:v2');
    expect(await digestOf(result.path)).toBe(await digestOf(v2));
    expect(result.delta).toMatchObject({ fetchedChunks: missing.size, chunks: next.length });
    expect(result.delta!.fetchedBytes + result.delta!.reusedBytes).toBe((await stat(v2)).size);
    expect(await chunkRequests()).toBe(chunksBefore + missing.size);
    expect(await wholeRequests()).toBe(wholeBefore);
    expect(events.find((event) => event.phase === 'delta')).toMatchObject({ fetchedChunks: missing.size });
    // v1 got its own index once, beside it in the store: the next delta reads it instead of chunking v1 again.
    const kept = await stat(join(ws.store, 'pub:tpl:v1.caibx'));
    await rm(join(ws.store, 'pub:tpl:v2'));
    await fetchOne('pub:tpl:v2');
    const again = await stat(join(ws.store, 'pub:tpl:v1.caibx'));
    expect([again.ino, again.ctimeMs]).toEqual([kept.ino, kept.ctimeMs]);
  });

  it("keeps the index it fetched beside v2: the repository's bytes, the seed index of the next version", async () => {
    await fetchOne('pub:tpl:v2');
    expect(await readFile(join(ws.store, 'pub:tpl:v2.caibx'))).toEqual(
      await readFile(join(ws.www, 'tpl', 'v2', 'disk.raw.caibx')),
    );
  });

  it('resumes an interrupted delta fetch: the chunks already in place are neither fetched nor copied again', async () => {
    const [old, next] = [new Set(await ids('tpl/v1/disk.raw')), await ids('tpl/v2/disk.raw')];
    const missing = new Set(next.filter((id) => !old.has(id)));
    const stop = new AbortController();
    const partial = join(ws.store, '.tmp', 'pub:tpl:v2', 'partial.delta');
    await expect(
      fetchTemplates(['pub:tpl:v2'], {
        repos: [repo],
        store: ws.store,
        context: context(),
        signal: stop.signal,
        onProgress: (event) => {
          if (event.phase === 'download' && event.location.includes('default.castr')) stop.abort();
        },
      }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    expect((await stat(partial)).size).toBeGreaterThan(0);
    expect(await readdir(ws.store)).not.toContain('pub:tpl:v2');
    const before = await chunkRequests();
    const { result } = await fetchOne('pub:tpl:v2');
    expect(await digestOf(result.path)).toBe(await digestOf(v2));
    expect(result.delta!.fetchedChunks).toBeLessThan(missing.size);
    expect(await chunkRequests()).toBe(before + result.delta!.fetchedChunks);
    await expect(stat(partial)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a resumed partial file with other bytes where the new version has zeros still gives the verified image', async () => {
    const partial = join(ws.store, '.tmp', 'pub:tpl:v2', 'partial.delta');
    await mkdir(join(ws.store, '.tmp', 'pub:tpl:v2'), { recursive: true });
    const junk = randomBytes((await stat(v2)).size);
    await writeFile(partial, junk);
    const { result } = await fetchOne('pub:tpl:v2');
    expect(await digestOf(result.path)).toBe(await digestOf(v2));
  });

  it('reconstructs a version from an index and chunk store that casync make wrote', async () => {
    const dir = join(ws.www, 'cas');
    for (const version of ['v1', 'v2']) {
      await mkdir(join(dir, 'tpl', version), { recursive: true });
      await copyFile(version === 'v1' ? v1 : v2, join(dir, 'tpl', version, 'disk.raw'));
    }
    const index = join(dir, 'tpl', 'v2', 'disk.raw.caibx');
    await execa('casync', [
      'make',
      `--store=${join(dir, 'default.castr')}`,
      '--chunk-size=8K:32K:128K',
      index,
      join(dir, 'tpl', 'v2', 'disk.raw'),
    ]);
    const version = async (name: string, image: string, caibx?: string) => ({
      source: 'cas',
      handle: `tpl/${name}/disk.raw`,
      timestamp: name === 'v1' ? 1 : 2,
      hash: `sha256:${await digestOf(image, 'sha256')}`,
      ...(caibx
        ? {
            caibx_hash: `sha256:${createHash('sha256')
              .update(await readFile(caibx))
              .digest('hex')}`,
          }
        : {}),
    });
    const json = join(ws.dir, 'cas.json');
    await writeFile(
      json,
      JSON.stringify({
        name: 'cas',
        sources: { cas: { type: 'http', args: { baseurl: `${ws.baseurl}cas/` } } },
        templates: { tpl: { versions: { v1: await version('v1', v1), v2: await version('v2', v2, index) } } },
      }),
    );
    const options = { repos: [json], store: ws.store, context: context() };
    await fetchTemplates(['cas:tpl:v1'], options);
    const [result] = await fetchTemplates(['cas:tpl:v2'], options);
    expect(await digestOf(result!.path)).toBe(await digestOf(v2));
    expect(result!.delta!.fetchedChunks).toBeGreaterThan(0);
    expect(result!.delta!.reusedBytes).toBeGreaterThan(result!.delta!.fetchedBytes);
  });

  it('resolve says before any chunk moves what the update costs, and that the delta is taken', async () => {
    const old = new Set(await ids('tpl/v1/disk.raw'));
    const missing = (await ids('tpl/v2/disk.raw')).filter((id) => !old.has(id));
    const before = await chunkRequests();
    const run = await runCli(['resolve', '--json', '--repo', repo, '--store', ws.store, 'pub:tpl:v2']);
    expect(run.exitCode, run.stderr).toBe(0);
    const { delta } = JSON.parse(run.stdout);
    expect(delta).toMatchObject({ chosen: 'delta', fetchedChunks: new Set(missing).size });
    expect(delta.estimatedBytes).toBeLessThan(delta.wholeBytes);
    const text = await runCli(['resolve', '--repo', repo, '--store', ws.store, 'pub:tpl:v2']);
    expect(text.stdout).toMatch(/delta: +taken; reuses .* MiB of stored versions, fetches \d+ of \d+ chunks/);
    expect(await chunkRequests()).toBe(before);
    expect(await readdir(ws.store)).not.toContain('pub:tpl:v2');
  });

  it('gives the CLI result the delta figures', async () => {
    const run = await runCli(['fetch', '--json', '--repo', repo, '--store', ws.store, 'pub:tpl:v2']);
    expect(run.exitCode).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      ref: 'pub:tpl:v2',
      status: 'downloaded',
      delta: { chunks: expect.any(Number) },
    });
    expect(run.stderr).toMatch(/delta: .* reused from stored images, fetching \d+ of \d+ chunks/);
  });

  it('takes a chunk a seed no longer holds (its bytes changed since it was indexed) from the chunk store', async () => {
    const seed = join(ws.store, 'pub:tpl:v1');
    const before = await stat(seed);
    const file = await open(seed, 'r+');
    await file.write(randomBytes(4096), 0, 4096, 8 * 1024 * 1024);
    await file.close();
    await utimes(seed, before.atime, before.mtime);
    try {
      const [old, next] = [new Set(await ids('tpl/v1/disk.raw')), await ids('tpl/v2/disk.raw')];
      const missing = new Set(next.filter((id) => !old.has(id)));
      const { result } = await fetchOne('pub:tpl:v2');
      expect(await digestOf(result.path)).toBe(await digestOf(v2));
      // The chunk under the changed bytes came from the chunk store too.
      expect(result.delta!.fetchedChunks).toBeGreaterThan(missing.size);
    } finally {
      await copyFile(v1, seed);
      await utimes(seed, before.atime, before.mtime);
    }
  });

  it.each([
    [
      'a chunk whose bytes do not match its id',
      'CHUNK_MISMATCH',
      async (missing: string) => {
        const path = join(ws.www, 'default.castr', missing.slice(0, 4), `${missing}.cacnk`);
        const good = await readFile(path);
        await rm(path);
        await writeFile(
          path,
          await readFile(
            join(
              ws.www,
              'default.castr',
              (await ids('tpl/v1/disk.raw'))[3]!.slice(0, 4),
              `${(await ids('tpl/v1/disk.raw'))[3]!}.cacnk`,
            ),
          ),
        );
        return () => writeFile(path, good);
      },
    ],
    [
      'a chunk missing from the chunk store',
      'CHUNK_MISMATCH',
      async (missing: string) => {
        const path = join(ws.www, 'default.castr', missing.slice(0, 4), `${missing}.cacnk`);
        const good = await readFile(path);
        await rm(path);
        return () => writeFile(path, good);
      },
    ],
    [
      'an index that is not the one the repository lists',
      'HASH_MISMATCH',
      async () => {
        const path = join(ws.www, 'tpl', 'v2', 'disk.raw.caibx');
        const good = await readFile(path);
        // Its size as listed, one byte of an id changed: only its digest tells.
        const other = Buffer.from(good);
        other.writeUInt8(other.readUInt8(other.length - 60) ^ 0xff, other.length - 60);
        await writeFile(path, other);
        return () => writeFile(path, good);
      },
    ],
  ])('falls back to the whole file on %s (%s), storing the verified image', async (_name, code, damage) => {
    const [old, next] = [new Set(await ids('tpl/v1/disk.raw')), await ids('tpl/v2/disk.raw')];
    const restore = await damage(next.find((id) => !old.has(id))!);
    try {
      const wholeBefore = await wholeRequests();
      const { result, events } = await fetchOne('pub:tpl:v2');
      expect(events.find((event) => event.phase === 'delta-failed')).toMatchObject({ code });
      expect(result.delta).toBeUndefined();
      expect(await digestOf(result.path)).toBe(await digestOf(v2));
      expect(await wholeRequests()).toBe(wholeBefore + 1);
    } finally {
      await restore();
    }
  });
});
