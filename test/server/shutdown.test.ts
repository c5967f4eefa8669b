// SIGTERM: the server stops accepting, lets a pull and a neighbour's download finish within --grace, exits 0; a pull cut off leaves nothing partial.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, withoutLockFiles, workspace, type Workspace } from '../helpers/env.js';
import { digestOf, makeDisk, publishImage } from '../helpers/images.js';
import { startServe, type Served } from '../helpers/serve.js';

let ws: Workspace;
let big: string;
let repo: string;

beforeAll(async () => {
  ws = await workspace();
  // About 6 MiB of xz: three seconds through nginx's 2 MB/s /slow/ location.
  big = await makeDisk(join(ws.dir, 'big.raw'), { sizeMiB: 16, dataKiB: 6 * 1024, label: 'big' });
  await publishImage(ws.www, 'big/v1', big);
  const slow = ws.baseurl.replace(/\/(ws-[^/]+)\/$/, '/slow/$1/');
  repo = await ws.writeRepo('up', {
    name: 'up',
    sources: { slow: { type: 'http', args: { baseurl: slow } } },
    templates: { big: { versions: { v1: { source: 'slow', handle: 'big/v1', timestamp: 1 } } } },
  });
});

afterAll(async () => {
  await ws?.cleanup();
});

/**
 * Until the pull runs and the neighbour has read the sidecars it asks for beside the image (new connections, which
 * shutdown refuses): from then on it needs only the bytes it is following.
 */
async function untilPulling(server: Served): Promise<void> {
  const ready = () =>
    server.logs().some((line) => line.kind === 'pull' && line.event === 'start') &&
    server.logs().some((line) => line.kind === 'request' && String(line.path).endsWith('/image.hash'));
  for (let i = 0; i < 400 && !ready(); i++) await sleep(25);
  await sleep(100);
}

describe('templates serve on SIGTERM', () => {
  it('lets a pull and the neighbour following it finish, refuses new connections, and exits 0', async () => {
    const store = join(ws.dir, 'cache1');
    const server = await startServe(['--store', store, '--repo', repo, '--grace', '30s'], { HOME: ws.dir });
    const neighbour = runCli(
      ['fetch', '--store', join(ws.dir, 'n1'), '--repo', `${server.url}/repos/up.json`, 'up:big'],
      { HOME: ws.dir },
    );
    await untilPulling(server);
    const exit = server.stop('SIGTERM');
    await sleep(200);
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
    const result = await neighbour;
    expect(result.exitCode, result.stderr).toBe(0);
    expect(await digestOf(join(ws.dir, 'n1', 'up:big:v1'))).toBe(await digestOf(big));
    expect(await exit).toBe(0);
    expect(await readdir(store)).toEqual(expect.arrayContaining(['up:big:v1', 'up:big:v1.xz']));
    expect(server.logs().find((line) => line.kind === 'pull' && line.event === 'end')).toMatchObject({ ok: true });
  });

  it('cuts a pull that outlasts --grace: exits 0 in time, and nothing partial is visible in the store', async () => {
    const store = join(ws.dir, 'cache2');
    const server = await startServe(['--store', store, '--repo', repo, '--grace', '1s'], { HOME: ws.dir });
    const neighbour = runCli(
      ['fetch', '--store', join(ws.dir, 'n2'), '--repo', `${server.url}/repos/up.json`, 'up:big'],
      { HOME: ws.dir },
    );
    await untilPulling(server);
    const started = Date.now();
    expect(await server.stop('SIGTERM')).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await neighbour).exitCode).not.toBe(0);
    // The cut pull ends as ABORTED, not as an internal error.
    expect(server.logs().find((line) => line.kind === 'pull' && line.event === 'end')).toMatchObject({
      ok: false,
      error: 'ABORTED',
    });
    expect(withoutLockFiles(await readdir(store)).filter((name) => name.startsWith('up:big'))).toEqual([]);
    expect(
      withoutLockFiles(await readdir(join(ws.dir, 'n2')).catch(() => [])).filter((name) => name.startsWith('up:big')),
    ).toEqual([]);
    // What a killed fetch leaves: at most the partial download kept for resume, in the entry's temp directory.
    expect(
      (await readdir(join(store, '.tmp', 'up:big:v1')).catch(() => [])).filter(
        (name) => !['partial', 'partial.json'].includes(name),
      ),
    ).toEqual([]);
  });
});
