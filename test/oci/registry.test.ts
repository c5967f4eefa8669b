// OCI registries end to end against Debian's docker-registry, with skopeo as the independent client: push, pull, sources, auth, lies.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, withoutLockFiles, workspace, type Workspace } from '../helpers/env.js';
import { makeDisk, publishImage, toQcow2 } from '../helpers/images.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';

let ws: Workspace;
let registry: RunningRegistry;
let repoFile: string;
let stored: string;
const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { HOME: ws.dir, ...env });
const storeOf = (name: string) => join(ws.dir, `store-${name}`);
const lastJson = (text: string) => JSON.parse(text.trim().split('\n').pop()!) as Record<string, any>;

beforeAll(async () => {
  ws = await workspace();
  registry = await startRegistry(join(ws.dir, 'registry'));
  const src = join(ws.dir, 'src');
  const disk = await makeDisk(join(ws.dir, 'disk.raw'), { sizeMiB: 8, dataKiB: 2048, label: 'oci' });
  await publishImage(src, 'tiny/v1.raw', disk);
  repoFile = await ws.writeRepo('demo', {
    name: 'demo',
    sources: { disk: { type: 'file', args: { root: src } } },
    templates: { tiny: { versions: { v1: { source: 'disk', handle: 'tiny/v1.raw', timestamp: 1700000000 } } } },
  });
  const fetched = await cli(['fetch', 'demo:tiny:v1', '--repo', repoFile, '--store', storeOf('main'), '-q']);
  expect(fetched.exitCode, fetched.stderr).toBe(0);
  stored = fetched.stdout.trim();
}, 60_000);

afterAll(async () => {
  await registry?.stop();
  await ws?.cleanup();
});

const uploads = (from: number) =>
  registry
    .requests()
    .slice(from)
    .filter((line) => /^(POST|PATCH|PUT) \/v2\/[^ ]+\/blobs\//.test(line));

describe('templates push and fetch oci://', () => {
  let digestRef: string;
  it('pushes our artifact; skopeo reads the manifest and copies the layer, which decodes to the stored image', async () => {
    const pushed = await cli([
      'push',
      'demo:tiny:v1',
      `oci://${registry.host}/templates/tiny:v1`,
      '--repo',
      repoFile,
      '--store',
      storeOf('main'),
      '-q',
      '--json',
    ]);
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    const result = lastJson(pushed.stdout);
    expect(result).toMatchObject({ ref: 'demo:tiny:v1', uploaded: 2, skipped: 0 });
    digestRef = result.reference as string;
    expect(digestRef).toMatch(new RegExp(`^oci://${registry.host}/templates/tiny@sha256:[a-f0-9]{64}$`));
    const raw = await execa('skopeo', [
      'inspect',
      '--raw',
      '--tls-verify=false',
      `docker://${registry.host}/templates/tiny:v1`,
    ]);
    const manifest = JSON.parse(raw.stdout) as {
      artifactType: string;
      config: { mediaType: string };
      layers: Array<{ mediaType: string; digest: string }>;
    };
    expect(manifest).toMatchObject({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.templates.image.v1',
      config: { mediaType: 'application/vnd.templates.image.config.v1+json' },
    });
    expect(manifest.layers).toEqual([
      expect.objectContaining({ mediaType: 'application/vnd.templates.image.raw.xz', digest: result.layer.digest }),
    ]);
    const dir = join(ws.dir, 'skopeo-dir');
    await execa('skopeo', [
      'copy',
      '--src-tls-verify=false',
      `docker://${registry.host}/templates/tiny:v1`,
      `dir:${dir}`,
    ]);
    const layerFile = join(dir, manifest.layers[0]!.digest.slice('sha256:'.length));
    const decoded = await execa('xz', ['-dc', layerFile], { encoding: 'buffer' });
    expect(Buffer.compare(Buffer.from(decoded.stdout), await readFile(stored))).toBe(0);
    // Multi-block, so a fetch decodes it on every core.
    const listed = await execa('xz', ['--robot', '--list', layerFile]);
    expect(listed.stdout).toMatch(/^file\t1\t/m);
  });

  it('a second push sends no blob', async () => {
    const before = registry.requests().length;
    const again = await cli([
      'push',
      'demo:tiny:v1',
      `oci://${registry.host}/templates/tiny:v1`,
      '--repo',
      repoFile,
      '--store',
      storeOf('main'),
      '-q',
      '--json',
    ]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(lastJson(again.stdout)).toMatchObject({ uploaded: 0, skipped: 2, reference: digestRef });
    expect(uploads(before)).toEqual([]);
  });

  it('a push to another repository of the registry mounts the blobs this store pushed before', async () => {
    const before = registry.requests().length;
    const copied = await cli([
      'push',
      'demo:tiny:v1',
      `oci://${registry.host}/templates/copy:v1`,
      '--repo',
      repoFile,
      '--store',
      storeOf('main'),
      '-q',
      '--json',
    ]);
    expect(copied.exitCode, copied.stderr).toBe(0);
    expect(lastJson(copied.stdout)).toMatchObject({ uploaded: 0, mounted: 2, skipped: 0 });
    const posts = uploads(before);
    expect(
      posts.filter((line) =>
        /^POST \/v2\/templates\/copy\/blobs\/uploads\/\?mount=sha256%3A[a-f0-9]{64}&from=templates%2Ftiny 201$/.test(
          line,
        ),
      ),
    ).toHaveLength(2);
    expect(posts.filter((line) => !line.includes('?mount='))).toEqual([]);
    const fetched = await cli(['fetch', `oci://${registry.host}/templates/copy:v1`, '--store', storeOf('copy'), '-q']);
    expect(fetched.exitCode, fetched.stderr).toBe(0);
  });

  it('fetch --keep-xz keeps the source .xz; push sends it as is with the raw digest the store recorded, and a fetch takes it back', async () => {
    const store = storeOf('kept');
    const fetched = await cli(['fetch', 'demo:tiny:v1', '--keep-xz', '--repo', repoFile, '--store', store, '-q']);
    expect(fetched.exitCode, fetched.stderr).toBe(0);
    const kept = await readFile(`${fetched.stdout.trim()}.xz`);
    const pushed = await cli([
      'push',
      'demo:tiny:v1',
      `oci://${registry.host}/templates/kept:v1`,
      '--repo',
      repoFile,
      '--store',
      store,
      '-q',
      '--json',
    ]);
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    const result = lastJson(pushed.stdout);
    expect(result.layer).toEqual({
      digest: `sha256:${createHash('sha256').update(kept).digest('hex')}`,
      size: kept.length,
    });
    // lago's way verified the entry by SHA-1: that is the digest the config carries (the image is not read again for another).
    const sha1 = createHash('sha1')
      .update(await readFile(stored))
      .digest('hex');
    const config = JSON.parse(
      (
        await execa('skopeo', [
          'inspect',
          '--config',
          '--raw',
          '--tls-verify=false',
          `docker://${registry.host}/templates/kept:v1`,
        ])
      ).stdout,
    ) as { digests: unknown };
    expect(config.digests).toEqual({ sha1: `sha1:${sha1}` });
    const back = await cli(['fetch', result.reference as string, '--store', storeOf('kept-back'), '--json']);
    expect(back.exitCode, back.stderr).toBe(0);
    const path = lastJson(back.stdout).path as string;
    expect(Buffer.compare(await readFile(path), await readFile(stored))).toBe(0);
    expect((await readFile(`${path}.hash`, 'utf8')).trim()).toBe(sha1);
    const verify = await cli(['verify', '--store', storeOf('kept-back')]);
    expect(verify.exitCode, verify.stdout + verify.stderr).toBe(0);
  });

  it('fetches oci://HOST/NAME:TAG and @sha256 into the store, byte for byte, then answers from the store', async () => {
    const store = storeOf('pull');
    const byTag = await cli(['fetch', `oci://${registry.host}/templates/tiny:v1`, '--store', store, '--json']);
    expect(byTag.exitCode, byTag.stderr).toBe(0);
    const result = lastJson(byTag.stdout);
    const key = `${registry.host.replace(':', '_')}:templates+tiny:v1`;
    expect(result).toMatchObject({ ref: key, status: 'downloaded', format: 'raw' });
    expect(Buffer.compare(await readFile(result.path as string), await readFile(stored))).toBe(0);
    const record = JSON.parse(await readFile(join(store, `${key}.record.json`), 'utf8')) as {
      verified: { of: string };
      source: string;
    };
    expect(record.verified.of).toBe('compressed');
    expect(record.source).toMatch(/\/v2\/templates\/tiny\/blobs\/sha256:/);
    expect(
      lastJson((await cli(['fetch', `oci://${registry.host}/templates/tiny:v1`, '--store', store, '--json'])).stdout),
    ).toMatchObject({ status: 'cached' });
    const byDigest = await cli(['fetch', digestRef, '--store', store, '--json']);
    expect(byDigest.exitCode, byDigest.stderr).toBe(0);
    expect(lastJson(byDigest.stdout).ref).toBe(
      `${registry.host.replace(':', '_')}:templates+tiny:${digestRef.split('@')[1]!.replace(':', '-')}`,
    );
    const verify = await cli(['verify', '--store', store]);
    expect(verify.exitCode, verify.stdout + verify.stderr).toBe(0);
  });

  it('8 concurrent fetches of one reference cause one layer download', async () => {
    const store = storeOf('concurrent');
    const before = registry.requests().length;
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        cli(['fetch', `oci://${registry.host}/templates/tiny:v1`, '--store', store, '-q']),
      ),
    );
    expect(results.map((r) => r.exitCode)).toEqual(Array(8).fill(0));
    const layer = (
      JSON.parse(
        (
          await execa('skopeo', [
            'inspect',
            '--raw',
            '--tls-verify=false',
            `docker://${registry.host}/templates/tiny:v1`,
          ])
        ).stdout,
      ) as { layers: Array<{ digest: string }> }
    ).layers[0]!.digest;
    expect(
      registry
        .requests()
        .slice(before)
        .filter((line) => line.startsWith(`GET /v2/templates/tiny/blobs/${layer}`)),
    ).toHaveLength(1);
  });

  it('an oci source in a repository JSON: handles are tags; a JSON digest that differs from the layer is HASH_MISMATCH', async () => {
    const source = { type: 'oci', args: { registry: `http://${registry.host}`, repository: 'templates/tiny' } };
    const good = await ws.writeRepo('reg', {
      name: 'reg',
      sources: { reg: source },
      templates: { tiny: { versions: { v1: { source: 'reg', handle: 'v1', timestamp: 1 } } } },
    });
    const fetched = await cli(['fetch', 'reg:tiny:v1', '--repo', good, '--store', storeOf('source'), '-q']);
    expect(fetched.exitCode, fetched.stderr).toBe(0);
    expect(Buffer.compare(await readFile(fetched.stdout.trim()), await readFile(stored))).toBe(0);
    const lying = await ws.writeRepo('lie', {
      name: 'lie',
      sources: { reg: source },
      templates: {
        tiny: {
          versions: { v1: { source: 'reg', handle: 'v1', timestamp: 1, compressed_hash: `sha256:${'0'.repeat(64)}` } },
        },
      },
    });
    const refused = await cli(['fetch', 'lie:tiny:v1', '--repo', lying, '--store', storeOf('lie'), '--json']);
    expect(refused.exitCode).toBe(5);
    expect(lastJson(refused.stdout)).toMatchObject({ error: { code: 'HASH_MISMATCH' } });
    expect(withoutLockFiles(await readdir(storeOf('lie'))).filter((name) => name.startsWith('lie:'))).toEqual([]);
  });

  it('uploads a large layer in chunks (PATCH) and reads it back', async () => {
    // Forget where the blobs went, or this push would mount them instead of uploading.
    await rm(join(storeOf('main'), '.oci'), { recursive: true, force: true });
    const before = registry.requests().length;
    const pushed = await cli([
      'push',
      'demo:tiny:v1',
      `oci://${registry.host}/templates/chunked:v1`,
      '--repo',
      repoFile,
      '--store',
      storeOf('main'),
      '-q',
      '--chunk-size',
      '1',
    ]);
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    expect(uploads(before).filter((line) => line.startsWith('PATCH ')).length).toBeGreaterThanOrEqual(2);
    const fetched = await cli([
      'fetch',
      `oci://${registry.host}/templates/chunked:v1`,
      '--store',
      storeOf('chunked'),
      '-q',
    ]);
    expect(fetched.exitCode, fetched.stderr).toBe(0);
    expect(Buffer.compare(await readFile(fetched.stdout.trim()), await readFile(stored))).toBe(0);
  });

  it('a registry whose layer or manifest bytes lie about their digest: HASH_MISMATCH, nothing stored', async () => {
    const pushed = lastJson(
      (
        await cli([
          'push',
          'demo:tiny:v1',
          `oci://${registry.host}/templates/lies:v1`,
          '--repo',
          repoFile,
          '--store',
          storeOf('main'),
          '-q',
          '--json',
        ])
      ).stdout,
    );
    const blobData = (digest: string) =>
      join(registry.root, 'docker/registry/v2/blobs/sha256', digest.slice(7, 9), digest.slice(7), 'data');
    const layerPath = blobData(pushed.layer.digest as string);
    const layer = await readFile(layerPath);
    const damaged = Buffer.from(layer);
    damaged[damaged.length >> 1]! ^= 0xff;
    await writeFile(layerPath, damaged);
    try {
      const store = storeOf('lying-layer');
      const result = await cli(['fetch', `oci://${registry.host}/templates/lies:v1`, '--store', store, '--json']);
      expect(result.exitCode).toBeGreaterThanOrEqual(5);
      expect(['HASH_MISMATCH', 'DECODE_FAILED']).toContain(lastJson(result.stdout).error.code);
      expect(withoutLockFiles(await readdir(store)).filter((name) => name.includes('lies'))).toEqual([]);
    } finally {
      await writeFile(layerPath, layer);
    }
    const manifestPath = blobData(pushed.digest as string);
    const manifest = await readFile(manifestPath, 'utf8');
    await writeFile(manifestPath, manifest.replace('"schemaVersion":2', '"schemaVersion": 2'));
    try {
      const store = storeOf('lying-manifest');
      for (const ref of [`oci://${registry.host}/templates/lies:v1`, pushed.reference as string]) {
        const result = await cli(['fetch', ref, '--store', store, '--json']);
        expect(result.exitCode).toBe(5);
        expect(lastJson(result.stdout).error).toMatchObject({ code: 'HASH_MISMATCH', expected: pushed.digest });
      }
      expect(
        withoutLockFiles(
          await stat(store).then(
            () => readdir(store),
            () => [],
          ),
        ).filter((name) => name.includes('lies')),
      ).toEqual([]);
    } finally {
      await writeFile(manifestPath, manifest);
    }
  });
});

describe('push --layer zst', () => {
  const target = () => `oci://${registry.host}/templates/zst:v1`;

  it('pushes one zstd layer that skopeo copies and zstd decodes; fetch oci:// verifies and decodes it', async () => {
    const pushed = await cli([
      'push',
      'demo:tiny:v1',
      target(),
      '--layer',
      'zst',
      '--repo',
      repoFile,
      '--store',
      storeOf('main'),
      '-q',
      '--json',
    ]);
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    const result = lastJson(pushed.stdout);
    const manifest = JSON.parse(
      (await execa('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/templates/zst:v1`]))
        .stdout,
    ) as { layers: Array<{ mediaType: string; digest: string; annotations: Record<string, string> }> };
    expect(manifest.layers).toEqual([
      expect.objectContaining({
        mediaType: 'application/vnd.templates.image.raw.zst',
        digest: result.layer.digest,
        annotations: { 'org.opencontainers.image.title': 'tiny-v1.raw.zst' },
      }),
    ]);
    const dir = join(ws.dir, 'skopeo-zst');
    await execa('skopeo', [
      'copy',
      '--src-tls-verify=false',
      `docker://${registry.host}/templates/zst:v1`,
      `dir:${dir}`,
    ]);
    const decoded = await execa(
      'zstd',
      ['-dc', '--long=27', join(dir, manifest.layers[0]!.digest.slice('sha256:'.length))],
      { encoding: 'buffer' },
    );
    expect(Buffer.compare(Buffer.from(decoded.stdout), await readFile(stored))).toBe(0);
    const fetched = await cli(['fetch', target(), '--store', storeOf('zst'), '-q']);
    expect(fetched.exitCode, fetched.stderr).toBe(0);
    const path = fetched.stdout.trim();
    expect(Buffer.compare(await readFile(path), await readFile(stored))).toBe(0);
    expect(JSON.parse(await readFile(`${path}.record.json`, 'utf8'))).toMatchObject({
      verified: { of: 'zst', digest: result.layer.digest },
    });
    // Again: nothing sent.
    const again = await cli([
      'push',
      'demo:tiny:v1',
      target(),
      '--layer',
      'zst',
      '--repo',
      repoFile,
      '--store',
      storeOf('main'),
      '-q',
      '--json',
    ]);
    expect(lastJson(again.stdout)).toMatchObject({ uploaded: 0, skipped: 2 });
  });

  it('sends a kept .zst as is: fetch --keep-xz from a repository listing it, then push --layer zst', async () => {
    const src = join(ws.dir, 'src-zst');
    const published = await publishImage(src, 'tiny/v1.raw', join(ws.dir, 'disk.raw'), { zst: true });
    const repo = await ws.writeRepo('zdemo', {
      name: 'zdemo',
      sources: { disk: { type: 'file', args: { root: src } } },
      templates: {
        tiny: { versions: { v1: { source: 'disk', handle: 'tiny/v1.raw', timestamp: 1700000000, ...published.zst } } },
      },
    });
    const fetched = await cli([
      'fetch',
      'zdemo:tiny:v1',
      '--keep-xz',
      '--repo',
      repo,
      '--store',
      storeOf('kept-zst'),
      '-q',
    ]);
    expect(fetched.exitCode, fetched.stderr).toBe(0);
    const pushed = await cli([
      'push',
      'zdemo:tiny:v1',
      `oci://${registry.host}/templates/kept-zst:v1`,
      '--layer',
      'zst',
      '--repo',
      repo,
      '--store',
      storeOf('kept-zst'),
      '-q',
      '--json',
    ]);
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    expect(lastJson(pushed.stdout).layer).toEqual({ digest: published.zst!.zst_hash, size: published.zst!.zst_size });
  });

  it('without zstd the fetch says TOOL_MISSING naming zstd and stores nothing; index --registry lists the layer as zst_hash', async () => {
    const { createContext, fetchTemplate, openStore } = await import('../../src/index.js');
    const store = await openStore({ root: storeOf('zst-none') });
    await expect(
      fetchTemplate(target(), { store, repositories: [], context: createContext({ zstd: false }) }),
    ).rejects.toMatchObject({ code: 'TOOL_MISSING', fields: { tool: 'zstd' } });
    expect(withoutLockFiles(await readdir(store.root)).filter((name) => name.includes(':'))).toEqual([]);
    const output = join(ws.dir, 'indexed', 'zst.json');
    const indexed = await cli([
      'index',
      '--registry',
      `oci://${registry.host}/templates`,
      '--name',
      'zreg',
      '--output',
      output,
      '--include',
      'zst:*',
      '--json',
    ]);
    expect(indexed.exitCode, indexed.stderr).toBe(0);
    const json = JSON.parse(await readFile(output, 'utf8')) as {
      templates: Record<string, { versions: Record<string, Record<string, unknown>> }>;
    };
    const version = json.templates.zst!.versions.v1!;
    expect(version).toMatchObject({
      zst_hash: expect.stringMatching(/^sha256:[a-f0-9]{64}$/),
      zst_size: expect.any(Number),
    });
    expect(version.compressed_hash).toBeUndefined();
    const fetched = await cli(['fetch', 'zreg:zst:v1', '--repo', output, '--store', storeOf('zst-indexed'), '-q']);
    expect(fetched.exitCode, fetched.stderr).toBe(0);
    expect(Buffer.compare(await readFile(fetched.stdout.trim()), await readFile(stored))).toBe(0);
  });
});

describe('templates index --registry', () => {
  it('writes a repository of the template artifacts found (filters, oci sources, digests), fetchable, and reads no manifest twice', async () => {
    const output = join(ws.dir, 'indexed', 'reg.json');
    const args = [
      'index',
      '--registry',
      `oci://${registry.host}/templates`,
      '--name',
      'reg',
      '--output',
      output,
      '--include',
      'tiny:*',
      '--include',
      'copy:*',
      '--json',
    ];
    const first = await cli(args);
    expect(first.exitCode, first.stderr).toBe(0);
    expect(lastJson(first.stdout)).toMatchObject({ versions: 2, written: true, reused: 0 });
    const json = JSON.parse(await readFile(output, 'utf8')) as {
      sources: Record<string, unknown>;
      templates: Record<string, { versions: Record<string, Record<string, unknown>> }>;
    };
    expect(Object.keys(json.templates)).toEqual(['copy', 'tiny']);
    expect(json.sources['templates/tiny']).toEqual({
      type: 'oci',
      args: { registry: `http://${registry.host}`, repository: 'templates/tiny' },
    });
    const layer = (
      JSON.parse(
        (
          await execa('skopeo', [
            'inspect',
            '--raw',
            '--tls-verify=false',
            `docker://${registry.host}/templates/tiny:v1`,
          ])
        ).stdout,
      ) as { layers: Array<{ digest: string }> }
    ).layers[0]!.digest;
    expect(json.templates.tiny!.versions.v1).toMatchObject({
      source: 'templates/tiny',
      handle: 'v1',
      timestamp: 1700000000,
      compressed_hash: layer,
      format: 'raw',
    });
    const fetched = await cli(['fetch', 'reg:tiny:v1', '--repo', output, '--store', storeOf('indexed'), '-q']);
    expect(fetched.exitCode, fetched.stderr).toBe(0);
    expect(Buffer.compare(await readFile(fetched.stdout.trim()), await readFile(stored))).toBe(0);
    const before = registry.requests().length;
    const again = await cli(args);
    expect(lastJson(again.stdout)).toMatchObject({ versions: 2, written: false, fetched: 0, reused: 2 });
    expect(
      registry
        .requests()
        .slice(before)
        .filter((line) => line.startsWith('GET ') && line.includes('/manifests/')),
    ).toEqual([]);
    const filtered = await cli([
      'index',
      '--registry',
      `oci://${registry.host}/templates`,
      '--name',
      'none',
      '--output',
      join(ws.dir, 'indexed', 'none.json'),
      '--annotation',
      'org.opencontainers.image.version=v9',
      '--json',
    ]);
    expect(lastJson(filtered.stdout)).toMatchObject({ versions: 0 });
  });
});

describe('a registry with htpasswd (Basic) auth', () => {
  let secured: RunningRegistry;
  let credsFile: string;
  beforeAll(async () => {
    const htpasswd = join(ws.dir, 'htpasswd');
    await execa('htpasswd', ['-Bbc', htpasswd, 'ci', 's3cret']);
    secured = await startRegistry(join(ws.dir, 'secured'), { htpasswd });
    credsFile = join(ws.dir, 'auth.json');
    await writeFile(
      credsFile,
      JSON.stringify({ auths: { [secured.host]: { auth: Buffer.from('ci:s3cret').toString('base64') } } }),
    );
  }, 30_000);
  afterAll(async () => secured?.stop());

  it('refuses without credentials (AUTH_FAILED, exit 6), pushes with --creds-file, fetches with $REGISTRY_AUTH_FILE, and skopeo reads it', async () => {
    const target = `oci://${secured.host}/private/tiny:v1`;
    const refused = await cli([
      'push',
      'demo:tiny:v1',
      target,
      '--repo',
      repoFile,
      '--store',
      storeOf('main'),
      '-q',
      '--json',
    ]);
    expect(refused.exitCode).toBe(6);
    expect(lastJson(refused.stdout).error.code).toBe('AUTH_FAILED');
    const pushed = await cli([
      'push',
      'demo:tiny:v1',
      target,
      '--repo',
      repoFile,
      '--store',
      storeOf('main'),
      '-q',
      '--creds-file',
      credsFile,
    ]);
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    const wrong = join(ws.dir, 'wrong.json');
    await writeFile(
      wrong,
      JSON.stringify({ auths: { [secured.host]: { auth: Buffer.from('ci:nope').toString('base64') } } }),
    );
    const denied = await cli(['fetch', target, '--store', storeOf('secured'), '--json'], { REGISTRY_AUTH_FILE: wrong });
    expect(denied.exitCode).toBe(6);
    expect(lastJson(denied.stdout).error.message).toContain(wrong);
    const fetched = await cli(['fetch', target, '--store', storeOf('secured'), '-q'], {
      REGISTRY_AUTH_FILE: credsFile,
    });
    expect(fetched.exitCode, fetched.stderr).toBe(0);
    expect(Buffer.compare(await readFile(fetched.stdout.trim()), await readFile(stored))).toBe(0);
    const inspected = await execa('skopeo', [
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--creds',
      'ci:s3cret',
      `docker://${secured.host}/private/tiny:v1`,
    ]);
    expect(JSON.parse(inspected.stdout)).toMatchObject({ artifactType: 'application/vnd.templates.image.v1' });
  });
});

describe('KubeVirt containerDisks', () => {
  /** An OCI layout of an image whose gzip tar layers are built from `layers` (each a directory), pushed with skopeo. */
  async function pushImage(name: string, layers: string[]): Promise<void> {
    const layout = join(ws.dir, `layout-${name.replace(/\W/g, '-')}`);
    const blobs = join(layout, 'blobs', 'sha256');
    await mkdir(blobs, { recursive: true });
    const put = async (bytes: Buffer) => {
      const hex = createHash('sha256').update(bytes).digest('hex');
      await writeFile(join(blobs, hex), bytes);
      return { digest: `sha256:${hex}`, size: bytes.length };
    };
    const descriptors = [];
    const diffIds = [];
    for (const dir of layers) {
      const tar = (
        await execa('tar', ['--owner=107', '--group=107', '--numeric-owner', '-C', dir, '-cf', '-', '.'], {
          encoding: 'buffer',
        })
      ).stdout as unknown as Uint8Array;
      diffIds.push(`sha256:${createHash('sha256').update(tar).digest('hex')}`);
      descriptors.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...(await put(gzipSync(tar))) });
    }
    const config = await put(
      Buffer.from(
        JSON.stringify({
          architecture: 'amd64',
          os: 'linux',
          rootfs: { type: 'layers', diff_ids: diffIds },
          config: {},
        }),
      ),
    );
    const manifest = await put(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
          layers: descriptors,
        }),
      ),
    );
    await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await writeFile(
      join(layout, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...manifest,
            annotations: { 'org.opencontainers.image.ref.name': 'v1' },
          },
        ],
      }),
    );
    await execa('skopeo', [
      'copy',
      '--dest-tls-verify=false',
      `oci:${layout}:v1`,
      `docker://${registry.host}/${name}:v1`,
    ]);
  }

  let qcow2: string;
  beforeAll(async () => {
    const disk = join(ws.dir, 'cd', 'disk-layer', 'disk');
    await mkdir(disk, { recursive: true });
    qcow2 = await toQcow2(stored, join(disk, 'disk.img'));
    const other = join(ws.dir, 'cd', 'other-layer', 'etc');
    await mkdir(other, { recursive: true });
    await writeFile(join(other, 'hostname'), 'vm\n');
    const whiteout = join(ws.dir, 'cd', 'whiteout-layer', 'disk');
    await mkdir(whiteout, { recursive: true });
    await writeFile(join(whiteout, '.wh.disk.img'), '');
    await pushImage('kubevirt/tiny-disk', [join(ws.dir, 'cd', 'disk-layer'), join(ws.dir, 'cd', 'other-layer')]);
    await pushImage('kubevirt/deleted-disk', [join(ws.dir, 'cd', 'disk-layer'), join(ws.dir, 'cd', 'whiteout-layer')]);
  }, 60_000);

  it('fetches the qcow2 below /disk/ of a containerDisk (reading down through layers without one), verifies it and stores it raw', async () => {
    expect(qcow2).toBeTruthy();
    const fetched = await cli([
      'fetch',
      `oci://${registry.host}/kubevirt/tiny-disk:v1`,
      '--store',
      storeOf('containerdisk'),
      '--json',
    ]);
    expect(fetched.exitCode, fetched.stderr).toBe(0);
    const result = lastJson(fetched.stdout);
    expect(result).toMatchObject({ status: 'downloaded', format: 'qcow2' });
    expect(Buffer.compare(await readFile(result.path as string), await readFile(stored))).toBe(0);
  });

  it('push --containerdisk writes an image KubeVirt can boot (/disk/disk.img, qcow2, uid 107) that skopeo reads and fetch takes back; again: no blob', async () => {
    const target = `oci://${registry.host}/kubevirt/pushed-disk:v1`;
    const pushed = await cli([
      'push',
      '--containerdisk',
      'demo:tiny:v1',
      target,
      '--repo',
      repoFile,
      '--store',
      storeOf('main'),
      '-q',
      '--json',
    ]);
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    expect(lastJson(pushed.stdout)).toMatchObject({ uploaded: 2 });
    const inspected = JSON.parse(
      (await execa('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/kubevirt/pushed-disk:v1`]))
        .stdout,
    ) as { Architecture: string; Os: string; Layers: string[] };
    expect(inspected).toMatchObject({ Architecture: 'amd64', Os: 'linux' });
    expect(inspected.Layers).toHaveLength(1);
    const dir = join(ws.dir, 'skopeo-cd');
    await execa('skopeo', [
      'copy',
      '--src-tls-verify=false',
      `docker://${registry.host}/kubevirt/pushed-disk:v1`,
      `dir:${dir}`,
    ]);
    const listing = await execa('tar', [
      '-tvzf',
      join(dir, inspected.Layers[0]!.slice('sha256:'.length)),
      '--numeric-owner',
    ]);
    expect(listing.stdout).toMatch(/^-r--r----- 107\/107 +\d+ .* disk\/disk\.img$/m);
    const fetched = await cli(['fetch', target, '--store', storeOf('pushed-disk'), '--json']);
    expect(fetched.exitCode, fetched.stderr).toBe(0);
    expect(lastJson(fetched.stdout)).toMatchObject({ format: 'qcow2' });
    expect(Buffer.compare(await readFile(lastJson(fetched.stdout).path as string), await readFile(stored))).toBe(0);
    const again = await cli([
      'push',
      '--containerdisk',
      'demo:tiny:v1',
      target,
      '--repo',
      repoFile,
      '--store',
      storeOf('main'),
      '-q',
      '--json',
    ]);
    expect(lastJson(again.stdout)).toMatchObject({ uploaded: 0, skipped: 2 });
  });

  it('honours a whiteout of the disk in an upper layer: IMAGE_NOT_FOUND, nothing stored', async () => {
    const store = storeOf('whiteout');
    const refused = await cli(['fetch', `oci://${registry.host}/kubevirt/deleted-disk:v1`, '--store', store, '--json']);
    expect(refused.exitCode).toBe(3);
    expect(lastJson(refused.stdout).error).toMatchObject({ code: 'IMAGE_NOT_FOUND' });
    expect(withoutLockFiles(await readdir(store)).filter((name) => name.includes('deleted'))).toEqual([]);
  });
});
