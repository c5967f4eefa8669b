// Many processes and killed processes sharing one store: every template downloaded once, nothing half-done ever visible.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TOOL_PATH, digestOf, makeDisk, publishImage } from '../helpers/images.js';
import { CLI, lagoRepo, runCli, visibleEntries, workspace, type Workspace } from '../helpers/env.js';

let ws: Workspace;

beforeEach(async () => {
  ws = await workspace();
});
afterEach(async () => {
  await ws.cleanup();
});

const slow = (w: Workspace) => w.baseurl.replace(/\/(ws-[^/]+)\/$/, '/slow/$1/');
const visible = visibleEntries;

/** A repository (served through nginx's 2 MB/s location) with one template per image. */
async function slowRepo(images: Record<string, string>) {
  const templates: Record<string, Record<string, Record<string, unknown>>> = {};
  for (const [name, image] of Object.entries(images)) {
    await publishImage(ws.www, `${name}/v1.raw`, image);
    templates[name] = { v1: { source: 'web', handle: `${name}/v1.raw`, timestamp: 1 } };
  }
  const repo = lagoRepo('r', ws, templates);
  repo.sources.web.args.baseurl = slow(ws);
  return ws.writeRepo('r', repo);
}

describe('processes sharing a store', () => {
  it('16 processes fetching a mix of 4 templates: all succeed, each template downloaded once, every image verifies', async () => {
    const images: Record<string, string> = {};
    for (const name of ['t0', 't1', 't2', 't3'])
      images[name] = await makeDisk(join(ws.dir, `${name}.raw`), { sizeMiB: 8, dataKiB: 1536, label: name });
    const repo = await slowRepo(images);
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        runCli(['fetch', '--json', '--repo', repo, '--store', ws.store, `r:t${i % 4}:v1`], {
          TEMPLATES_LOCK_STALE_SECONDS: '10',
        }),
      ),
    );
    expect(results.map((r) => r.exitCode)).toEqual(Array(16).fill(0));
    for (const [name, image] of Object.entries(images)) {
      const downloads = (await ws.requests(`/${name}/v1.raw.xz`)).filter((line) => line.split(' ')[2] === '200');
      expect(downloads).toHaveLength(1);
      expect(await digestOf(join(ws.store, `r:${name}:v1`))).toBe(await digestOf(image));
    }
    const statuses = results.map((r) => JSON.parse(r.stdout).status as string);
    expect(statuses.filter((s) => s === 'downloaded')).toHaveLength(4);
  }, 180_000);

  it('survives SIGKILL at random points 20 times: the store holds the verified image or nothing, and the next fetch succeeds', async () => {
    const image = await makeDisk(join(ws.dir, 'big.raw'), { sizeMiB: 16, dataKiB: 5 * 1024 });
    const repo = await slowRepo({ tpl: image });
    const expected = await digestOf(image);
    // A fixed pseudo-random sequence: the kill points differ from run to run of the loop, not from CI run to CI run.
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let round = 0; round < 20; round++) {
      const child = execa(process.execPath, [CLI, 'fetch', '-q', '--repo', repo, '--store', ws.store, 'r:tpl:v1'], {
        env: { PATH: TOOL_PATH, TEMPLATES_LOCK_STALE_SECONDS: '2' },
        extendEnv: false,
        reject: false,
      });
      await sleep(50 + Math.floor(random() * 1500));
      child.kill('SIGKILL');
      await child;
      // The image's rename is the commit point: once it is there it is verified and its sidecars are there too.
      const files = await visible(ws.store);
      if (files.includes('r:tpl:v1')) {
        // .users (the last use) is written right after the publish, so a kill may come between the two.
        expect(files.filter((name) => name !== 'r:tpl:v1.lock' && name !== 'r:tpl:v1.users')).toEqual([
          'r:tpl:v1',
          'r:tpl:v1.hash',
          'r:tpl:v1.metadata',
          'r:tpl:v1.record.json',
        ]);
        expect(await digestOf(join(ws.store, 'r:tpl:v1'))).toBe(expected);
      }
    }
    const last = await runCli(['fetch', '--json', '--repo', repo, '--store', ws.store, 'r:tpl:v1'], {
      TEMPLATES_LOCK_STALE_SECONDS: '2',
    });
    expect(last.exitCode).toBe(0);
    expect(await digestOf(join(ws.store, 'r:tpl:v1'))).toBe(expected);
    expect(await visible(ws.store)).toEqual([
      'r:tpl:v1',
      'r:tpl:v1.hash',
      'r:tpl:v1.metadata',
      'r:tpl:v1.record.json',
      'r:tpl:v1.users',
    ]);
  }, 300_000);
});
