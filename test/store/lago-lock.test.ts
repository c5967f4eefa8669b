// A store shared with lago's own code: its lock protocol (flock on <entry>.lock, never removed), in both orders.
import { chmod, mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TOOL_PATH, digestOf, publishImage, smallAndBigDisks } from '../helpers/images.js';
import { startServe } from '../helpers/serve.js';
import { CLI, lagoRepo, runCli, workspace, type Workspace } from '../helpers/env.js';

const LAGO = resolve(import.meta.dirname, '../helpers/lago-store.py');

let disk: string;
let big: string;
let ws: Workspace;

beforeAll(async () => {
  ({ disk, big } = await smallAndBigDisks((await workspace()).dir));
});
beforeEach(async () => {
  ws = await workspace();
  await mkdir(ws.store, { recursive: true });
});
afterEach(async () => {
  await ws.cleanup();
});

const slow = (w: Workspace) => w.baseurl.replace(/\/(ws-[^/]+)\/$/, '/slow/$1/');

async function repoFile(baseurl = ws.baseurl) {
  const repo = lagoRepo('r', ws, {
    tpl: {
      v1: { source: 'web', handle: 'tpl/v1.raw', timestamp: 1 },
      v2: { source: 'web', handle: 'tpl/v2.raw', timestamp: 2 },
    },
  });
  repo.sources.web.args.baseurl = baseurl;
  return ws.writeRepo('r', repo);
}

/** lago's code (test/helpers/lago-store.py) as a child whose step lines can be waited for. */
function lago(args: string[]) {
  const child = execa('python3', [LAGO, ...args], {
    env: { PATH: TOOL_PATH },
    extendEnv: false,
    reject: false,
    timeout: 60_000,
  });
  const lines: string[] = [];
  child.stdout?.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
  return {
    child,
    lines,
    async reached(step: string, ms = 20_000) {
      for (let i = 0; i < ms / 20 && !lines.includes(step); i++) await sleep(20);
      expect(lines).toContain(step);
    },
  };
}

/** A templates fetch as a child, with its stderr followed. */
function templatesFetch(repo: string, ref = 'r:tpl:v1', extra: string[] = []) {
  const child: ResultPromise = execa(
    process.execPath,
    [CLI, 'fetch', '--json', ...extra, '--repo', repo, '--store', ws.store, ref],
    { env: { PATH: TOOL_PATH }, extendEnv: false, reject: false, timeout: 60_000 },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return {
    child,
    async reached(pattern: RegExp, ms = 20_000) {
      for (let i = 0; i < ms / 20 && !pattern.test(stderr); i++) await sleep(20);
      expect(stderr).toMatch(pattern);
    },
  };
}

const lockFile = (ref: string) => join(ws.store, `${ref}.lock`);
async function expectLagoLockFile(ref: string) {
  const info = await stat(lockFile(ref));
  expect(info.isFile()).toBe(true);
  expect(info.mode & 0o777).toBe(0o660);
}

describe('a store shared with lago', () => {
  it("fetch, rm, prune, verify --remove-corrupt and import work on entries that carry lago's lock files", async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk, { xz: false });
    await publishImage(ws.www, 'tpl/v2.raw', disk, { xz: false });
    const repo = await repoFile();
    // lago fetched v1 (its lock file stays behind), and once took v2's lock.
    const fetched = lago(['fetch', ws.store, 'r:tpl:v1', `${ws.baseurl}tpl/v1.raw`]);
    expect((await fetched.child).exitCode).toBe(0);
    expect((await lago(['hold', ws.store, 'r:tpl:v2', '0']).child).exitCode).toBe(0);
    await expectLagoLockFile('r:tpl:v1');
    await expectLagoLockFile('r:tpl:v2');
    const cli = (args: string[]) => runCli([...args, '--repo', repo, '--store', ws.store]);

    // lago's image is used as it is; v2 is fetched under lago's lock file.
    expect(JSON.parse((await cli(['fetch', '--json', 'r:tpl:v1'])).stdout)).toMatchObject({
      status: 'cached',
      hash: await digestOf(disk),
    });
    expect(JSON.parse((await cli(['fetch', '--json', 'r:tpl:v2'])).stdout)).toMatchObject({ status: 'downloaded' });
    expect((await cli(['rm', 'r:tpl:v1'])).exitCode).toBe(0);
    expect(JSON.parse((await cli(['fetch', '--json', 'r:tpl:v1'])).stdout)).toMatchObject({ status: 'downloaded' });
    const pruned = await cli(['prune', '--older-than', '0s', '--json']);
    expect(pruned.exitCode).toBe(0);
    expect(
      JSON.parse(pruned.stdout)
        .removed.map((r: { ref: string }) => r.ref)
        .sort(),
    ).toEqual(['r:tpl:v1', 'r:tpl:v2']);

    // import, then an image that changed on disk removed by verify --remove-corrupt.
    expect((await cli(['import', 'r:tpl:v1', disk])).exitCode).toBe(0);
    const image = join(ws.store, 'r:tpl:v1');
    await chmod(image, 0o644);
    await writeFile(image, Buffer.alloc(4096, 1), { flag: 'r+' });
    const verified = await cli(['verify', '--remove-corrupt', 'r:tpl:v1']);
    expect(verified.exitCode).toBe(11);
    await expect(stat(image)).rejects.toMatchObject({ code: 'ENOENT' });

    // lago can still take every lock, and the files are still lago's.
    expect((await lago(['hold', ws.store, 'r:tpl:v1', '0']).child).stdout).toContain('locked');
    await expectLagoLockFile('r:tpl:v1');
    await expectLagoLockFile('r:tpl:v2');
  });

  it('templates fetching, lago asking for the same template: lago waits, then finds the image (one download)', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', big, { plain: true });
    const ours = templatesFetch(await repoFile(slow(ws)));
    await ours.reached(/MiB of/);
    const theirs = lago(['fetch', ws.store, 'r:tpl:v1', `${ws.baseurl}tpl/v1.raw`]);
    await theirs.reached('waiting');
    await sleep(300);
    // Blocked in flock while our download runs (it used to crash with IsADirectoryError here).
    expect(theirs.lines).toEqual(['waiting']);
    const result = await ours.child;
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(String(result.stdout))).toMatchObject({ status: 'downloaded' });
    expect((await theirs.child).exitCode).toBe(0);
    expect(theirs.lines).toEqual(['waiting', 'locked', 'exists']);
    expect(await digestOf(join(ws.store, 'r:tpl:v1'))).toBe(await digestOf(big));
    expect(await ws.requests('/tpl/v1.raw.xz')).toHaveLength(1);
    expect(await ws.requests('/tpl/v1.raw')).toEqual([]);
    await expectLagoLockFile('r:tpl:v1');
  });

  it.each(['downloading', 'converting'])(
    "lago fetching, templates asking while lago is %s: templates waits and reuses lago's whole image",
    async (step) => {
      await publishImage(ws.www, 'tpl/v1.raw', big, { plain: true });
      const repo = await repoFile();
      const theirs = lago([
        'fetch',
        ws.store,
        'r:tpl:v1',
        `${ws.baseurl}tpl/v1.raw`,
        '--chunk-delay',
        '0.004',
        '--convert-delay',
        '1.5',
      ]);
      await theirs.reached(step);
      // While converting, lago's half-written image is at the final path, with its .hash beside it.
      if (step === 'converting')
        expect((await stat(join(ws.store, 'r:tpl:v1'))).size).toBeLessThan((await stat(big)).size);
      const ours = templatesFetch(repo);
      await ours.reached(/waiting for another process/);
      const result = await ours.child;
      expect(theirs.lines).toContain('done');
      expect(result.exitCode).toBe(0);
      expect(JSON.parse(String(result.stdout))).toMatchObject({ status: 'cached', hash: await digestOf(big) });
      expect(await digestOf(join(ws.store, 'r:tpl:v1'))).toBe(await digestOf(big));
      expect(await ws.requests('/tpl/v1.raw.xz')).toEqual([]);
      expect(await ws.requests('/tpl/v1.raw')).toHaveLength(1);
    },
  );

  it('verify --adopt --remove-corrupt waits for lago writing its image, then adopts it whole instead of removing it', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', big, { plain: true });
    const repo = await repoFile();
    const theirs = lago(['fetch', ws.store, 'r:tpl:v1', `${ws.baseurl}tpl/v1.raw`, '--convert-delay', '1.5']);
    await theirs.reached('converting');
    const verified = await runCli([
      'verify',
      '--json',
      '--adopt',
      '--remove-corrupt',
      '--repo',
      repo,
      '--store',
      ws.store,
      'r:tpl:v1',
    ]);
    expect(theirs.lines).toContain('done');
    expect(verified.exitCode).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({
      ref: 'r:tpl:v1',
      status: 'adopted',
      actual: `sha256:${await digestOf(big, 'sha256')}`,
    });
    expect(await digestOf(join(ws.store, 'r:tpl:v1'))).toBe(await digestOf(big));
  });

  it('names lago as the holder when its lock is held past --lock-wait, and takes the lock at once when a holder is killed', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    const repo = await repoFile();
    const theirs = lago(['hold', ws.store, 'r:tpl:v1', '30']);
    await theirs.reached('locked');
    const waitOneSecond = ['fetch', '--json', '--lock-wait', '1', '--repo', repo, '--store', ws.store, 'r:tpl:v1'];
    const timedOut = await runCli(waitOneSecond);
    expect(timedOut.exitCode).toBe(8);
    const error = JSON.parse(timedOut.stdout).error;
    expect(error).toMatchObject({ code: 'LOCK_TIMEOUT' });
    expect(error.holder).toMatch(new RegExp(`^${theirs.child.pid}@`));
    expect(error.message).toContain('python3');
    // The kernel drops a dead holder's flock: no stale-lock wait.
    theirs.child.kill('SIGKILL');
    await theirs.child;
    const after = await runCli(waitOneSecond);
    expect(JSON.parse(after.stdout)).toMatchObject({ status: 'downloaded' });
  });

  it('lago takes the lock at once after templates is killed mid-download', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', big, { plain: true });
    const ours = templatesFetch(await repoFile(slow(ws)));
    await ours.reached(/MiB of/);
    ours.child.kill('SIGKILL');
    await ours.child;
    const theirs = lago(['fetch', ws.store, 'r:tpl:v1', `${ws.baseurl}tpl/v1.raw`]);
    expect((await theirs.child).exitCode).toBe(0);
    expect(theirs.lines).toEqual(['waiting', 'locked', 'downloading', 'converting', 'done']);
    expect(await digestOf(join(ws.store, 'r:tpl:v1'))).toBe(await digestOf(big));
  });

  it("replaces an older templates' lock directory left by a killed process, and waits for one still refreshed", async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    const repo = await repoFile();
    const dir = lockFile('r:tpl:v1');
    await mkdir(dir);
    // Refreshed just now: a live holder of the old kind.
    const busy = await runCli(['fetch', '--json', '--lock-wait', '1', '--repo', repo, '--store', ws.store, 'r:tpl:v1']);
    expect(busy.exitCode).toBe(8);
    expect(JSON.parse(busy.stdout).error.code).toBe('LOCK_TIMEOUT');
    const old = new Date(Date.now() - 60_000);
    await utimes(dir, old, old);
    const fetched = await runCli(['fetch', '--json', '--repo', repo, '--store', ws.store, 'r:tpl:v1']);
    expect(fetched.exitCode).toBe(0);
    expect(JSON.parse(fetched.stdout)).toMatchObject({ status: 'downloaded' });
    await expectLagoLockFile('r:tpl:v1');
    expect(await readFile(dir, 'utf8')).toBe('');
  });

  it("a cache host on a store of lago's lock files: a neighbour's pull and a job take them, and lago waits for the pull", async () => {
    await publishImage(ws.www, 'tpl/v1.raw', big, { plain: true });
    await publishImage(ws.www, 'tpl/v2.raw', disk);
    const repo = await repoFile(slow(ws));
    for (const ref of ['r:tpl:v1', 'r:tpl:v2'])
      expect((await lago(['hold', ws.store, ref, '0']).child).exitCode).toBe(0);
    const server = await startServe(['--store', ws.store, '--repo', repo], { HOME: ws.dir });
    try {
      const neighbourStore = join(ws.dir, 'neighbour');
      const pulling = execa(
        process.execPath,
        [CLI, 'fetch', '--json', '--store', neighbourStore, '--repo', `${server.url}/repos/r.json`, 'r:tpl:v1'],
        { env: { PATH: TOOL_PATH, HOME: ws.dir }, extendEnv: false, reject: false, timeout: 60_000 },
      );
      // lago on the cache host asks while the pull holds the lock.
      for (let i = 0; i < 250 && !(await ws.requests('/tpl/v1.raw.xz')).length; i++) await sleep(20);
      const theirs = lago(['fetch', ws.store, 'r:tpl:v1', `${ws.baseurl}tpl/v1.raw`]);
      const pulled = await pulling;
      expect(pulled.exitCode).toBe(0);
      expect(await digestOf(JSON.parse(String(pulled.stdout)).path)).toBe(await digestOf(big));
      expect((await theirs.child).exitCode).toBe(0);
      expect(theirs.lines).toEqual(['waiting', 'locked', 'exists']);
      expect(await ws.requests('/tpl/v1.raw.xz')).toHaveLength(1);

      const created = await fetch(`${server.url}/api/1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refs: ['r:tpl:v2'], seconds_to_live: 600 }),
      });
      expect(created.status).toBe(201);
      const { id } = (await created.json()) as { id: number };
      let state = '';
      for (let i = 0; i < 200 && state !== 'done'; i++, await sleep(50))
        state = ((await (await fetch(`${server.url}/api/1/jobs/${id}`)).json()) as { state_name: string }).state_name;
      expect(state).toBe('done');
      expect(await digestOf(join(ws.store, 'r:tpl:v2'))).toBe(await digestOf(disk));
      await expectLagoLockFile('r:tpl:v1');
      await expectLagoLockFile('r:tpl:v2');
    } finally {
      await server.stop();
    }
  });
});
