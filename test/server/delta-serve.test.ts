import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexDirectory } from '../../src/api/publish.js';
import { parseIndex } from '../../src/chunks/caibx.js';
import { createContext, fetchTemplates } from '../../src/index.js';
import { workspace, type Workspace } from '../helpers/env.js';
import { TOOL_PATH, digestOf, makeVersionPair, placeVersions } from '../helpers/images.js';
import { startServe, type Served } from '../helpers/serve.js';

let ws: Workspace;
let server: Served;
let v1: string;
let v2: string;
let upstreamJson: Record<string, any>;

const context = () => createContext({ env: { PATH: TOOL_PATH } });
const ids = async (version: string) =>
  parseIndex(await readFile(join(ws.www, 'tpl', version, 'disk.raw.caibx')), version).chunks.map((chunk) => chunk.id);
const missingFromV1 = async () => {
  const old = new Set(await ids('v1'));
  return new Set((await ids('v2')).filter((id) => !old.has(id)));
};
const upstreamChunkRequests = async () => (await ws.requests('.cacnk')).length;

/** A neighbour's store holding v1 (fetched whole through the cache host), then the fetch of v2 through it. */
async function neighbourFetchesV2(name: string) {
  const options = { repos: [`${server.url}/repos/pub.json`], store: join(ws.dir, name), context: context() };
  await fetchTemplates(['pub:tpl:v1'], options);
  const [result] = await fetchTemplates(['pub:tpl:v2'], options);
  return result!;
}

async function metric(kind: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`templates_chunk_bytes_total{kind="${kind}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

beforeAll(async () => {
  ws = await workspace();
  ({ v1, v2 } = await makeVersionPair(ws.dir, { sizeMiB: 24, dataKiB: 8 * 1024, changedKiB: 384, atMiB: 3 }));
  await placeVersions(ws.www, { v1, v2 });
  const summary = await indexDirectory(ws.www, { name: 'pub', baseUrl: ws.baseurl, context: context() });
  upstreamJson = JSON.parse(await readFile(summary.output, 'utf8'));
  server = await startServe(['--store', join(ws.dir, 'cache'), '--repo', summary.output, '--grace', '20s'], {
    HOME: ws.dir,
  });
});
afterAll(async () => {
  await server?.stop();
  await ws.cleanup();
});

describe('serve: casync index and chunk store', () => {
  it("lists each version's index as upstream does, and serves the index byte for byte", async () => {
    const served = await (await fetch(`${server.url}/repos/pub.json`)).json();
    for (const version of ['v1', 'v2']) {
      const up = upstreamJson.templates.tpl.versions[version];
      expect(served.templates.tpl.versions[version]).toMatchObject({ caibx_hash: up.caibx_hash });
      const response = await fetch(`${server.url}/repos/pub/tpl/${version}/image.caibx`);
      expect(response.status).toBe(200);
      expect(Buffer.from(await response.arrayBuffer())).toEqual(
        await readFile(join(ws.www, 'tpl', version, 'disk.raw.caibx')),
      );
    }
  });

  it('a neighbour holding v1 fetches v2 as a delta through it; each missing chunk comes from upstream once, however many ask', async () => {
    const missing = await missingFromV1();
    const before = await upstreamChunkRequests();
    const pulledBefore = await metric('pulled');
    const [a, b] = await Promise.all([neighbourFetchesV2('n1'), neighbourFetchesV2('n2')]);
    for (const result of [a, b]) {
      expect(await digestOf(result.path)).toBe(await digestOf(v2));
      expect(result.delta).toMatchObject({ fetchedChunks: missing.size });
    }
    expect(await upstreamChunkRequests()).toBe(before + missing.size);
    expect(await metric('pulled')).toBeGreaterThan(pulledBefore);
    expect(await metric('served')).toBeGreaterThan(0);
    // A third neighbour: every chunk is the cache host's now.
    const c = await neighbourFetchesV2('n3');
    expect(c.delta).toMatchObject({ fetchedChunks: missing.size });
    expect(await upstreamChunkRequests()).toBe(before + missing.size);
  });

  it('casync extract --seed reconstructs v2 from its index and chunk store', async () => {
    const out = join(ws.dir, 'casync-v2.raw');
    const run = await execa(
      'casync',
      [
        'extract',
        `--seed=${v1}`,
        `--store=${server.url}/repos/pub/default.castr`,
        `${server.url}/repos/pub/tpl/v2/image.caibx`,
        out,
      ],
      { reject: false },
    );
    expect(run.exitCode, run.stderr).toBe(0);
    expect(await digestOf(out)).toBe(await digestOf(v2));
  });

  it('once it stores v2, cuts its chunks from the image (reused) without asking upstream', async () => {
    // The cache host pulls v2 whole when a neighbour asks for the image.
    for (let i = 0; i < 60; i++) {
      const response = await fetch(`${server.url}/repos/pub/tpl/v2/image`, { method: 'GET' });
      await response.arrayBuffer();
      if (response.status === 200) break;
      await sleep(500);
    }
    const before = await upstreamChunkRequests();
    const reusedBefore = await metric('reused');
    const id = [...(await missingFromV1())][0]!;
    // The index first (kept beside the stored image), then a chunk only v2 has.
    expect((await fetch(`${server.url}/repos/pub/tpl/v2/image.caibx`)).status).toBe(200);
    await execa('rm', ['-rf', join(ws.dir, 'cache', '.serve', 'chunks')]);
    const response = await fetch(`${server.url}/repos/pub/default.castr/${id.slice(0, 4)}/${id}.cacnk`);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toMatch(/immutable/);
    await response.arrayBuffer();
    expect(await metric('reused')).toBeGreaterThan(reusedBefore);
    expect(await upstreamChunkRequests()).toBe(before);
  });

  it('answers 404 for a chunk no index lists, a chunk under the wrong prefix and an index of a version without one', async () => {
    const id = 'ab'.repeat(32);
    const cases = [
      `/repos/pub/default.castr/abab/${id}.cacnk`,
      `/repos/pub/default.castr/0000/${(await ids('v1'))[0]}.cacnk`,
      '/repos/nope/tpl/v1/image.caibx',
    ];
    for (const path of cases) {
      const response = await fetch(`${server.url}${path}`);
      expect(response.status, path).toBe(404);
      expect((await response.json()).error.code).toBe('IMAGE_NOT_FOUND');
    }
  });
});
