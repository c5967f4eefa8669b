// serve --warm newest: the cache host pulls the newest version of each template it lacks, once, so catalogues list them.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexDirectory } from '../../src/api/publish.js';
import { createContext } from '../../src/index.js';
import { runCli, workspace, type Workspace } from '../helpers/env.js';
import { TOOL_PATH, makeVersionPair, placeVersions } from '../helpers/images.js';
import { startServe, type Served } from '../helpers/serve.js';

let ws: Workspace;
let server: Served;

/** GETs of a version's image (either compressed form) at upstream (nginx's log). */
const upstreamGets = async (version: string) =>
  (await ws.requests()).filter(
    (line) => line.startsWith('GET') && new RegExp(`/tpl/${version}/disk\\.raw\\.(xz|zst)$`).test(line.split(' ')[1]!),
  ).length;

beforeAll(async () => {
  ws = await workspace();
  await placeVersions(ws.www, await makeVersionPair(ws.dir, { sizeMiB: 16, dataKiB: 1024, changedKiB: 128, atMiB: 2 }));
  const summary = await indexDirectory(ws.www, {
    name: 'pub',
    baseUrl: ws.baseurl,
    chunkSizes: false,
    context: createContext({ env: { PATH: TOOL_PATH } }),
  });
  server = await startServe(['--store', join(ws.dir, 'cache'), '--repo', summary.output, '--warm', 'newest'], {
    HOME: ws.dir,
  });
});
afterAll(async () => {
  await server?.stop();
  await ws.cleanup();
});

describe('serve --warm newest', () => {
  it('pulls the newest version of each template once, and the catalogues that list only what is held list it', async () => {
    await expect
      .poll(() => server.logs().some((line) => line.kind === 'warm' && line.ref === 'pub:tpl:v2'), { timeout: 30_000 })
      .toBe(true);
    expect(server.logs().find((line) => line.kind === 'warm')).toMatchObject({ ref: 'pub:tpl:v2', result: 'stored' });
    // The cache host's view of its store catches up with the pull within moments.
    const products = async () =>
      Object.keys(
        ((await (await fetch(`${server.url}/streams/v1/images.json`)).json()) as { products: Record<string, unknown> })
          .products,
      );
    await expect.poll(products, { timeout: 20_000 }).toEqual(['pub:tpl:v2']);
    expect(await (await fetch(`${server.url}/virt-builder/index`)).text()).toMatch(/^name=pub:tpl:v2$/m);
    // Only the newest came from upstream, once.
    expect(await upstreamGets('v2')).toBe(1);
    expect(await upstreamGets('v1')).toBe(0);
  });

  it('makes renditions for the newest version only: an older one brought in later is not copied for the catalogues', async () => {
    const fetched = await runCli([
      'fetch',
      '-q',
      '--repo',
      `${server.url}/repos/pub.json`,
      '--store',
      join(ws.dir, 'n1'),
      'pub:tpl:v1',
    ]);
    expect(fetched.stderr).toBe('');
    // Stored, as the cache host sees it (its usage API lists what it holds).
    await expect
      .poll(async () => (await fetch(`${server.url}/api/1/repositories/pub/templates/tpl/versions/v1`)).status, {
        timeout: 20_000,
      })
      .toBe(200);
    const products = Object.keys(
      ((await (await fetch(`${server.url}/streams/v1/images.json`)).json()) as { products: Record<string, unknown> })
        .products,
    );
    expect(products).toEqual(['pub:tpl:v2']);
    const cache = await readdir(join(ws.dir, 'cache'));
    expect(cache).toContain('pub:tpl:v1');
    expect(cache).toContain('pub:tpl:v2.qcow2');
    expect(cache).not.toContain('pub:tpl:v1.qcow2');
  });

  it('refuses a value it does not know', async () => {
    const bad = await startServe(['--store', join(ws.dir, 'other'), '--warm', 'all']).catch((error: Error) => error);
    expect(String(bad)).toMatch(/--warm takes newest or none.*\[USAGE\]/);
  });
});
