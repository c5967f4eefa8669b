// A pull killed mid-blob resumes from the kept bytes with Range, through a slow proxy (nginx, limit_rate) in front of docker-registry.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli, workspace, type Workspace } from '../helpers/env.js';
import { TOOL_PATH, publishImage } from '../helpers/images.js';
import { freePort, nginxConf, startNginx, type RunningNginx } from '../helpers/nginx.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';

let ws: Workspace;
let registry: RunningRegistry;
let proxy: RunningNginx;
let proxyHost: string;
let accessLog: string;
let stored: string;
const cli = (args: string[]) => runCli(args, { HOME: ws.dir });

beforeAll(async () => {
  ws = await workspace();
  registry = await startRegistry(join(ws.dir, 'registry'));
  // 8 MiB of random data: the .xz is as large, so at 1 MiB/s a pull takes 8 s.
  const raw = join(ws.dir, 'random.raw');
  await writeFile(raw, randomBytes(8 * 1024 * 1024));
  const src = join(ws.dir, 'src');
  await publishImage(src, 'big/v1.raw', raw);
  const repo = await ws.writeRepo('demo', {
    name: 'demo',
    sources: { disk: { type: 'file', args: { root: src } } },
    templates: { big: { versions: { v1: { source: 'disk', handle: 'big/v1.raw', timestamp: 1 } } } },
  });
  const fetched = await cli(['fetch', 'demo:big:v1', '--repo', repo, '--store', join(ws.dir, 'store'), '-q']);
  expect(fetched.exitCode, fetched.stderr).toBe(0);
  stored = fetched.stdout.trim();
  const pushed = await cli([
    'push',
    'demo:big:v1',
    `oci://${registry.host}/templates/big:v1`,
    '--repo',
    repo,
    '--store',
    join(ws.dir, 'store'),
    '-q',
  ]);
  expect(pushed.exitCode, pushed.stderr).toBe(0);
  const prefix = join(ws.dir, 'nginx');
  await mkdir(prefix, { recursive: true });
  const port = await freePort();
  accessLog = join(prefix, 'access.log');
  proxy = await startNginx(
    prefix,
    nginxConf(
      prefix,
      `  log_format ranges '$request_method $uri $status "$http_range"';
  access_log ${accessLog} ranges;
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://${registry.host}; proxy_set_header Host $http_host; limit_rate 1m; limit_rate_after 0; } }`,
    ),
    port,
  );
  proxyHost = `127.0.0.1:${port}`;
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  await ws?.cleanup();
});

describe('resume of an OCI pull', () => {
  it('keeps the bytes of a pull killed mid-blob and asks for the rest with Range; the image verifies', async () => {
    const store = join(ws.dir, 'store-pull');
    const ref = `oci://${proxyHost}/templates/big:v1`;
    const child = execa(process.execPath, [CLI, 'fetch', ref, '--store', store, '-q'], {
      env: { PATH: TOOL_PATH, HOME: ws.dir, TEMPLATES_LOCK_STALE_SECONDS: '2' },
      extendEnv: false,
      reject: false,
    });
    const partial = join(store, '.tmp', `${proxyHost.replace(':', '_')}:templates+big:v1`, 'partial');
    let kept = 0;
    for (let i = 0; i < 100 && kept < 1024 * 1024; i++) {
      await sleep(50);
      kept = (await stat(partial).catch(() => ({ size: 0 }))).size;
    }
    child.kill('SIGKILL');
    await child;
    kept = (await stat(partial)).size;
    // Killed mid-blob: some bytes kept, not all of them.
    expect(kept).toBeGreaterThanOrEqual(1024 * 1024);
    expect(kept).toBeLessThan((await stat(stored)).size);
    const resumed = await cli(['fetch', ref, '--store', store, '--json']);
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    const result = JSON.parse(resumed.stdout.trim()) as { path: string };
    expect(Buffer.compare(await readFile(result.path), await readFile(stored))).toBe(0);
    const blobGets = (await readFile(accessLog, 'utf8'))
      .split('\n')
      .filter((line) => line.startsWith('GET /v2/templates/big/blobs/sha256:'));
    const ranged = blobGets.filter((line) => / 206 "bytes=\d+-"$/.test(line));
    expect(ranged, blobGets.join('\n')).toHaveLength(1);
    expect(Number(/bytes=(\d+)-/.exec(ranged[0]!)![1])).toBeGreaterThanOrEqual(kept - 64 * 1024);
  });
});
