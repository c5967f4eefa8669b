// templates serve as a CI farm's cache: neighbours fetch through it with the real CLI; one upstream download; Range; resume.
import { mkdtemp, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli, withoutLockFiles, workspace, type Workspace } from '../helpers/env.js';
import { TOOL_PATH, digestOf, makeDisk, publishImage, toQcow2 } from '../helpers/images.js';
import { freePort, nginxConf, startNginx, type RunningNginx } from '../helpers/nginx.js';
import { startServe, type Served } from '../helpers/serve.js';

let ws: Workspace;
let server: Served;
let small: string;
let big: string;
let raw: string;
const images: Record<string, string> = {};

const slowUrl = (w: Workspace) => w.baseurl.replace(/\/(ws-[^/]+)\/$/, '/slow/$1/');

beforeAll(async () => {
  ws = await workspace();
  small = await makeDisk(join(ws.dir, 'small.raw'), { sizeMiB: 8, dataKiB: 512, label: 'small' });
  // Mostly random data: about 6 MiB of xz, three seconds through nginx's 2 MB/s /slow/ location.
  big = await makeDisk(join(ws.dir, 'big.raw'), { sizeMiB: 16, dataKiB: 6 * 1024, label: 'big' });
  raw = await makeDisk(join(ws.dir, 'raw.raw'), { sizeMiB: 4, dataKiB: 256, label: 'raw' });
  const qcow2 = await toQcow2(small, join(ws.dir, 'small.qcow2'));
  await publishImage(ws.www, 'a/v1', small);
  await publishImage(ws.www, 'big/v1', big);
  await publishImage(ws.www, 'bad/v1', small, { hashText: '0'.repeat(40) });
  await publishImage(ws.www, 'q/v1.qcow2', qcow2);
  await publishImage(ws.www, 'qp/v1.qcow2', qcow2, { xz: false });
  await publishImage(ws.www, 'plain/v1', raw, { xz: false });
  const zst = await publishImage(ws.www, 'z/v1', raw, { zst: true });
  Object.assign(images, { a: small, big, q: small, plain: raw });
  const version = (source: string, handle: string) => ({ versions: { v1: { source, handle, timestamp: 1 } } });
  await ws.writeRepo('up', {
    name: 'up',
    sources: {
      web: { type: 'http', args: { baseurl: ws.baseurl } },
      slow: { type: 'http', args: { baseurl: slowUrl(ws) } },
    },
    templates: {
      a: version('web', 'a/v1'),
      big: version('slow', 'big/v1'),
      bad: version('web', 'bad/v1'),
      q: version('web', 'q/v1.qcow2'),
      qp: version('web', 'qp/v1.qcow2'),
      plain: version('web', 'plain/v1'),
      z: {
        versions: {
          v1: { source: 'web', handle: 'z/v1', timestamp: 1, compressed_hash: `sha256:${zst.xzSha256}`, ...zst.zst },
        },
      },
    },
  });
  server = await startServe(
    ['--store', join(ws.dir, 'cache'), '--repo', join(ws.dir, 'repos', 'up.json'), '--grace', '20s'],
    { HOME: ws.dir },
  );
});

afterAll(async () => {
  await server?.stop();
  await ws?.cleanup();
});

const neighbour = async (store: string, refs: string[], base = server.url) =>
  runCli(['fetch', '--json', '--store', store, '--repo', `${base}/repos/up.json`, ...refs], { HOME: ws.dir });
const newStore = async () => join(await mkdtemp(join(ws.dir, 'n-')), 'store');
const xzGets = async (template: string) =>
  (await ws.requests(`/${template}/v1.xz`)).filter((line) => line.startsWith('GET ')).length;

describe('templates serve', () => {
  it('lists its repositories and serves lago-format JSON with the upstream names and one http source back to itself', async () => {
    const list = (await (await fetch(`${server.url}/repos/`)).json()) as {
      repositories: Array<{ name: string; url: string }>;
    };
    expect(list.repositories).toEqual([{ name: 'up', url: `${server.url}/repos/up.json` }]);
    const repo = (await (await fetch(`${server.url}/repos/up.json`)).json()) as {
      name: string;
      sources: Record<string, { type: string; args: { baseurl: string } }>;
      templates: Record<string, unknown>;
    };
    expect(repo.name).toBe('up');
    expect(repo.sources).toEqual({ cache: { type: 'http', args: { baseurl: `${server.url}/repos/up/` } } });
    expect(Object.keys(repo.templates).sort()).toEqual(['a', 'bad', 'big', 'plain', 'q', 'qp', 'z']);
  });

  it("fills itself from upstream on a neighbour's first request; the neighbour stores a byte-identical, verified image", async () => {
    const store = await newStore();
    const first = await neighbour(store, ['up:a:v1', 'up:q']);
    expect(first.exitCode, first.stderr).toBe(0);
    const results = first.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { ref: string; path: string; status: string });
    expect(results.map((r) => [r.ref, r.status])).toEqual([
      ['up:a:v1', 'downloaded'],
      ['up:q:v1', 'downloaded'],
    ]);
    for (const result of results) expect(await digestOf(result.path)).toBe(await digestOf(small));
    // The cache keeps the verified .xz: a second neighbour gets the compressed bytes and checks them on the fast path.
    const cache = await readdir(join(ws.dir, 'cache'));
    expect(cache).toEqual(expect.arrayContaining(['up:a:v1', 'up:a:v1.xz', 'up:q:v1', 'up:q:v1.xz']));
    // An uncompressed qcow2 upstream: the neighbour gets the cache's converted raw image, and a .hash describing it
    // (not upstream's digest of the qcow2 file), even when it asks while the pull is still running.
    const plainQcow2 = await neighbour(await newStore(), ['up:qp:v1']);
    expect(plainQcow2.exitCode, plainQcow2.stderr).toBe(0);
    expect(await digestOf((JSON.parse(plainQcow2.stdout) as { path: string }).path)).toBe(await digestOf(small));
    const second = await neighbour(await newStore(), ['up:a:v1']);
    expect(second.exitCode, second.stderr).toBe(0);
    const path = (JSON.parse(second.stdout) as { path: string }).path;
    expect(await digestOf(path)).toBe(await digestOf(small));
    const record = JSON.parse(await (await import('node:fs/promises')).readFile(`${path}.record.json`, 'utf8')) as {
      verified: { of: string };
    };
    expect(record.verified.of).toBe('compressed');
    expect(await xzGets('a')).toBe(1);
  });

  it('pulls a listed .zst, keeps it and sends image.zst: neighbours verify and decode it; upstream sends it once', async () => {
    const listed = (await (await fetch(`${server.url}/repos/up.json`)).json()) as {
      templates: { z: { versions: { v1: Record<string, unknown> } } };
    };
    const upstreamZst = listed.templates.z.versions.v1.zst_hash;
    expect(upstreamZst).toMatch(/^sha256:/);
    for (const _ of [1, 2]) {
      const store = await newStore();
      const result = await neighbour(store, ['up:z:v1']);
      expect(result.exitCode, result.stderr).toBe(0);
      const path = (JSON.parse(result.stdout) as { path: string }).path;
      expect(await digestOf(path)).toBe(await digestOf(raw));
      const record = JSON.parse(await (await import('node:fs/promises')).readFile(`${path}.record.json`, 'utf8')) as {
        source: string;
        verified: { of: string; digest: string };
      };
      expect(record).toMatchObject({
        source: `${server.url}/repos/up/z/v1/image.zst`,
        verified: { of: 'zst', digest: upstreamZst },
      });
    }
    expect(await readdir(join(ws.dir, 'cache'))).toEqual(expect.arrayContaining(['up:z:v1', 'up:z:v1.zst']));
    const stored = (await (await fetch(`${server.url}/repos/up.json`)).json()) as typeof listed;
    expect(stored.templates.z.versions.v1).toMatchObject({ zst_hash: upstreamZst });
    expect(stored.templates.z.versions.v1.compressed_hash).toBeUndefined();
    const head = await fetch(`${server.url}/repos/up/z/v1/image.zst`, { method: 'HEAD' });
    expect(head.headers.get('content-type')).toBe('application/zstd');
    expect((await ws.requests('/z/v1.zst')).filter((line) => line.startsWith('GET '))).toHaveLength(1);
    expect(await ws.requests('/z/v1.xz')).toEqual([]);
  });

  // The farm found it: an entry evicted to make room for another pull was answered 404 (IMAGE_NOT_FOUND) until the
  // inventory caught up, instead of being pulled again.
  it('pulls again an entry removed behind its back (evicted, or rm by another process) instead of answering 404', async () => {
    expect((await neighbour(await newStore(), ['up:plain:v1'])).exitCode).toBe(0);
    const before = (await ws.requests('/plain/v1')).filter((line) => line.startsWith('GET ')).length;
    const removed = await runCli(['rm', '--store', join(ws.dir, 'cache'), 'up:plain:v1'], { HOME: ws.dir });
    expect(removed.exitCode, removed.stderr).toBe(0);
    const again = await neighbour(await newStore(), ['up:plain:v1']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(await digestOf((JSON.parse(again.stdout) as { path: string }).path)).toBe(await digestOf(raw));
    expect((await ws.requests('/plain/v1')).filter((line) => line.startsWith('GET ')).length).toBe(before + 1);
  });

  it('serves an upstream without .xz uncompressed once stored (the neighbour waits through 503 + Retry-After)', async () => {
    const result = await neighbour(await newStore(), ['up:plain']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(await digestOf((JSON.parse(result.stdout) as { path: string }).path)).toBe(await digestOf(raw));
  });

  it('8 neighbours asking at once for a template it lacks cause one upstream download; a late one gets bytes before the pull ends', async () => {
    const stores = await Promise.all(Array.from({ length: 8 }, newStore));
    const fetches = stores.map((store) => neighbour(store, ['up:big']));
    await sleep(800);
    const asked = Date.now();
    const response = await fetch(`${server.url}/repos/up/big/v1/image.xz`);
    const reader = response.body!.getReader();
    const firstChunk = await reader.read();
    const firstByteAt = Date.now();
    let received = firstChunk.value?.length ?? 0;
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) received += chunk.value.length;
    const results = await Promise.all(fetches);
    for (const result of results) {
      expect(result.exitCode, result.stderr).toBe(0);
      expect(await digestOf((JSON.parse(result.stdout) as { path: string }).path)).toBe(await digestOf(big));
    }
    expect(await xzGets('big')).toBe(1);
    const pullEnd = server
      .logs()
      .find((line) => line.kind === 'pull' && line.ref === 'up:big:v1' && line.event === 'end');
    expect(pullEnd).toMatchObject({ ok: true });
    expect(firstByteAt).toBeGreaterThan(asked);
    expect(firstByteAt).toBeLessThan(Date.parse(String(pullEnd!.time)));
    expect(received).toBe((await stat(join(ws.www, 'big/v1.xz'))).size);
  });

  it("aborts the neighbours' responses and stores nothing when upstream verification fails", async () => {
    const store = await newStore();
    const result = await neighbour(store, ['up:bad']);
    expect(result.exitCode).not.toBe(0);
    expect(withoutLockFiles(await readdir(join(ws.dir, 'cache'))).filter((name) => name.startsWith('up:bad'))).toEqual(
      [],
    );
    expect(withoutLockFiles(await readdir(store).catch(() => [])).filter((name) => name.startsWith('up:bad'))).toEqual(
      [],
    );
    const again = await fetch(`${server.url}/repos/up/bad/v1/image.xz`);
    expect(again.status).toBe(502);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe('HASH_MISMATCH');
  });

  it('answers Range, ETag, If-Range, If-None-Match and 416 on stored files (curl)', async () => {
    const url = `${server.url}/repos/up/a/v1/image.xz`;
    const size = (await stat(join(ws.dir, 'cache', 'up:a:v1.xz'))).size;
    const curl = async (...args: string[]) =>
      (await execa('curl', ['-s', '-o', '/dev/null', '-D', '-', ...args, url])).stdout;
    const head = await curl('-I');
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    const etag = /etag: (.+)\r/i.exec(head)![1]!;
    expect(head).toMatch(new RegExp(`content-length: ${size}`, 'i'));
    expect(await curl('-r', '0-99')).toMatch(
      new RegExp(`^HTTP/1.1 206[\\s\\S]*content-range: bytes 0-99/${size}`, 'i'),
    );
    expect(await curl('-H', `If-None-Match: ${etag}`)).toMatch(/^HTTP\/1\.1 304/);
    expect(await curl('-r', '0-99', '-H', `If-Range: ${etag}`)).toMatch(/^HTTP\/1\.1 206/);
    expect(await curl('-r', '0-99', '-H', 'If-Range: "another-version"')).toMatch(/^HTTP\/1\.1 200/);
    expect(await curl('-r', `${size + 10}-${size + 20}`)).toMatch(/^HTTP\/1\.1 416/);
    const body = await execa('curl', ['-s', url], { encoding: 'buffer' });
    expect(Buffer.from(body.stdout).length).toBe(size);
  });

  it("resumes a neighbour's download after the neighbour was killed", async () => {
    // A real nginx in front, sending 1 MB/s (buffered: limit_rate does not apply to unbuffered proxying), so the neighbour is killed half-way.
    const dir = await mkdtemp(join(ws.dir, 'proxy-'));
    const port = await freePort();
    let proxy: RunningNginx | undefined;
    try {
      proxy = await startNginx(
        dir,
        nginxConf(
          dir,
          `  server {
    listen 127.0.0.1:${port};
    access_log ${dir}/access.log;
    location / { proxy_pass ${server.url}; proxy_set_header Host $http_host; limit_rate 1m; }
  }`,
        ),
        port,
      );
      const store = await newStore();
      const base = `http://127.0.0.1:${port}`;
      const args = [CLI, 'fetch', '--store', store, '--repo', `${base}/repos/up.json`, 'up:big'];
      const first = execa(process.execPath, args, {
        env: { PATH: TOOL_PATH, HOME: ws.dir },
        extendEnv: false,
        reject: false,
      });
      const partial = join(store, '.tmp', 'up:big:v1', 'partial');
      for (let i = 0; i < 200 && ((await stat(partial).catch(() => undefined))?.size ?? 0) < 1024 * 1024; i++)
        await sleep(50);
      first.kill('SIGKILL');
      await first;
      const kept = (await stat(partial)).size;
      expect(kept).toBeGreaterThan(1024 * 1024);
      const second = await runCli(args.slice(1), { HOME: ws.dir });
      expect(second.exitCode, second.stderr).toBe(0);
      expect(await digestOf(join(store, 'up:big:v1'))).toBe(await digestOf(big));
      const bigXz = server
        .logs()
        .filter((line) => line.kind === 'request' && line.path === '/repos/up/big/v1/image.xz')
        .map((line) => line.status);
      expect(
        bigXz,
        JSON.stringify(server.logs().filter((line) => String(line.path ?? line.ref ?? '').includes('big'))),
      ).toContain(206);
    } finally {
      await proxy?.stop();
    }
  });

  it('refuses traversal, bad encodings, NUL, overlong names and other methods without touching anything outside the store', async () => {
    await writeFile(join(ws.dir, 'secret.txt'), 'do not serve');
    const status = async (path: string, method = 'GET') =>
      Number(
        (
          await execa('curl', [
            '-s',
            '-o',
            '/dev/null',
            '-w',
            '%{http_code}',
            '--path-as-is',
            '-X',
            method,
            `${server.url}${path}`,
          ])
        ).stdout,
      );
    for (const path of [
      '/repos/%2e%2e%2fsecret.txt',
      '/repos/../secret.txt',
      '/repos/up/..%2f..%2f/v1/image',
      '/repos/up/a/v1/%00',
      '/repos/up%00/a/v1/image',
      '/repos/%ZZ.json',
      `/repos/${'x'.repeat(300)}.json`,
      '/repos/up/a/v1/image%2f..',
    ]) {
      expect([400, 404], path).toContain(await status(path));
    }
    expect([400, 404]).toContain(await status('/repos/up/a/v1/secret.txt'));
    expect(await status('/repos/up.json', 'DELETE')).toBe(405);
    expect(await status('/repos/up/a/v1/image', 'PUT')).toBe(405);
    expect(await status('/nothing/here')).toBe(404);
    expect(await status('/nothing/here', 'POST')).toBe(404);
    // Allow lists the methods the routes registered for that path answer.
    const allow = async (path: string, method: string) => {
      const response = await fetch(`${server.url}${path}`, { method });
      return [response.status, response.headers.get('allow')];
    };
    expect(await allow('/healthz', 'DELETE')).toEqual([405, 'GET, HEAD']);
    expect(await allow('/api/1/jobs', 'PUT')).toEqual([405, 'POST, GET, HEAD']);
    expect(await allow('/auth_token', 'POST')).toEqual([405, 'GET, HEAD']);
    const big = await execa(
      'curl',
      [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-X',
        'POST',
        '-H',
        'content-type: application/json',
        '--data-binary',
        '@-',
        `${server.url}/api/1/jobs`,
      ],
      { input: `{"x":"${'y'.repeat(200_000)}"}` },
    );
    expect([404, 405, 413]).toContain(Number(big.stdout));
  });
});
