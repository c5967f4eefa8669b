// The packed package, used from a separate project as a provisioning tool would: what it ships, its types, the one-call fetch.
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf, makeDisk, publishImage, TOOL_PATH } from '../helpers/images.js';

const ROOT = resolve(import.meta.dirname, '../..');

describe('the packed package in a separate project', () => {
  let dir: string;
  let project: string;
  let files: string[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'templates-pack-'));
    // --ignore-scripts: dist/ was built by `npm test`; rebuilding it here would race the other test files using it.
    const packed = await execa('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT });
    const { filename, files: listed } = (
      JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>
    )[0]!;
    files = listed.map((file) => file.path);
    project = join(dir, 'consumer');
    const installed = join(project, 'node_modules', 'templates');
    await mkdir(installed, { recursive: true });
    await execa('tar', ['-xzf', join(dir, filename), '-C', installed, '--strip-components=1']);
    // The package's dependencies come from this checkout's lock (no registry in tests): each one linked beside it.
    for (const name of await readdir(join(ROOT, 'node_modules'))) {
      if (name !== '.bin' && name !== '.package-lock.json')
        await symlink(join(ROOT, 'node_modules', name), join(project, 'node_modules', name));
    }
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('ships the built library, its types and docs, and no generated images, sources or source maps', () => {
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files).toContain('bin/templates');
    expect(files).toContain('docs/api.md');
    expect(files.filter((file) => /^(src|test|bench)\/|fixtures\/demo\/images\/|\.map$|\.tgz$/.test(file))).toEqual([]);
  });

  it('fetches with one call, and a set destructured by mistake is a USAGE error that says what was expected', async () => {
    const www = join(dir, 'www');
    const disk = await makeDisk(join(dir, 'disk.raw'), { sizeMiB: 4, dataKiB: 256 });
    await publishImage(www, 'tpl/v1', disk, {});
    const repo = join(dir, 'repo.json');
    await writeFile(
      repo,
      JSON.stringify({
        name: 'r',
        sources: { disk: { type: 'file', args: { root: www } } },
        templates: { tpl: { versions: { v1: { source: 'disk', handle: 'tpl/v1', timestamp: 1 } } } },
      }),
    );
    await writeFile(
      join(project, 'main.mjs'),
      `
import { fetchTemplates, fetchTemplate, loadRepositories, openStore, isTemplatesError } from 'templates';
const [repo, store] = process.argv.slice(2);
const out = {};
out.results = await fetchTemplates(['r:tpl'], { repos: [repo], store });
const { repositories } = await loadRepositories({ repos: [repo] });
try {
  await fetchTemplate('r:tpl', { store: await openStore({ root: store }), repositories });
} catch (error) {
  out.mistake = { templatesError: isTemplatesError(error), code: error.code, message: error.message };
}
out.subpaths = {};
for (const [path, name] of [['serve', 'startServer'], ['status', 'scrapeStatus'], ['oci', 'pushTemplate'], ['publish', 'indexDirectory'], ['trust', 'lockTemplates']]) {
  out.subpaths[path] = typeof (await import(\`templates/\${path}\`))[name];
}
console.log(JSON.stringify(out));
`,
    );
    const store = join(dir, 'store');
    const run = await execa(process.execPath, ['main.mjs', repo, store], {
      cwd: project,
      env: { PATH: TOOL_PATH, HOME: dir },
      extendEnv: false,
    });
    const out = JSON.parse(run.stdout) as {
      results: Array<{ ref: string; path: string; status: string }>;
      mistake: { templatesError: boolean; code: string; message: string };
      subpaths: Record<string, string>;
    };
    // The subpath entries resolve in an installed package (the package.json exports map).
    expect(out.subpaths).toEqual({
      serve: 'function',
      status: 'function',
      oci: 'function',
      publish: 'function',
      trust: 'function',
    });
    expect(out.results).toEqual([
      expect.objectContaining({ ref: 'r:tpl:v1', path: join(store, 'r:tpl:v1'), status: 'downloaded' }),
    ]);
    expect(await digestOf(out.results[0]!.path)).toBe(await digestOf(disk));
    expect(out.mistake.templatesError).toBe(true);
    expect(out.mistake.code).toBe('USAGE');
    expect(out.mistake.message).toMatch(
      /^fetchTemplate: repositories must be the RepositorySet that loadRepositories\(\) returns/,
    );
  });

  it('runs the hashing worker threads from the installed package, in its CLI bundle and in its library', async () => {
    // 24 MiB: past the size hashed on the main thread (16 MiB), so a worker hashes; the .xz is verified by its image
    // (lago's way: a worker reads the decoder's FIFO), the plain file as it passes, the compressed one behind its copy.
    const www = join(dir, 'www-workers');
    const disk = await makeDisk(join(dir, 'big.raw'), { sizeMiB: 24, dataKiB: 512 });
    const xz = await publishImage(www, 'x/v1', disk, { xz: true });
    await publishImage(www, 'p/v1', disk, { xz: false, plain: true });
    const repo = join(dir, 'workers.json');
    const version = (handle: string, extra = {}) => ({
      versions: { v1: { source: 'd', handle, timestamp: 1, ...extra } },
    });
    await writeFile(
      repo,
      JSON.stringify({
        name: 'w',
        sources: { d: { type: 'file', args: { root: www } } },
        templates: {
          xz: version('x/v1'),
          plain: version('p/v1'),
          fast: version('x/v1', { compressed_hash: `sha256:${xz.xzSha256}` }),
        },
      }),
    );
    const env = { PATH: TOOL_PATH, HOME: dir };
    const cli = join(project, 'node_modules/templates/bin/templates');
    const cliStore = join(dir, 'store-cli');
    await execa(cli, ['fetch', '--repo', repo, '--store', cliStore, 'w:xz', 'w:plain', 'w:fast'], {
      env,
      extendEnv: false,
    });
    await writeFile(
      join(project, 'workers.mjs'),
      `
import { createContext, fetchTemplates } from 'templates';
const [repo, store] = process.argv.slice(2);
const results = await fetchTemplates(['w:xz', 'w:plain', 'w:fast'], { repos: [repo], store, context: createContext({ inlineHashMaxBytes: 0 }) });
console.log(JSON.stringify(results.map((result) => result.path)));
`,
    );
    const libraryStore = join(dir, 'store-library');
    const run = await execa(process.execPath, ['workers.mjs', repo, libraryStore], {
      cwd: project,
      env,
      extendEnv: false,
    });
    const paths = [
      ...['xz', 'plain', 'fast'].map((name) => join(cliStore, `w:${name}:v1`)),
      ...(JSON.parse(run.stdout) as string[]),
    ];
    expect(paths).toHaveLength(6);
    const expected = await digestOf(disk);
    for (const path of paths) expect(await digestOf(path)).toBe(expected);
  });

  it('fails a fetch as INTERNAL, exit 1, when its install lost a worker, never hanging or exiting 0', async () => {
    // This test's own installed copy: a hashing worker missing, as a broken install would have it.
    const installed = join(project, 'node_modules/templates');
    await rm(join(installed, 'dist/bundle/hash-batches-worker.cjs'));
    const run = await execa(
      join(installed, 'bin/templates'),
      ['fetch', '--repo', join(dir, 'workers.json'), '--store', join(dir, 'store-broken'), 'w:plain'],
      { env: { PATH: TOOL_PATH, HOME: dir }, extendEnv: false, reject: false, timeout: 60_000 },
    );
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toMatch(/\[INTERNAL\]$/);
    expect(await readdir(join(dir, 'store-broken'))).not.toContain('w:plain:v1');
  });

  it('type-checks a TypeScript consumer against the published declarations', async () => {
    await writeFile(
      join(project, 'check.ts'),
      `
import { fetchTemplates, loadRepositories, fetchTemplate, openStore, RepositorySet, type FetchResult } from 'templates';
export async function provision(signal: AbortSignal): Promise<string[]> {
  const results: FetchResult[] = await fetchTemplates(['phx_repo:centos7_host:v4'], { repos: ['https://example.org/repo.json'], store: '/var/lib/lago/store', signal });
  const repositories: RepositorySet = await loadRepositories({ repos: ['repo.json'] });
  const one = await fetchTemplate('r:tpl', { store: await openStore({ root: '/tmp/s' }), repositories, signal });
  return [...results.map((r) => r.path), one.path, ...repositories.names()];
}
`,
    );
    await writeFile(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          types: ['node'],
          skipLibCheck: false,
        },
        files: ['check.ts'],
      }),
    );
    const result = await execa(join(ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], {
      cwd: project,
      reject: false,
    });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
  });
});
