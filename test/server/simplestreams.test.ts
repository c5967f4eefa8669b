// serve over TLS as a simplestreams server, read by the real lxc (Debian's lxd-client, no daemon): list, info, export, hash check.
import { X509Certificate, createHash } from 'node:crypto';
import { mkdir, open, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexDirectory } from '../../src/api/publish.js';
import { createContext, fetchTemplates } from '../../src/index.js';
import { runCli, workspace, type Workspace } from '../helpers/env.js';
import { TOOL_PATH, makeVersionPair, placeVersions } from '../helpers/images.js';
import { startServe, type Served } from '../helpers/serve.js';
import { selfSigned } from '../helpers/tls.js';

let ws: Workspace;
let server: Served;
let repo: string;
let cache: string;
let home: string;
let tls: { cert: string; key: string };
let v1: string;
/** The first certificate: what the test's own requests trust. */
let ca: Buffer;

/** GET over https trusting the test's certificate: status and body. */
function get(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}`, { ca }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The real lxc, with its own HOME (its config) and our certificate trusted. */
const lxc = (args: string[]) =>
  execa('lxc', args, {
    env: { HOME: home, PATH: TOOL_PATH, SSL_CERT_FILE: tls.cert },
    extendEnv: false,
    reject: false,
    timeout: 60_000,
  });

/** The certificate the server presents to a new connection. */
function presented(): Promise<string> {
  const port = Number(new URL(server.url).port);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(new X509Certificate(socket.getPeerCertificate(true).raw).fingerprint256);
      socket.end();
    });
    socket.on('error', reject);
  });
}

beforeAll(async () => {
  ws = await workspace();
  ({ v1 } = await (async () => {
    const pair = await makeVersionPair(ws.dir, { sizeMiB: 16, dataKiB: 2048, changedKiB: 256, atMiB: 2 });
    await placeVersions(ws.www, pair);
    return pair;
  })());
  const summary = await indexDirectory(ws.www, {
    name: 'pub',
    baseUrl: ws.baseurl,
    chunkSizes: false,
    context: createContext({ env: { PATH: TOOL_PATH } }),
  });
  repo = summary.output;
  cache = join(ws.dir, 'cache');
  // The cache host holds v1 already; v2 comes through it later.
  await fetchTemplates(['pub:tpl:v1'], {
    repos: [repo],
    store: cache,
    context: createContext({ env: { PATH: TOOL_PATH } }),
  });
  tls = await selfSigned(ws.dir, 'cache');
  ca = await readFile(tls.cert);
  home = join(ws.dir, 'lxc-home');
  await mkdir(join(home, '.config', 'lxc'), { recursive: true });
  server = await startServe(['--store', cache, '--repo', repo, '--tls-cert', tls.cert, '--tls-key', tls.key], {
    HOME: ws.dir,
  });
  expect(server.url).toMatch(/^https:\/\//);
  const added = await lxc(['remote', 'add', 'cache', server.url, '--protocol=simplestreams', '--public']);
  expect(added.stderr).toBe('');
  expect(added.exitCode).toBe(0);
});
afterAll(async () => {
  await server?.stop();
  await ws.cleanup();
});

describe('serve: simplestreams for lxc, over TLS', () => {
  it('lxc lists what the cache host holds, and shows a version by its aliases', async () => {
    const list = await lxc(['image', 'list', 'cache:', '--format=json']);
    expect(list.exitCode).toBe(0);
    const images = JSON.parse(list.stdout) as Array<{ type: string; aliases: Array<{ name: string }> }>;
    expect(images).toHaveLength(1);
    expect(images[0]!.type).toBe('virtual-machine');
    expect(images[0]!.aliases.map((alias) => alias.name)).toEqual(expect.arrayContaining(['pub/tpl/v1', 'pub/tpl']));
    const info = await lxc(['image', 'info', 'cache:pub/tpl/v1']);
    expect(info.stdout).toMatch(/Type: virtual-machine/);
    expect(info.stdout).toMatch(/release: tpl/);
  });

  it('lxc exports a version: the qcow2 holds the stored image byte for byte', async () => {
    const out = join(ws.dir, 'export-v1');
    await mkdir(out);
    const exported = await lxc(['image', 'export', 'cache:pub/tpl/v1', `${out}/`]);
    expect(exported.exitCode).toBe(0);
    expect((await readdir(out)).sort()).toEqual(['disk-kvm.img', 'lxd.tar.xz']);
    const compare = await execa('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', v1, join(out, 'disk-kvm.img')], {
      reject: false,
    });
    expect(compare.exitCode).toBe(0);
    const tar = await execa('tar', ['-xJOf', join(out, 'lxd.tar.xz'), 'metadata.yaml']);
    expect(tar.stdout).toMatch(/^architecture: "x86_64"$/m);
  });

  it('a version pulled through the cache host appears in the catalogue, and the template alias moves to it', async () => {
    const neighbour = await runCli(
      ['fetch', '-q', '--repo', `${server.url}/repos/pub.json`, '--store', join(ws.dir, 'n1'), 'pub:tpl:v2'],
      { NODE_EXTRA_CA_CERTS: tls.cert },
    );
    expect(neighbour.stderr).toBe('');
    expect(neighbour.exitCode).toBe(0);
    // lxc keeps no cache between runs: a fresh read of the catalogue.
    // The cache host's view of its store catches up with the pull within moments.
    await expect
      .poll(async () => (await lxc(['image', 'info', 'cache:pub/tpl'])).stdout, { timeout: 20_000 })
      .toMatch(/version: v2/);
    const images = JSON.parse((await lxc(['image', 'list', 'cache:', '--format=json'])).stdout) as unknown[];
    expect(images).toHaveLength(2);
  });

  it('virt-builder reads the same catalogue (format=simplestreams): each version by its pubname, the qcow2 checked', async () => {
    const config = join(ws.dir, 'vb-config', 'virt-builder', 'repos.d');
    await mkdir(config, { recursive: true });
    await writeFile(join(config, 'cache.conf'), `[cache]\nuri=${server.url}/\nformat=simplestreams\n`);
    const env = {
      PATH: TOOL_PATH,
      HOME: ws.dir,
      XDG_CONFIG_HOME: '',
      VIRT_BUILDER_DIRS: join(ws.dir, 'vb-config'),
      XDG_CACHE_HOME: join(ws.dir, 'vb-cache'),
      CURL_CA_BUNDLE: tls.cert,
    };
    const run = (args: string[]) =>
      execa('virt-builder', ['--no-check-signature', ...args], {
        env,
        extendEnv: false,
        reject: false,
        timeout: 120_000,
      });
    const listed = await run(['--list']);
    expect(listed.stderr).toBe('');
    expect(listed.stdout).toMatch(/^pub:tpl:v1\s+amd64\s+pub:tpl:v1$/m);
    expect(listed.stdout).toMatch(/^pub:tpl:v2\s+amd64\s+pub:tpl:v2$/m);
    expect((await run(['--cache-all-templates'])).exitCode).toBe(0);
    const cached = (await readdir(join(ws.dir, 'vb-cache', 'virt-builder'))).find((name) =>
      name.startsWith('pub:tpl:v1.'),
    );
    const catalogue = JSON.parse((await get('/streams/v1/images.json')).body);
    const item = Object.values(catalogue.products['pub:tpl:v1'].versions as Record<string, any>)[0].items['disk1.img'];
    const bytes = await readFile(join(ws.dir, 'vb-cache', 'virt-builder', cached!));
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(item.sha256);
  });

  it("counts the renditions in the entry's size, and removes them with it", async () => {
    const qcow2 = join(cache, 'pub:tpl:v2.qcow2');
    expect((await stat(qcow2)).size).toBeGreaterThan(0);
    const du = JSON.parse((await runCli(['du', '--json', '--store', cache])).stdout);
    const v2 = du.repositories[0].templates[0].versions.find((v: { name: string }) => v.name === 'v2');
    expect(v2.size).toBeGreaterThan(16 * 1024 * 1024 + (await stat(qcow2)).size - 1);
    const removed = await runCli(['rm', '--store', cache, 'pub:tpl:v2']);
    expect(removed.exitCode).toBe(0);
    const left = (await readdir(cache)).filter((name) => name.startsWith('pub:tpl:v2'));
    // lago's lock file stays, as lago leaves it.
    expect(left).toEqual(['pub:tpl:v2.lock']);
    const images = JSON.parse((await lxc(['image', 'list', 'cache:', '--format=json'])).stdout) as unknown[];
    expect(images).toHaveLength(1);
  });

  it('lxc refuses a file whose bytes do not match the catalogue (Hash mismatch)', async () => {
    const qcow2 = join(cache, 'pub:tpl:v1.qcow2');
    const original = await readFile(qcow2);
    const file = await open(qcow2, 'r+');
    await file.write(Buffer.from('X'), 0, 1, original.length - 4096);
    await file.close();
    try {
      const out = join(ws.dir, 'export-bad');
      await mkdir(out);
      const exported = await lxc(['image', 'export', 'cache:pub/tpl/v1', `${out}/`]);
      expect(exported.exitCode).not.toBe(0);
      expect(exported.stderr).toMatch(/Hash mismatch/);
    } finally {
      await writeFile(qcow2, original);
    }
  });

  it('answers 404 in JSON for an unknown version or file, and counts what it served by format', async () => {
    for (const path of ['/streams/images/pub/tpl/nope/disk-kvm.img', '/streams/images/pub/tpl/v1/other.img']) {
      const response = await get(path);
      expect(response.status).toBe(404);
      expect(JSON.parse(response.body).error.code).toBe('IMAGE_NOT_FOUND');
    }
    // Path tricks on every catalogue route end in 400/404: names are looked up, never joined into paths.
    for (const path of [
      '/streams/images/..%2f..%2f..%2fetc/passwd/x/disk-kvm.img',
      '/streams/images/pub/tpl/v1%00/disk-kvm.img',
      '/vagrant/%2e%2e/%2e%2e',
      '/vagrant/pub/tpl/..%2f..%2fcache/libvirt.box',
      '/virt-builder/..%2f..%2f/tpl/v1/disk.xz',
      '/virt-builder/pub/tpl/v1/..%2f..%2fsecret',
    ]) {
      // curl sends the path as it is (fetch and https.request would resolve the dot segments first).
      const { stdout } = await execa('curl', [
        '-s',
        '--path-as-is',
        '--cacert',
        tls.cert,
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        `${server.url}${path}`,
      ]);
      expect([400, 404], path).toContain(Number(stdout));
    }
    const metrics = (await get('/metrics')).body;
    expect(metrics).toMatch(/templates_format_requests_total\{format="simplestreams"\} [1-9]/);
    expect(metrics).toMatch(/templates_format_bytes_total\{format="simplestreams"\} [1-9]/);
    const formats = JSON.parse((await get('/api/1/formats')).body) as {
      formats: Array<{ format: string; requests: number; bytes: number }>;
    };
    expect(formats.formats.find((f) => f.format === 'simplestreams')).toMatchObject({
      requests: expect.any(Number),
      bytes: expect.any(Number),
    });
    expect(formats.formats.find((f) => f.format === 'simplestreams')!.bytes).toBeGreaterThan(0);
  });

  it('takes a renewed certificate on SIGHUP without a restart; a bad pair is logged and the old one kept', async () => {
    const before = await presented();
    const renewed = await selfSigned(ws.dir, 'renewed');
    await writeFile(tls.cert, await readFile(renewed.cert));
    await writeFile(tls.key, await readFile(renewed.key));
    server.process.kill('SIGHUP');
    await expect.poll(presented, { timeout: 10_000 }).not.toBe(before);
    const now = await presented();
    await writeFile(tls.key, 'not a key\n');
    server.process.kill('SIGHUP');
    await expect
      .poll(() => server.logs().some((line) => line.kind === 'tls' && line.error === 'CONFIG_INVALID'), {
        timeout: 10_000,
      })
      .toBe(true);
    expect(await presented()).toBe(now);
    expect(server.process.exitCode).toBeNull();
  });
});
