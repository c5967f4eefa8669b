// serve's Vagrant catalogues read by the real vagrant (Debian's, temp VAGRANT_HOME): add, outdated, update, prune, checksum.
import { copyFile, mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexDirectory } from '../../src/api/publish.js';
import { createContext } from '../../src/index.js';
import { workspace, type Workspace } from '../helpers/env.js';
import { TOOL_PATH, makeVersionPair } from '../helpers/images.js';
import { startServe, type Served } from '../helpers/serve.js';
import { selfSigned } from '../helpers/tls.js';

let ws: Workspace;
let server: Served;
let cache: string;
let cert: string;
let pair: { v1: string; v2: string };

const publish = () =>
  indexDirectory(ws.www, {
    name: 'pub',
    baseUrl: ws.baseurl,
    chunkSizes: false,
    context: createContext({ env: { PATH: TOOL_PATH } }),
  });

/** The real vagrant with a home of its own, our certificate trusted (its catalogue reads and curl's downloads). */
const vagrant = (home: string, args: string[]) =>
  execa('vagrant', args, {
    env: {
      PATH: TOOL_PATH,
      HOME: ws.dir,
      VAGRANT_HOME: join(ws.dir, home),
      VAGRANT_SERVER_URL: `${server.url}/vagrant`,
      VAGRANT_CHECKPOINT_DISABLE: '1',
      SSL_CERT_FILE: cert,
      CURL_CA_BUNDLE: cert,
    },
    extendEnv: false,
    reject: false,
    timeout: 120_000,
    cwd: ws.dir,
  });

/** The catalogue as served (the test trusts the certificate through curl). */
async function catalogue(): Promise<{ versions: Array<{ version: string; description: string }> }> {
  const { stdout } = await execa('curl', ['-sf', '--cacert', cert, `${server.url}/vagrant/pub/tpl`]);
  return JSON.parse(stdout);
}

/** Upstream downloads of a version's image (either compressed form), from nginx's log. */
const downloads = async (version: string) =>
  (await ws.requests()).filter(
    (line) => /^GET /.test(line) && new RegExp(`/tpl/${version}/disk\\.raw\\.(xz|zst) `).test(`${line.split(' ')[1]} `),
  ).length;

beforeAll(async () => {
  ws = await workspace();
  pair = await makeVersionPair(ws.dir, { sizeMiB: 16, dataKiB: 2048, changedKiB: 256, atMiB: 2 });
  await mkdir(join(ws.www, 'tpl', 'v1'), { recursive: true });
  await copyFile(pair.v1, join(ws.www, 'tpl', 'v1', 'disk.raw'));
  const summary = await publish();
  let key: string;
  ({ cert, key } = await selfSigned(ws.dir, 'cache'));
  cache = join(ws.dir, 'cache');
  // The repositories are read again every 10 s: a version published upstream shows within that.
  server = await startServe(
    ['--store', cache, '--repo', summary.output, '--tls-cert', cert, '--tls-key', key, '--grace', '20s'],
    { HOME: ws.dir, TEMPLATES_REPO_TTL_SECONDS: '1' },
  );
});
afterAll(async () => {
  await server?.stop();
  await ws.cleanup();
});

describe('serve: Vagrant box catalogues', () => {
  it('vagrant box add by short name pulls the template through the cache host once, however many hosts ask', async () => {
    const [a, b] = await Promise.all([
      vagrant('home-a', ['box', 'add', 'pub/tpl', '--provider', 'libvirt']),
      vagrant('home-b', ['box', 'add', 'pub/tpl', '--provider', 'libvirt']),
    ]);
    for (const added of [a, b]) {
      expect(added.stderr).toBe('');
      expect(added.stdout).toMatch(/Successfully added box 'pub\/tpl'/);
    }
    expect(await downloads('v1')).toBe(1);
    const list = await vagrant('home-a', ['box', 'list']);
    expect(list.stdout).toMatch(/^pub\/tpl\s+\(libvirt, \d{8}\.\d+\.0\)$/m);
  });

  it('vagrant box add by the catalogue URL gives a box holding the stored image as qcow2', async () => {
    const added = await vagrant('home-url', ['box', 'add', `${server.url}/vagrant/pub/tpl`, '--provider', 'libvirt']);
    expect(added.stdout).toMatch(/Successfully added box 'pub\/tpl'/);
    const [version] = (await catalogue()).versions;
    const dir = join(ws.dir, 'home-url', 'boxes', 'pub-VAGRANTSLASH-tpl', version!.version, 'libvirt');
    expect(JSON.parse(await readFile(join(dir, 'metadata.json'), 'utf8'))).toEqual({
      provider: 'libvirt',
      format: 'qcow2',
      virtual_size: 1,
    });
    const compare = await execa('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', pair.v1, join(dir, 'box.img')], {
      reject: false,
    });
    expect(compare.exitCode).toBe(0);
  });

  it('after a newer version is published: box outdated says so, box update fetches it, box prune removes the old one', async () => {
    await mkdir(join(ws.www, 'tpl', 'v2'), { recursive: true });
    await copyFile(pair.v2, join(ws.www, 'tpl', 'v2', 'disk.raw'));
    // A second later than v1, as a new version is.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await publish();
    await expect.poll(async () => (await catalogue()).versions.length, { timeout: 30_000, interval: 1000 }).toBe(2);
    const outdated = await vagrant('home-a', ['box', 'outdated', '--global']);
    expect(outdated.stdout).toMatch(/pub\/tpl.*is outdated/);
    const updated = await vagrant('home-a', ['box', 'update', '--box', 'pub/tpl', '--provider', 'libvirt']);
    expect(updated.stdout).toMatch(/Successfully added box 'pub\/tpl'/);
    const versions = (await catalogue()).versions.map((v) => v.version);
    expect((await vagrant('home-a', ['box', 'list'])).stdout.match(/pub\/tpl/g)).toHaveLength(2);
    const pruned = await vagrant('home-a', ['box', 'prune', '--force', '--name', 'pub/tpl']);
    expect(pruned.exitCode).toBe(0);
    const left = (await vagrant('home-a', ['box', 'list'])).stdout;
    expect(left).toContain(versions[1]!);
    expect(left).not.toContain(versions[0]!);
    expect(await downloads('v2')).toBe(1);
  });

  it('vagrant refuses a box whose bytes do not match the catalogue checksum', async () => {
    const box = join(cache, 'pub:tpl:v2.box');
    const original = await readFile(box);
    const file = await open(box, 'r+');
    await file.write(Buffer.from('X'), 0, 1, original.length - 2048);
    await file.close();
    try {
      const added = await vagrant('home-bad', ['box', 'add', 'pub/tpl', '--provider', 'libvirt']);
      expect(added.exitCode).not.toBe(0);
      expect(added.stderr).toMatch(/checksum of the downloaded box did not match/i);
    } finally {
      await writeFile(box, original);
    }
  });

  it('answers 404 in JSON for an unknown box or file, and counts what it served', async () => {
    for (const path of ['/vagrant/pub/nope', '/vagrant/pub/tpl/v1/other.box', '/vagrant/pub/tpl/nope/libvirt.box']) {
      const result = await execa('curl', [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--cacert',
        cert,
        `${server.url}${path}`,
      ]);
      expect(result.stdout).toBe('404');
    }
    const { stdout } = await execa('curl', ['-sf', '--cacert', cert, `${server.url}/metrics`]);
    expect(stdout).toMatch(/templates_format_bytes_total\{format="vagrant"\} [1-9]/);
  });
});
