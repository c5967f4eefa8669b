// The `templates` command as users and CI scripts run it: output, exit codes, concurrency, kills and signals.
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/index.js';
import { withEntryLock } from '../../src/store/lock.js';
import { TOOL_PATH, digestOf, publishImage, smallAndBigDisks } from '../helpers/images.js';
import { CLI, lagoRepo, runCli, visibleEntries, workspace, type Workspace } from '../helpers/env.js';

let disk: string;
let big: string;
let ws: Workspace;

beforeAll(async () => {
  ({ disk, big } = await smallAndBigDisks((await workspace()).dir));
});
beforeEach(async () => {
  ws = await workspace();
});
afterEach(async () => {
  await ws.cleanup();
});

const slow = (w: Workspace) => w.baseurl.replace(/\/(ws-[^/]+)\/$/, '/slow/$1/');

async function repoFile(baseurl = ws.baseurl, extra: Record<string, Record<string, unknown>> = {}) {
  const repo = lagoRepo('r', ws, { tpl: { v1: { source: 'web', handle: 'tpl/v1.raw', timestamp: 1 }, ...extra } });
  repo.sources.web.args.baseurl = baseurl;
  return ws.writeRepo('r', repo);
}

/** Starts a fetch from the rate-limited location and resolves once it has reported download progress. */
async function startSlowFetch(repo: string) {
  const child = execa(process.execPath, [CLI, 'fetch', '--repo', repo, '--store', ws.store, 'r:tpl:v1'], {
    env: { PATH: TOOL_PATH },
    extendEnv: false,
    reject: false,
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  for (let i = 0; i < 200 && !/MiB of/.test(stderr); i++) await sleep(25);
  expect(stderr).toMatch(/MiB of/);
  // Wrapped: the subprocess is itself a promise, and returning it bare would wait for it to end.
  return { child };
}

const visible = visibleEntries;
/** Files under the store's temp dir, relative to it. */
const leftovers = async (store: string) =>
  (await readdir(join(store, '.tmp'), { recursive: true }).catch(() => [] as string[])).sort();

describe('templates fetch', () => {
  it('prints the stored path, then reports cached; --json gives the result object', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    const repo = await repoFile();
    const first = await runCli(['fetch', '--repo', repo, '--store', ws.store, 'r:tpl:v1']);
    expect(first).toMatchObject({ exitCode: 0, stdout: `${join(ws.store, 'r:tpl:v1')}\n` });
    expect(first.stderr).toContain('r:tpl:v1: downloading');
    const second = await runCli(['fetch', '--json', '--repo', repo, '--store', ws.store, 'tpl']);
    expect(second.exitCode).toBe(0);
    expect(JSON.parse(second.stdout)).toEqual({
      ref: 'r:tpl:v1',
      path: join(ws.store, 'r:tpl:v1'),
      status: 'cached',
      hash: await digestOf(disk),
      format: 'raw',
      size: 8 * 1024 * 1024,
    });
  });

  it('reads TEMPLATES_REPOS and TEMPLATES_STORE', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    const result = await runCli(['fetch', '-q', 'r:tpl:v1'], {
      TEMPLATES_REPOS: await repoFile(),
      TEMPLATES_STORE: ws.store,
    });
    expect(result).toMatchObject({ exitCode: 0, stdout: `${join(ws.store, 'r:tpl:v1')}\n`, stderr: '' });
  });

  it.each([
    ['a bad reference', ['r:tpl:..'], 2, 'BAD_REFERENCE'],
    ['an unknown repository', ['nope:tpl:v1'], 3, 'REPO_NOT_FOUND'],
    ['an unknown template', ['r:nope'], 3, 'TEMPLATE_NOT_FOUND'],
    ['an unknown version', ['r:tpl:v9'], 3, 'VERSION_NOT_FOUND'],
    ['a broken entry', ['r:tpl:bad'], 4, 'ENTRY_BROKEN'],
    ['a hash mismatch', ['r:tpl:wrong'], 5, 'HASH_MISMATCH'],
    ['corrupt xz', ['r:tpl:corrupt'], 7, 'DECODE_FAILED'],
  ])('exits with its documented code for %s', async (_what, refs, exitCode, code) => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    await publishImage(ws.www, 'tpl/wrong.raw', disk, { hashText: '0'.repeat(40) });
    await publishImage(ws.www, 'tpl/corrupt.raw', disk);
    const xz = join(ws.www, 'tpl/corrupt.raw.xz');
    const bytes = await readFile(xz);
    bytes.fill(0x55, 200, 4000);
    await writeFile(xz, bytes);
    const repo = await repoFile(ws.baseurl, {
      bad: { source: 'nowhere', handle: 'x', timestamp: 1 },
      wrong: { source: 'web', handle: 'tpl/wrong.raw', timestamp: 1 },
      corrupt: { source: 'web', handle: 'tpl/corrupt.raw', timestamp: 1 },
    });
    const result = await runCli(['fetch', '-q', '--json', '--repo', repo, '--store', ws.store, ...refs]);
    expect(result.exitCode).toBe(exitCode);
    expect(JSON.parse(result.stdout).error.code).toBe(code);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(new RegExp(`^templates: .*\\[${code}\\]\\n$`));
    expect(await visible(ws.store)).toEqual([]);
    expect(await leftovers(ws.store)).toEqual([]);
  });

  it('takes the shared options before the command too (git-style)', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    const repo = await repoFile();
    const fetched = await runCli(['--store', ws.store, '--repo', repo, 'fetch', '-q', 'r:tpl:v1']);
    expect(fetched).toMatchObject({ exitCode: 0, stdout: `${join(ws.store, 'r:tpl:v1')}\n` });
    const listed = await runCli(['--store', ws.store, 'list', '--stored', '--json']);
    expect(listed.exitCode).toBe(0);
    expect(JSON.parse(listed.stdout.trim().split('\n')[0]!)).toMatchObject({ ref: 'r:tpl:v1' });
    const config = join(ws.dir, 'config.json');
    await writeFile(config, JSON.stringify({ store: ws.store }));
    expect(
      JSON.parse((await runCli(['--config', config, 'path', '--json', '--repo', repo, 'r:tpl:v1'])).stdout),
    ).toEqual({ ref: 'r:tpl:v1', path: join(ws.store, 'r:tpl:v1') });
  });

  it('exits 6 when the source is unreachable, and 2 for usage errors', async () => {
    const repo = await repoFile('http://127.0.0.1:9/');
    expect((await runCli(['fetch', '--repo', repo, '--store', ws.store, 'r:tpl:v1'])).exitCode).toBe(6);
    expect((await runCli(['fetch', '--bogus'])).exitCode).toBe(2);
    expect((await runCli(['fetch'])).exitCode).toBe(2);
    expect((await runCli(['frobnicate'])).exitCode).toBe(2);
  });

  it('exits 8 when another process holds the lock past --lock-wait', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    const repo = await repoFile();
    const store = await openStore({ root: ws.store });
    const result = await withEntryLock(store, { repository: 'r', template: 'tpl', version: 'v1' }, {}, () =>
      runCli(['fetch', '--json', '--lock-wait', '1', '--repo', repo, '--store', ws.store, 'r:tpl:v1']),
    );
    expect(result.exitCode).toBe(8);
    expect(JSON.parse(result.stdout).error.code).toBe('LOCK_TIMEOUT');
  });

  it('fetches several references at once, prints their lines in the order given, and goes on past a failing one', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    await publishImage(ws.www, 'big/v1.raw', big);
    const repo = lagoRepo('r', ws, {
      tpl: { v1: { source: 'web', handle: 'tpl/v1.raw', timestamp: 1 } },
      big: { v1: { source: 'slow', handle: 'big/v1.raw', timestamp: 1 } },
    });
    (repo.sources as Record<string, unknown>).slow = { type: 'http', args: { baseurl: slow(ws) } };
    const path = await ws.writeRepo('r', repo);
    const result = await runCli(['fetch', '--repo', path, '--store', ws.store, 'r:big:v1', 'r:nope', 'r:tpl:v1']);
    expect(result.exitCode).toBe(3);
    expect(result.stdout).toBe(`${join(ws.store, 'r:big:v1')}\n${join(ws.store, 'r:tpl:v1')}\n`);
    expect(result.stderr).toMatch(/templates: .*nope.* \[TEMPLATE_NOT_FOUND\]/);
    // At once: the small one was stored while the slow one (three seconds) was still arriving.
    const fetchedAt = async (ref: string) =>
      Date.parse(
        (JSON.parse(await readFile(join(ws.store, `${ref}.record.json`), 'utf8')) as { fetchedAt: string }).fetchedAt,
      );
    expect(await fetchedAt('r:tpl:v1')).toBeLessThan(await fetchedAt('r:big:v1'));
    // Progress lines say how fast it went.
    expect(result.stderr).toMatch(/r:big:v1: [\d.]+ MiB of [\d.]+ MiB \(100%\), [\d.]+ MiB\/s/);
    const serial = await runCli(['fetch', '--jobs', '0', '--repo', path, '--store', ws.store, 'r:tpl:v1']);
    expect(serial.exitCode).toBe(2);
  });

  it('lets two processes fetch the same template at once: both succeed, one download', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', big);
    const repo = await repoFile(slow(ws));
    const args = ['fetch', '--json', '--repo', repo, '--store', ws.store, 'r:tpl:v1'];
    const [a, b] = await Promise.all([runCli(args), runCli(args)]);
    expect([a.exitCode, b.exitCode]).toEqual([0, 0]);
    const results = [JSON.parse(a.stdout), JSON.parse(b.stdout)];
    expect(results.map((r) => r.status).sort()).toEqual(['cached', 'downloaded']);
    expect(results[0].path).toBe(results[1].path);
    expect(await digestOf(results[0].path)).toBe(await digestOf(big));
    expect(await ws.requests('/tpl/v1.raw.xz')).toHaveLength(1);
    expect(`${a.stderr}${b.stderr}`).toContain('waiting for another process');
  });

  it('leaves no visible entry when killed mid-download; the next fetch takes over the stale lock and succeeds', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', big);
    const repo = await repoFile(slow(ws));
    const { child } = await startSlowFetch(repo);
    child.kill('SIGKILL');
    await child;
    expect(await visible(ws.store)).toEqual([]);
    const again = await runCli(['fetch', '--json', '--repo', repo, '--store', ws.store, 'r:tpl:v1']);
    expect(again.exitCode).toBe(0);
    expect(JSON.parse(again.stdout).status).toBe('downloaded');
    expect(await digestOf(join(ws.store, 'r:tpl:v1'))).toBe(await digestOf(big));
    expect(await visible(ws.store)).toEqual([
      'r:tpl:v1',
      'r:tpl:v1.hash',
      'r:tpl:v1.metadata',
      'r:tpl:v1.record.json',
      'r:tpl:v1.users',
    ]);
    expect(await leftovers(ws.store)).toEqual([]);
  });

  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('cleans up on %s and exits %i', async (signal, exitCode) => {
    await publishImage(ws.www, 'tpl/v1.raw', big);
    const repo = await repoFile(slow(ws));
    const { child } = await startSlowFetch(repo);
    child.kill(signal);
    const result = await child;
    expect(result.exitCode).toBe(exitCode);
    expect(String(result.stderr)).toContain('[ABORTED]');
    expect(await visible(ws.store)).toEqual([]);
    // Only the bytes received so far, kept (invisible) for the next fetch to resume.
    expect(await leftovers(ws.store)).toEqual(['r:tpl:v1', 'r:tpl:v1/partial', 'r:tpl:v1/partial.json']);
  });
});

describe('templates path and resolve', () => {
  it('path prints the stored path, or exits 3 when it is not stored', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    const repo = await repoFile();
    const missing = await runCli(['path', '--repo', repo, '--store', ws.store, 'r:tpl:v1']);
    expect(missing.exitCode).toBe(3);
    expect(missing.stderr).toContain('[NOT_STORED]');
    await runCli(['fetch', '-q', '--repo', repo, '--store', ws.store, 'r:tpl:v1']);
    expect(await runCli(['path', '--repo', repo, '--store', ws.store, 'r:tpl'])).toMatchObject({
      exitCode: 0,
      stdout: `${join(ws.store, 'r:tpl:v1')}\n`,
    });
  });

  it('resolve shows the version, the URLs tried in order and the hash, without downloading the image', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    const repo = await repoFile();
    const result = await runCli(['resolve', '--json', '--repo', repo, 'r:tpl']);
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      ref: 'r:tpl:v1',
      repository: 'r',
      template: 'tpl',
      version: 'v1',
      timestamp: 1,
      source: { name: 'web', type: 'http' },
      urls: [`${ws.baseurl}tpl/v1.raw.xz`, `${ws.baseurl}tpl/v1.raw`],
      mirrors: [],
      hash: await digestOf(disk),
      hashFrom: 'hash-file',
      compressedHash: null,
      zst: null,
      size: null,
      format: null,
      signature: { state: 'unsigned' },
      // The repository lists no chunk index (delta.test.ts covers one that does).
      delta: null,
    });
    const human = await runCli(['resolve', '--repo', repo, 'r:tpl']);
    expect(human.stdout).toContain(`${ws.baseurl}tpl/v1.raw.xz`);
    expect(await ws.requests('.xz')).toHaveLength(0);
  });

  it('has --help for every command and --version', async () => {
    for (const command of ['fetch', 'path', 'resolve']) {
      const help = await runCli([command, '--help']);
      expect(help.exitCode).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^Usage: templates ${command}`));
    }
    expect((await runCli(['--help'])).stdout).toMatch(/^Usage: templates <command>/);
    expect((await runCli(['--version'])).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});

describe('a reader that goes away', () => {
  it('ends the command quietly (templates list | head -1), as any Unix tool does', async () => {
    const many = Object.fromEntries(
      Array.from({ length: 3000 }, (_, i) => [
        `tpl${i}`,
        { v1: { source: 'web', handle: `tpl${i}/v1.raw`, timestamp: 1 } },
      ]),
    );
    const repo = await ws.writeRepo('r', lagoRepo('r', ws, many));
    const piped = await execa(
      'bash',
      ['-o', 'pipefail', '-c', `"${process.execPath}" "${CLI}" list --repo "${repo}" --store "${ws.store}" | head -1`],
      {
        reject: false,
        env: { PATH: TOOL_PATH, HOME: ws.dir },
        extendEnv: false,
      },
    );
    expect(piped.stdout).toMatch(/^r:tpl\d+:v1/);
    expect(piped.stderr).toBe('');
    expect(piped.exitCode).toBe(0);
  });
});
