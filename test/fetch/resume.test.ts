// Resume: a fetch killed mid-download keeps its bytes; the next one asks for the rest (Range + If-Range) and still verifies it all.
import { open, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TOOL_PATH, digestOf, makeDisk, publishImage } from '../helpers/images.js';
import { CLI, lagoRepo, runCli, workspace, type Workspace } from '../helpers/env.js';

let big: string;
let other: string;
let ws: Workspace;

beforeAll(async () => {
  const shared = await workspace();
  // Mostly random data: about 6 MiB, three seconds through nginx's 2 MB/s /slow/ location.
  big = await makeDisk(join(shared.dir, 'big.raw'), { sizeMiB: 16, dataKiB: 6 * 1024 });
  other = await makeDisk(join(shared.dir, 'other.raw'), { sizeMiB: 16, dataKiB: 6 * 1024 });
});
beforeEach(async () => {
  ws = await workspace();
});
afterEach(async () => {
  await ws.cleanup();
});

const partial = () => join(ws.store, '.tmp', 'r:tpl:v1', 'partial');

async function slowRepo(handle: string, extra: Record<string, unknown> = {}) {
  const repo = lagoRepo('r', ws, { tpl: { v1: { source: 'web', handle, timestamp: 1, ...extra } } });
  repo.sources.web.args.baseurl = ws.baseurl.replace(/\/(ws-[^/]+)\/$/, '/slow/$1/');
  return ws.writeRepo('r', repo);
}

/** Starts a fetch from the rate-limited location and SIGKILLs it once `bytes` have reached the partial file. */
async function killMidway(repo: string, bytes = 1024 * 1024): Promise<number> {
  const child = execa(process.execPath, [CLI, 'fetch', '-q', '--repo', repo, '--store', ws.store, 'r:tpl:v1'], {
    env: { PATH: TOOL_PATH },
    extendEnv: false,
    reject: false,
  });
  let size = 0;
  for (let i = 0; i < 400 && size < bytes; i++) {
    await sleep(25);
    size = await stat(partial()).then(
      (s) => s.size,
      () => 0,
    );
  }
  child.kill('SIGKILL');
  await child;
  expect(size).toBeGreaterThanOrEqual(bytes);
  return (await stat(partial())).size;
}

/** [status, bytes sent, Range header] of each request for `suffix`, oldest first. */
async function served(suffix: string): Promise<Array<{ status: number; sent: number; range: string }>> {
  return (await ws.requests(suffix)).map((line) => {
    const [, , status, sent] = line.split(' ');
    const range = /"([^"]*)"$/.exec(line)?.[1] ?? '';
    return { status: Number(status), sent: Number(sent), range };
  });
}

const fetchAgain = (repo: string, env: Record<string, string> = {}) =>
  runCli(['fetch', '--json', '--repo', repo, '--store', ws.store, 'r:tpl:v1'], {
    TEMPLATES_LOCK_STALE_SECONDS: '2',
    ...env,
  });

describe('resume after an interrupted download', () => {
  it.each([
    ['an xz image (the partial file keeps the compressed bytes)', { xz: true }, '/tpl/v1.raw.xz'],
    ['an uncompressed image (the partial file is the output itself)', { xz: false, plain: true }, '/tpl/v1.raw'],
    ['a zstd image the repository lists', { xz: true, zst: true }, '/tpl/v1.raw.zst'],
  ])('resumes %s with Range and If-Range, and verifies the whole file', async (_what, layout, suffix) => {
    const published = await publishImage(ws.www, 'tpl/v1.raw', big, layout);
    const repo = await slowRepo('tpl/v1.raw', published.zst ?? {});
    const kept = await killMidway(repo);
    const result = await fetchAgain(repo);
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout).status).toBe('downloaded');
    expect(await digestOf(join(ws.store, 'r:tpl:v1'))).toBe(await digestOf(big));
    const requests = await served(suffix);
    expect(requests).toHaveLength(2);
    const size = (await stat(join(ws.www, suffix.slice(1)))).size;
    // Only what the first fetch had not kept is sent again.
    expect(requests[1]).toEqual({ status: 206, sent: size - kept, range: `bytes=${kept}-` });
    // A listed .zst is the only image file asked for.
    if ('zst' in layout) expect(await ws.requests('/tpl/v1.raw.xz')).toHaveLength(0);
    expect(await ws.storeFiles()).toEqual([
      '.tmp',
      'r:tpl:v1',
      'r:tpl:v1.hash',
      'r:tpl:v1.metadata',
      'r:tpl:v1.record.json',
      'r:tpl:v1.users',
    ]);
  });

  it('starts over when the file changed on the server (If-Range does not match)', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', big);
    const repo = await slowRepo('tpl/v1.raw');
    await killMidway(repo);
    await publishImage(ws.www, 'tpl/v1.raw', other);
    // nginx's validators have one-second resolution: make sure the new file's differ.
    const later = new Date(Date.now() + 5000);
    await utimes(join(ws.www, 'tpl/v1.raw.xz'), later, later);
    const result = await fetchAgain(repo);
    expect(result.exitCode).toBe(0);
    expect(await digestOf(join(ws.store, 'r:tpl:v1'))).toBe(await digestOf(other));
    const second = (await served('/tpl/v1.raw.xz'))[1]!;
    expect(second.status).toBe(200);
    expect(second.sent).toBe((await stat(join(ws.www, 'tpl/v1.raw.xz'))).size);
  });

  it('removes a partial download older than TEMPLATES_PARTIAL_MAX_AGE_SECONDS instead of resuming it', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', big);
    const repo = await slowRepo('tpl/v1.raw');
    await killMidway(repo);
    const old = new Date(Date.now() - 120_000);
    await utimes(partial(), old, old);
    const result = await fetchAgain(repo, { TEMPLATES_PARTIAL_MAX_AGE_SECONDS: '60' });
    expect(result.exitCode).toBe(0);
    expect((await served('/tpl/v1.raw.xz'))[1]).toMatchObject({ status: 200, range: '-' });
  });

  it('fails with HASH_MISMATCH when the kept bytes were damaged, drops them, and the next fetch starts clean', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', big, { xz: false, plain: true });
    const repo = await slowRepo('tpl/v1.raw');
    await killMidway(repo);
    const handle = await open(partial(), 'r+');
    await handle.write(Buffer.from('damage'), 0, 6, 70_000);
    await handle.close();
    const damaged = await fetchAgain(repo);
    expect(damaged.exitCode).toBe(5);
    expect(JSON.parse(damaged.stdout).error.code).toBe('HASH_MISMATCH');
    expect(await ws.storeFiles()).toEqual(['.tmp']);
    const clean = await fetchAgain(repo);
    expect(clean.exitCode).toBe(0);
    expect(await digestOf(join(ws.store, 'r:tpl:v1'))).toBe(await digestOf(big));
    expect((await served('/tpl/v1.raw')).map((r) => r.range)).toEqual([
      '-',
      expect.stringMatching(/^bytes=\d+-$/),
      '-',
    ]);
  });
});

describe('a cache hit', () => {
  /** A repository with one template, fetched once into the store: the next fetch is a hit. */
  async function storedOnce(): Promise<string> {
    await publishImage(ws.www, 'tpl/v1.raw', big);
    const path = await ws.writeRepo(
      'r',
      lagoRepo('r', ws, { tpl: { v1: { source: 'web', handle: 'tpl/v1.raw', timestamp: 1 } } }),
    );
    expect((await runCli(['fetch', '-q', '--repo', path, '--store', ws.store, 'r:tpl:v1'])).exitCode).toBe(0);
    return path;
  }

  it('opens no image file at all (strace)', async () => {
    const path = await storedOnce();
    const trace = join(ws.dir, 'trace');
    const hit = await execa(
      'strace',
      [
        '-f',
        '-qq',
        '-e',
        'trace=open,openat,openat2',
        '-o',
        trace,
        process.execPath,
        CLI,
        'fetch',
        '--json',
        '--repo',
        path,
        '--store',
        ws.store,
        'r:tpl:v1',
      ],
      { reject: false },
    );
    expect(hit.exitCode).toBe(0);
    expect(JSON.parse(hit.stdout).status).toBe('cached');
    const opened = (await readFile(trace, 'utf8')).split('\n').filter((line) => line.includes(ws.store));
    expect(opened.length).toBeGreaterThan(0);
    expect(opened.filter((line) => line.includes(`${join(ws.store, 'r:tpl:v1')}"`))).toEqual([]);
  });

  it('loads no dependency, and not node:crypto (what a start would pay for otherwise)', async () => {
    const path = await storedOnce();
    const probe = join(ws.dir, 'probe.mjs');
    const loaded = join(ws.dir, 'loaded.txt');
    await writeFile(
      probe,
      `import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(${JSON.stringify(loaded)}, process.moduleLoadList.join('\\n')));\n`,
    );
    const trace = join(ws.dir, 'trace-modules');
    const hit = await execa(
      'strace',
      [
        '-f',
        '-qq',
        '-e',
        'trace=open,openat,openat2',
        '-o',
        trace,
        process.execPath,
        '--import',
        probe,
        CLI,
        'fetch',
        '-q',
        '--repo',
        path,
        '--store',
        ws.store,
        'r:tpl:v1',
      ],
      { reject: false },
    );
    expect(hit.exitCode).toBe(0);
    expect((await readFile(trace, 'utf8')).split('\n').filter((line) => line.includes('/node_modules/'))).toEqual([]);
    const builtins = (await readFile(loaded, 'utf8')).split('\n');
    expect(builtins).toContain('NativeModule fs');
    expect(builtins.filter((line) => /^NativeModule (crypto|internal\/crypto\/)/.test(line))).toEqual([]);
  });
});
