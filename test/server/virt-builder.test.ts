// serve's virt-builder index read by the real virt-builder (guestfs-tools): --list and --cache-all-templates, and its grammar.
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexDirectory } from '../../src/api/publish.js';
import { createContext } from '../../src/index.js';
import { runCli, workspace, type Workspace } from '../helpers/env.js';
import { TOOL_PATH, makeDisk } from '../helpers/images.js';
import { startServe, type Served } from '../helpers/serve.js';

let ws: Workspace;
let server: Served;
let disks: { xz: string; zst: string };
let cache: string;

/** The line rules of virt-builder's index scanner (builder/index-scan.l): every line is one of these. */
const LINE = [/^#.*$/, /^$/, /^\[[-A-Za-z0-9._]+\][ \t]*$/, /^[A-Za-z0-9_.]+(\[[A-Za-z0-9_,.]+\])?=.*$/, /^[ \t].*$/];

/** Publishes one image as REPO:tpl:v1 in a directory of its own (`formats`: what index writes beside it). */
async function publishRepo(name: string, image: string, formats: Array<'xz' | 'zst'>) {
  const root = join(ws.www, name);
  await mkdir(join(root, 'tpl', 'v1'), { recursive: true });
  await copyFile(image, join(root, 'tpl', 'v1', 'disk.raw'));
  const summary = await indexDirectory(root, {
    name,
    baseUrl: `${ws.baseurl}${name}/`,
    formats,
    chunkSizes: false,
    context: createContext({ env: { PATH: TOOL_PATH } }),
  });
  return summary.output;
}

/** The real virt-builder with only our index as its source (guestfs-tools' own tests set it up so). */
async function virtBuilder(args: string[]) {
  const config = join(ws.dir, 'vb-config');
  await mkdir(join(config, 'virt-builder', 'repos.d'), { recursive: true });
  const conf = `[cache]\nuri=${server.url}/virt-builder/index\n`;
  await writeFile(join(config, 'virt-builder', 'repos.d', 'cache.conf'), conf);
  return execa('virt-builder', ['--no-check-signature', ...args], {
    env: {
      PATH: TOOL_PATH,
      HOME: ws.dir,
      XDG_CONFIG_HOME: '',
      VIRT_BUILDER_DIRS: config,
      XDG_CACHE_HOME: join(ws.dir, 'vb-cache'),
    },
    extendEnv: false,
    reject: false,
    timeout: 120_000,
  });
}

const sha512 = async (path: string) =>
  createHash('sha512')
    .update(await readFile(path))
    .digest('hex');

beforeAll(async () => {
  ws = await workspace();
  disks = {
    xz: await makeDisk(join(ws.dir, 'a.raw'), { sizeMiB: 16, dataKiB: 1024, label: 'a' }),
    zst: await makeDisk(join(ws.dir, 'b.raw'), { sizeMiB: 16, dataKiB: 1024, label: 'b' }),
  };
  const repos = [await publishRepo('onlyxz', disks.xz, ['xz']), await publishRepo('both', disks.zst, ['xz', 'zst'])];
  cache = join(ws.dir, 'cache');
  server = await startServe(['--store', cache, ...repos.flatMap((repo) => ['--repo', repo])], { HOME: ws.dir });
  // Neighbours bring both in through the cache host: it keeps the .xz of one and the .zst of the other.
  for (const ref of ['onlyxz:tpl:v1', 'both:tpl:v1']) {
    const repo = `${server.url}/repos/${ref.split(':')[0]}.json`;
    const fetched = await runCli(['fetch', '-q', '--repo', repo, '--store', join(ws.dir, 'n1'), ref]);
    expect(fetched.stderr).toBe('');
  }
  // The cache host's view of its store catches up with the pulls within moments.
  for (let tries = 0; tries < 100; tries++) {
    const sections = (await (await fetch(`${server.url}/virt-builder/index`)).text()).match(/^\[/gm)?.length ?? 0;
    if (sections === 2) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
});
afterAll(async () => {
  await server?.stop();
  await ws.cleanup();
});

describe('serve: virt-builder index', () => {
  it('writes only lines of the grammar virt-builder scans, a section per stored template', async () => {
    const index = await (await fetch(`${server.url}/virt-builder/index`)).text();
    for (const line of index.replace(/\n$/, '').split('\n'))
      expect(
        LINE.some((rule) => rule.test(line)),
        line,
      ).toBe(true);
    expect(index.match(/^\[[^\]]+\]$/gm)).toEqual(['[both.tpl]', '[onlyxz.tpl]']);
  });

  it('virt-builder --list shows each template by its section and name', async () => {
    const listed = await virtBuilder(['--list']);
    expect(listed.stderr).toBe('');
    expect(listed.stdout).toMatch(/^both\.tpl\s+x86_64\s+both:tpl:v1$/m);
    expect(listed.stdout).toMatch(/^onlyxz\.tpl\s+x86_64\s+onlyxz:tpl:v1$/m);
    const json = JSON.parse((await virtBuilder(['--list', '--list-format=json'])).stdout);
    const xz = json.templates.find((t: { 'os-version': string }) => t['os-version'] === 'onlyxz.tpl');
    expect(xz).toMatchObject({ 'full-name': 'onlyxz:tpl:v1', size: 16 * 1024 * 1024 });
  });

  it('virt-builder --cache-all-templates downloads each file; its SHA-512 is the index checksum and it holds the image', async () => {
    const cached = await virtBuilder(['--cache-all-templates']);
    expect(cached.exitCode).toBe(0);
    const dir = join(ws.dir, 'vb-cache', 'virt-builder');
    const files = (await readdir(dir)).sort();
    expect(files).toEqual([
      expect.stringMatching(/^both\.tpl\.x86_64\.\d+$/),
      expect.stringMatching(/^onlyxz\.tpl\.x86_64\.\d+$/),
    ]);
    const index = await (await fetch(`${server.url}/virt-builder/index`)).text();
    const sums = [...index.matchAll(/^checksum\[sha512\]=([0-9a-f]{128})$/gm)].map((m) => m[1]);
    expect([await sha512(join(dir, files[0]!)), await sha512(join(dir, files[1]!))]).toEqual(sums);
    // The .xz the cache host kept, and the raw image where it kept a .zst.
    expect(index).toMatch(/^file=onlyxz\/tpl\/v1\/disk\.xz$/m);
    expect(index).toMatch(/^file=both\/tpl\/v1\/disk\.raw$/m);
    const unpacked = await execa('xz', ['-dc', join(dir, files[1]!)], { encoding: 'buffer' });
    expect(Buffer.from(unpacked.stdout).equals(await readFile(disks.xz))).toBe(true);
    expect((await readFile(join(dir, files[0]!))).equals(await readFile(disks.zst))).toBe(true);
  });

  it('answers 404 in JSON for an unknown file, and counts what it served', async () => {
    for (const path of ['/virt-builder/onlyxz/tpl/v1/disk.raw', '/virt-builder/onlyxz/tpl/v9/disk.xz']) {
      const response = await fetch(`${server.url}${path}`);
      expect(response.status).toBe(404);
      expect((await response.json()).error.code).toBe('IMAGE_NOT_FOUND');
    }
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/templates_format_bytes_total\{format="virt-builder"\} [1-9]/);
  });
});
