// templates index end to end: a directory of raw/qcow2/xz images becomes a repository that fetch uses on its fast path.
import { copyFile, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { tryLock } from '../../src/util/flock.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexDirectory, type IndexSummary } from '../../src/api/publish.js';
import { createContext, parseRepository } from '../../src/index.js';
import { runCli, workspace, type Workspace } from '../helpers/env.js';
import { TOOL_PATH, digestOf, makeDisk, toQcow2, xzFile } from '../helpers/images.js';

let ws: Workspace;
/** The images as they were put in the directory, by handle, with the raw bytes a fetch must give back. */
let raw: { fedora: string; centos: string; alpine: string; tiny: string };
let debianXz: string;

const context = () => createContext({ env: { PATH: TOOL_PATH } });

/** Every file below `dir` with its size and mtime: what "rewrites nothing" is checked against. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of await readdir(dir, { recursive: true })) {
    const info = await stat(join(dir, name));
    if (info.isFile()) out[name] = `${info.size}@${info.mtimeMs}`;
  }
  return out;
}

async function xzBlocks(path: string): Promise<{ blocks: number; sizesInHeaders: boolean }> {
  const { stdout } = await execa('xz', ['--robot', '--list', '-vv', path]);
  const blocks = stdout
    .split('\n')
    .filter((line) => line.startsWith('block\t'))
    .map((line) => line.split('\t'));
  return { blocks: blocks.length, sizesInHeaders: blocks.every((fields) => fields[12] === 'cu') };
}

beforeAll(async () => {
  ws = await workspace();
  const src = join(ws.dir, 'src');
  raw = {
    fedora: await makeDisk(join(src, 'fedora.raw'), { sizeMiB: 8, dataKiB: 2048, label: 'fedora' }),
    centos: await makeDisk(join(src, 'centos.raw'), { sizeMiB: 8, dataKiB: 1024, label: 'centos' }),
    alpine: await makeDisk(join(src, 'alpine.raw'), { sizeMiB: 8, dataKiB: 512, label: 'alpine' }),
    tiny: await makeDisk(join(src, 'tiny.raw'), { sizeMiB: 4, dataKiB: 256, label: 'tiny' }),
  };
  const www = ws.www;
  // NAME/VERSION/FILE, raw.
  await mkdir(join(www, 'fedora', '33'), { recursive: true });
  await copyFile(raw.fedora, join(www, 'fedora', '33', 'disk.raw'));
  // NAME-VERSION.EXT, qcow2, with metadata to keep.
  await toQcow2(raw.centos, join(www, 'centos-7.qcow2'));
  await writeFile(join(www, 'centos-7.qcow2.metadata'), JSON.stringify({ distro: 'centos', arch: 'x86_64' }));
  // Already xz, but single-block (xz -T1): re-compressed in place.
  await copyFile(raw.alpine, join(www, 'alpine-3.19.img'));
  await execa('xz', ['-T1', '-3', join(www, 'alpine-3.19.img')]);
  // Already multi-block xz with sizes in its headers: served as it is, only read and hashed.
  const { stdout } = await execa('xz', ['-T2', '--block-size=1MiB', '-3', '-c', raw.tiny], { encoding: 'buffer' });
  await writeFile(join(www, 'debian-12.raw.xz'), stdout);
  debianXz = await digestOf(join(www, 'debian-12.raw.xz'));
  // Named by its metadata, in a path that says nothing.
  await mkdir(join(www, 'misc'));
  await copyFile(raw.tiny, join(www, 'misc', 'thing.bin'));
  await writeFile(
    join(www, 'misc', 'thing.bin.metadata'),
    JSON.stringify({ name: 'tiny', version: 'v1', arch: 'aarch64' }),
  );
  // Not images.
  await writeFile(join(www, 'README.md'), '# my templates\n');
  await writeFile(join(www, 'notes.bin'), Buffer.alloc(1000, 1));
});
afterAll(async () => {
  await ws.cleanup();
});

describe('templates index', () => {
  let summary: IndexSummary;
  let repoFile: string;

  it('indexes raw, qcow2 and xz images by content and names them from metadata or path', async () => {
    repoFile = join(ws.www, 'pub.json');
    const result = await runCli([
      'index',
      ws.www,
      '--name',
      'pub',
      '--base-url',
      ws.baseurl,
      '--block-size',
      '1M',
      '--json',
    ]);
    expect(result.stderr).not.toContain('[');
    expect(result.exitCode).toBe(0);
    summary = JSON.parse(result.stdout) as IndexSummary;
    expect(summary).toMatchObject({
      repository: 'pub',
      output: repoFile,
      written: true,
      templates: 5,
      versions: 5,
      problems: [],
      removed: [],
    });
    expect(summary.images.map((image) => [image.ref, image.handle, image.status]).sort()).toEqual([
      ['pub:alpine:3.19', 'alpine-3.19.img', 'compressed'],
      ['pub:centos:7', 'centos-7.qcow2', 'compressed'],
      ['pub:debian:12', 'debian-12.raw', 'verified'],
      ['pub:fedora:33', 'fedora/33/disk.raw', 'compressed'],
      ['pub:tiny:v1', 'misc/thing.bin', 'compressed'],
    ]);
    expect(summary.skipped.map((skip) => skip.path).sort()).toEqual(['README.md', 'notes.bin']);
    expect(summary.bytesIn).toBeGreaterThan(20 * 2 ** 20);
    expect(summary.bytesOut).toBeGreaterThan(0);
  });

  it('writes multi-block .xz with sizes in the headers, a bare SHA-1 .hash and merged .metadata next to each image', async () => {
    // The fit xz was left byte for byte as it was.
    expect(await digestOf(join(ws.www, 'debian-12.raw.xz'))).toBe(debianXz);
    for (const [handle, image] of [
      ['fedora/33/disk.raw', raw.fedora],
      ['alpine-3.19.img', raw.alpine],
      ['misc/thing.bin', raw.tiny],
    ] as const) {
      expect(await xzBlocks(join(ws.www, `${handle}.xz`))).toEqual({
        blocks: (await stat(image)).size / 2 ** 20,
        sizesInHeaders: true,
      });
      expect(await readFile(join(ws.www, `${handle}.hash`), 'utf8')).toBe(await digestOf(image));
    }
    const qcow2 = join(ws.www, 'centos-7.qcow2');
    expect(await readFile(`${qcow2}.hash`, 'utf8')).toBe(await digestOf(qcow2));
    const metadata = JSON.parse(await readFile(`${qcow2}.metadata`, 'utf8')) as Record<string, unknown>;
    expect(metadata).toEqual({
      distro: 'centos',
      arch: 'x86_64',
      size: (await stat(qcow2)).size,
      format: 'qcow2',
      sha256: await digestOf(qcow2, 'sha256'),
      compressed_size: (await stat(`${qcow2}.xz`)).size,
      timestamp: Math.floor((await stat(qcow2)).mtimeMs / 1000),
    });
  });

  it('writes lago-format JSON that the parser reads without a problem, with hash, compressed_hash, size and format', async () => {
    const text = await readFile(repoFile, 'utf8');
    const repository = parseRepository(text, repoFile, { env: {}, home: '/', allowFileSources: true });
    expect(repository.problems).toEqual([]);
    const version = repository.templates.get('centos');
    expect(version?.ok).toBe(true);
    const json = JSON.parse(text) as {
      sources: unknown;
      templates: Record<string, { versions: Record<string, Record<string, unknown>> }>;
    };
    expect(json.sources).toEqual({ pub: { type: 'http', args: { baseurl: ws.baseurl } } });
    const centos = json.templates.centos!.versions['7']!;
    const qcow2 = join(ws.www, 'centos-7.qcow2');
    expect(centos).toEqual({
      source: 'pub',
      handle: 'centos-7.qcow2',
      timestamp: Math.floor((await stat(qcow2)).mtimeMs / 1000),
      hash: `sha1:${await digestOf(qcow2)}`,
      compressed_hash: `sha256:${await digestOf(`${qcow2}.xz`, 'sha256')}`,
      zst_hash: `sha256:${await digestOf(`${qcow2}.zst`, 'sha256')}`,
      zst_size: (await stat(`${qcow2}.zst`)).size,
      size: (await stat(qcow2)).size,
      format: 'qcow2',
    });
  });

  it('is fetched over HTTP on the compressed-digest fast path (the .zst), every template byte for byte', async () => {
    const store = join(ws.dir, 'store-http');
    const refs = ['pub:fedora:33', 'pub:centos:7', 'pub:alpine:3.19', 'pub:tiny:v1', 'pub:debian:12'];
    const result = await runCli(['fetch', '--repo', repoFile, '--store', store, '--json', ...refs]);
    expect(result.exitCode).toBe(0);
    const expected = [raw.fedora, raw.centos, raw.alpine, raw.tiny, raw.tiny];
    for (const [i, line] of result.stdout.trim().split('\n').entries()) {
      const fetched = JSON.parse(line) as { ref: string; path: string; status: string };
      expect(fetched).toMatchObject({ ref: refs[i], status: 'downloaded' });
      expect(await digestOf(fetched.path)).toBe(await digestOf(expected[i]!));
      const record = JSON.parse(await readFile(`${fetched.path}.record.json`, 'utf8')) as {
        verified: { of: string };
        compressed: boolean;
      };
      expect(record).toMatchObject({ compressed: true, verified: { of: 'zst' } });
    }
    // The fast path needs no .hash file: the repository JSON carries both digests. Only the listed .zst is asked for.
    expect(await ws.requests('.hash')).toEqual([]);
    expect((await ws.requests('.zst')).filter((line) => line.startsWith('GET'))).toHaveLength(5);
    expect(await ws.requests('.xz')).toEqual([]);
  });

  it('is fetched through a file source too, when indexed without --base-url', async () => {
    const output = join(ws.dir, 'file-repo.json');
    const again = await indexDirectory(ws.www, { name: 'pub', output, context: context(), blockBytes: 2 ** 20 });
    expect(again.images.every((image) => image.status === 'unchanged')).toBe(true);
    const json = JSON.parse(await readFile(output, 'utf8')) as { sources: unknown };
    expect(json.sources).toEqual({ pub: { type: 'file', args: { root: ws.www } } });
    const store = join(ws.dir, 'store-file');
    const result = await runCli(['fetch', '--repo', output, '--store', store, '--json', 'pub:centos:7', 'pub:tiny:v1']);
    expect(result.exitCode).toBe(0);
    const [centos, tiny] = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { path: string });
    expect(await digestOf(centos!.path)).toBe(await digestOf(raw.centos));
    expect(await digestOf(tiny!.path)).toBe(await digestOf(raw.tiny));
    const record = JSON.parse(await readFile(`${centos!.path}.record.json`, 'utf8')) as {
      source: string;
      verified: { of: string };
    };
    expect(record).toMatchObject({ source: join(ws.www, 'centos-7.qcow2.zst'), verified: { of: 'zst' } });
  });

  it('re-indexing an unchanged directory compresses nothing and rewrites nothing', async () => {
    const before = await snapshot(ws.www);
    const result = await runCli([
      'index',
      ws.www,
      '--name',
      'pub',
      '--base-url',
      ws.baseurl,
      '--block-size',
      '1M',
      '--json',
    ]);
    expect(result.exitCode).toBe(0);
    const again = JSON.parse(result.stdout) as IndexSummary;
    expect(again).toMatchObject({ written: false, versions: 5, bytesIn: 0, bytesOut: 0 });
    expect(again.images.every((image) => image.status === 'unchanged')).toBe(true);
    expect(await snapshot(ws.www)).toEqual(before);
  });

  it('redoes a changed image only, and drops a removed one from the index', async () => {
    const disk = join(ws.www, 'fedora', '33', 'disk.raw');
    const changed = await makeDisk(join(ws.dir, 'fedora2.raw'), { sizeMiB: 8, dataKiB: 1024, label: 'fedora2' });
    await copyFile(changed, disk);
    const first = await indexDirectory(ws.www, {
      name: 'pub',
      baseUrl: ws.baseurl,
      context: context(),
      blockBytes: 2 ** 20,
    });
    expect(Object.fromEntries(first.images.map((image) => [image.handle, image.status]))).toEqual({
      'alpine-3.19.img': 'unchanged',
      'centos-7.qcow2': 'unchanged',
      'debian-12.raw': 'unchanged',
      'fedora/33/disk.raw': 'compressed',
      'misc/thing.bin': 'unchanged',
    });
    expect(first.written).toBe(true);
    expect(await readFile(`${disk}.hash`, 'utf8')).toBe(await digestOf(changed));
    const json = JSON.parse(await readFile(repoFile, 'utf8')) as {
      templates: Record<string, { versions: Record<string, { hash: string }> }>;
    };
    expect(json.templates.fedora!.versions['33']!.hash).toBe(`sha1:${await digestOf(changed)}`);

    await rm(join(ws.www, 'misc', 'thing.bin'));
    await rm(join(ws.www, 'misc', 'thing.bin.xz'));
    const second = await indexDirectory(ws.www, {
      name: 'pub',
      baseUrl: ws.baseurl,
      context: context(),
      blockBytes: 2 ** 20,
    });
    expect(second).toMatchObject({ written: true, versions: 4, removed: ['misc/thing.bin'], bytesIn: 0 });
    const names = Object.keys((JSON.parse(await readFile(repoFile, 'utf8')) as { templates: object }).templates).sort();
    expect(names).toEqual(['alpine', 'centos', 'debian', 'fedora']);
  });
});

describe('templates index filters', () => {
  let dir: string;
  beforeAll(async () => {
    dir = join(ws.dir, 'filters');
    for (const [path, arch] of [
      ['a/1/x.raw', 'x86_64'],
      ['b/1/x.raw', 'aarch64'],
      ['c/1/y.img', undefined],
    ] as const) {
      await mkdir(join(dir, path, '..'), { recursive: true });
      await copyFile(raw.tiny, join(dir, path));
      if (arch) await writeFile(join(dir, `${path}.metadata`), JSON.stringify({ arch }));
    }
  });
  const names = (summary: IndexSummary) => summary.images.map((image) => image.ref).sort();
  const run = (options: Parameters<typeof indexDirectory>[1]) =>
    indexDirectory(dir, { output: join(ws.dir, 'filtered.json'), context: context(), ...options });

  it('--include and --exclude match the handle; a glob without / matches the file name', async () => {
    expect(names(await run({ name: 'f', include: ['*.raw'] }))).toEqual(['f:a:1', 'f:b:1']);
    expect(names(await run({ name: 'f', include: ['a/**'] }))).toEqual(['f:a:1']);
    expect(names(await run({ name: 'f', exclude: ['b/*/*'] }))).toEqual(['f:a:1', 'f:c:1']);
  });

  it('--require-metadata and --arch select by the metadata', async () => {
    expect(names(await run({ name: 'f', requireMetadata: ['arch'] }))).toEqual(['f:a:1', 'f:b:1']);
    const summary = await run({ name: 'f', arch: 'aarch64' });
    expect(names(summary)).toEqual(['f:b:1']);
    expect(summary.skipped.map((skip) => skip.path).sort()).toEqual(['a/1/x.raw', 'c/1/y.img']);
  });
});

describe('templates index failures', () => {
  it('indexes the good images and reports each bad one with its code', async () => {
    const dir = join(ws.dir, 'bad');
    await mkdir(dir);
    await copyFile(raw.tiny, join(dir, 'good-1.raw'));
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', raw.tiny, join(dir, 'backed-1.qcow2')], {
      env: { PATH: TOOL_PATH },
    });
    await writeFile(
      join(dir, 'broken-1.raw.xz'),
      (await readFile(await xzFile(raw.tiny, join(ws.dir, 'tiny.raw.xz')))).subarray(0, 5000),
    );
    await copyFile(raw.tiny, join(dir, 'nameless.raw'));
    await copyFile(raw.tiny, join(dir, 'meta-1.raw'));
    await writeFile(join(dir, 'meta-1.raw.metadata'), '{not json');
    await mkdir(join(dir, 'good', '1'), { recursive: true });
    await copyFile(raw.tiny, join(dir, 'good', '1', 'again.raw'));
    const result = await runCli(['index', dir, '--name', 'bad', '--json', '-q']);
    const summary = JSON.parse(result.stdout) as IndexSummary;
    expect(summary.images.map((image) => image.ref)).toEqual(['bad:good:1']);
    expect(Object.fromEntries(summary.problems.map((problem) => [problem.path, problem.code]))).toEqual({
      'backed-1.qcow2': 'FORMAT_UNSUPPORTED',
      'broken-1.raw.xz': 'DECODE_FAILED',
      'good/1/again.raw': 'ENTRY_BROKEN',
      'meta-1.raw': 'METADATA_INVALID',
      'nameless.raw': 'ENTRY_BROKEN',
    });
    // The exit code is the first problem's (paths in sorted order: backed-1.qcow2).
    expect(result.exitCode).toBe(7);
    expect(result.stderr.trim().split('\n')).toHaveLength(5);
    const repository = parseRepository(await readFile(join(dir, 'bad.json'), 'utf8'), 'bad.json', {
      env: {},
      home: '/',
      allowFileSources: true,
    });
    expect([...repository.templates.keys()]).toEqual(['good']);
    // Nothing half-written is left behind.
    expect((await readdir(dir)).filter((name) => name.includes('.tmp-'))).toEqual([]);
  });

  it('an interrupted run leaves the previous index as it was and no temp file', async () => {
    const dir = join(ws.dir, 'abort');
    await mkdir(dir);
    await copyFile(raw.tiny, join(dir, 'one-1.raw'));
    await indexDirectory(dir, { name: 'ab', context: context() });
    const before = await readFile(join(dir, 'ab.json'), 'utf8');
    await copyFile(raw.alpine, join(dir, 'two-1.raw'));
    const controller = new AbortController();
    const run = indexDirectory(dir, {
      name: 'ab',
      context: context(),
      signal: controller.signal,
      level: 9,
      onProgress: (event) => void (event.phase === 'compress' && controller.abort()),
    });
    await expect(run).rejects.toMatchObject({ code: 'ABORTED' });
    expect(await readFile(join(dir, 'ab.json'), 'utf8')).toBe(before);
    expect((await readdir(dir)).sort()).toEqual([
      '.templates-index.lock',
      '.templates-index.state',
      'ab.json',
      'default.castr',
      'one-1.raw',
      'one-1.raw.caibx',
      'one-1.raw.hash',
      'one-1.raw.metadata',
      'one-1.raw.xz',
      'one-1.raw.zst',
      'two-1.raw',
      'virt-builder.index',
    ]);
  });

  it('refuses a bad name, a missing directory and a second run on the same directory', async () => {
    await expect(indexDirectory(ws.www, { name: 'a:b', context: context() })).rejects.toMatchObject({ code: 'USAGE' });
    await expect(indexDirectory(join(ws.dir, 'nope'), { name: 'x', context: context() })).rejects.toMatchObject({
      code: 'INPUT_NOT_FOUND',
    });
    // Another run holds the directory's lock (a flock on a descriptor of its own, as another process would).
    const other = await tryLock(join(ws.www, '.templates-index.lock'), { staleMs: 10_000, now: Date.now() });
    if (!('held' in other)) throw new Error('the lock should be free');
    try {
      await expect(indexDirectory(ws.www, { name: 'pub', context: context() })).rejects.toMatchObject({
        code: 'LOCK_TIMEOUT',
      });
    } finally {
      other.held.release();
    }
    expect((await runCli(['index', ws.www])).exitCode).toBe(2);
  });
});
