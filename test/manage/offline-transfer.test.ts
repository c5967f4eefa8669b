// Offline runs with the repository server gone, the repository TTL, import and export round trips, and the config file.
import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lagoRepo, runCli, workspace, type Workspace } from '../helpers/env.js';
import { startFaultServer, type FaultServer } from '../helpers/fault-server.js';
import { digestOf, makeDisk, publishImage, toQcow2, xzFile } from '../helpers/images.js';

let ws: Workspace;
let disks: { a: string; b: string };
let repoFile: string;
const json = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);

beforeAll(async () => {
  ws = await workspace();
  disks = {
    a: await makeDisk(join(ws.dir, 'a.raw'), { sizeMiB: 8, dataKiB: 512, label: 'a' }),
    b: await makeDisk(join(ws.dir, 'b.raw'), { sizeMiB: 8, dataKiB: 512, label: 'b' }),
  };
  await publishImage(ws.www, 'tpl/v1.raw', disks.a);
  await publishImage(ws.www, 'tpl/v2.raw', disks.b);
  repoFile = await ws.writeRepo(
    'net',
    lagoRepo('net', ws, {
      tpl: {
        v1: { source: 'web', handle: 'tpl/v1.raw', timestamp: 100 },
        v2: { source: 'web', handle: 'tpl/v2.raw', timestamp: 200 },
      },
    }),
  );
});
afterAll(async () => {
  await ws.cleanup();
});

describe('offline', () => {
  let server: FaultServer;
  let url: string;
  const env = () => ({ TEMPLATES_STORE: ws.store, TEMPLATES_REPOS: url, XDG_CONFIG_HOME: ws.dir });

  it('caches the repository JSON; within its TTL no request is made, --refresh makes one', async () => {
    server = await startFaultServer({ 'net.json': repoFile });
    url = `${server.base}ok/net.json`;
    expect((await runCli(['fetch', '-q', 'net:tpl:v1'], env())).exitCode).toBe(0);
    expect(server.hits.get('/ok/net.json')).toBe(1);
    expect((await runCli(['list'], env())).exitCode).toBe(0);
    expect(server.hits.get('/ok/net.json')).toBe(1);
    expect((await runCli(['list', '--refresh'], env())).exitCode).toBe(0);
    expect(server.hits.get('/ok/net.json')).toBe(2);
    expect((await runCli(['list'], { ...env(), TEMPLATES_REPO_TTL_SECONDS: '0' })).exitCode).toBe(0);
    expect(server.hits.get('/ok/net.json')).toBe(3);
  });

  it('with the network gone: --offline resolves from the cache and serves the store; what needs the network fails naming it', async () => {
    await server.close();
    const imagesBefore = (await ws.requests()).length;
    const stored = await runCli(['fetch', '--offline', '--json', 'net:tpl:v1'], env());
    expect(stored.exitCode).toBe(0);
    expect(json(stored.stdout)[0]).toMatchObject({ ref: 'net:tpl:v1', status: 'cached' });
    const missing = await runCli(['fetch', '--offline', '--json', 'net:tpl:v2'], { ...env(), TEMPLATES_OFFLINE: '1' });
    expect(missing.exitCode).toBe(6);
    expect(json(missing.stdout)[0]).toMatchObject({
      ref: 'net:tpl:v2',
      error: { code: 'OFFLINE', url: `${ws.baseurl}tpl/v2.raw` },
    });
    expect(missing.stderr).toContain('offline');
    expect((await ws.requests()).length).toBe(imagesBefore);
    // TEMPLATES_OFFLINE=1 is the same switch; a repository never cached fails naming its URL.
    const unknown = await runCli(['list'], {
      ...env(),
      TEMPLATES_OFFLINE: '1',
      TEMPLATES_REPOS: `${server.base}ok/never.json`,
    });
    expect(unknown.exitCode).toBe(6);
    expect(unknown.stderr).toContain(`${server.base}ok/never.json`);
    // Online but unreachable, past the TTL: the cached copy is used with a warning.
    const stale = await runCli(['list', '--refresh'], env());
    expect(stale.exitCode).toBe(0);
    expect(stale.stderr).toContain('unreachable, using the copy cached at');
  });
});

describe('import and export', () => {
  const env = () => ({
    TEMPLATES_STORE: join(ws.dir, 'import-store'),
    TEMPLATES_REPOS: repoFile,
    XDG_CONFIG_HOME: ws.dir,
  });

  it('imports a local raw file and a local xz file exactly as a download would, and refuses a wrong one', async () => {
    const raw = await runCli(['import', '--json', 'net:tpl:v1', disks.a], env());
    expect(raw.exitCode).toBe(0);
    const result = json(raw.stdout)[0] as { path: string; status: string };
    expect(result).toMatchObject({ ref: 'net:tpl:v1', status: 'downloaded', format: 'raw' });
    expect(await digestOf(result.path)).toBe(await digestOf(disks.a));
    const record = JSON.parse(await readFile(`${result.path}.record.json`, 'utf8')) as Record<string, unknown>;
    expect(record).toMatchObject({
      source: disks.a,
      verified: { of: 'image', digest: `sha1:${await digestOf(disks.a)}` },
    });

    const wrong = await runCli(['import', 'net:tpl:v2', disks.a], env());
    expect(wrong.exitCode).toBe(5);
    expect(wrong.stderr).toContain('HASH_MISMATCH');
    const qcow2xz = await xzFile(await toQcow2(disks.b, join(ws.dir, 'b.qcow2')), join(ws.dir, 'b.qcow2.xz'));
    // The repository's .hash is of the raw image; this one is a qcow2 of it: a different file, refused.
    expect((await runCli(['import', 'net:tpl:v2', qcow2xz], env())).exitCode).toBe(5);
    const good = await runCli(
      ['import', '--json', 'net:tpl:v2', await xzFile(disks.b, join(ws.dir, 'b.raw.xz'))],
      env(),
    );
    expect(good.exitCode).toBe(0);
    expect(json(good.stdout)[0]).toMatchObject({ status: 'downloaded' });
    expect(await digestOf(join(ws.dir, 'import-store', 'net:tpl:v2'))).toBe(await digestOf(disks.b));
    expect(
      (await readdir(join(ws.dir, 'import-store'))).filter((name) => name.includes('tmp') && name !== '.tmp'),
    ).toEqual([]);
  });

  it('imports a qcow2 when the repository describes the qcow2, converting it to raw', async () => {
    const qcow2 = await toQcow2(disks.a, join(ws.dir, 'q', 'a.qcow2'));
    const repo = await ws.writeRepo(
      'q',
      lagoRepo('q', ws, {
        img: {
          v1: {
            source: 'web',
            handle: 'nowhere/a.qcow2',
            timestamp: 1,
            hash: `sha256:${await digestOf(qcow2, 'sha256')}`,
            format: 'qcow2',
          },
        },
      }),
    );
    const result = await runCli(['import', '--json', '--repo', repo, 'q:img:v1', qcow2], {
      TEMPLATES_STORE: join(ws.dir, 'import-store'),
      XDG_CONFIG_HOME: ws.dir,
    });
    expect(result.exitCode).toBe(0);
    expect(json(result.stdout)[0]).toMatchObject({ format: 'qcow2' });
    expect(await digestOf(join(ws.dir, 'import-store', 'q:img:v1'))).toBe(await digestOf(disks.a));
  });

  it('exports stored templates as a repository another store fetches back byte for byte', async () => {
    const out = join(ws.dir, 'export');
    const exported = await runCli(['export', '--json', '-q', 'net:tpl:v1', 'net:tpl:v2', out], env());
    expect(exported.exitCode).toBe(0);
    expect(json(exported.stdout)[0]).toMatchObject({
      repositories: [{ name: 'net', file: join(out, 'net.json'), versions: ['net:tpl:v1', 'net:tpl:v2'] }],
    });
    expect(await readFile(join(out, 'net', 'tpl', 'v1', 'image.raw.hash'), 'utf8')).toBe(await digestOf(disks.a));
    // The directory is moved: the relative root still works.
    const moved = join(ws.dir, 'moved');
    await mkdir(moved);
    await rename(out, join(moved, 'export'));
    const other = join(ws.dir, 'other-store');
    const fetched = await runCli(
      ['fetch', '--json', '-q', '--repos', join(moved, 'export'), 'net:tpl:v1', 'net:tpl:v2'],
      { TEMPLATES_STORE: other, XDG_CONFIG_HOME: ws.dir },
    );
    expect(fetched.exitCode).toBe(0);
    const [v1, v2] = json(fetched.stdout) as Array<{ path: string }>;
    expect(await digestOf(v1!.path)).toBe(await digestOf(disks.a));
    expect(await digestOf(v2!.path)).toBe(await digestOf(disks.b));
    const record = JSON.parse(await readFile(`${v1!.path}.record.json`, 'utf8')) as Record<string, unknown>;
    // export writes the .zst too, and lists it: the other store took it.
    expect(record).toMatchObject({ compressed: true, verified: { of: 'zst' } });
  });
});

describe('config', () => {
  it('takes each setting from a flag, else the environment, else the config file, else the default, and says which', async () => {
    const file = join(ws.dir, 'cfg.json');
    await writeFile(
      file,
      JSON.stringify({ store: '/from/file', retries: 7, repoTtlSeconds: 60, offline: true, lockWaitSeconds: 5 }),
    );
    const result = await runCli(['config', '--json', '--config', file, '--lock-wait', '9'], { TEMPLATES_RETRIES: '2' });
    expect(result.exitCode).toBe(0);
    const settings = json(result.stdout)[0]!;
    expect(settings).toMatchObject({
      store: { value: '/from/file', from: 'file', name: file },
      retries: { value: 2, from: 'env', name: 'TEMPLATES_RETRIES' },
      lockWaitSeconds: { value: 9, from: 'flag' },
      offline: { value: true, from: 'file' },
      idleTimeoutSeconds: { value: 60, from: 'default' },
    });
    // $XDG_CONFIG_HOME/templates/config.json is found on its own; a flag beats it.
    await mkdir(join(ws.dir, 'xdg', 'templates'), { recursive: true });
    await writeFile(
      join(ws.dir, 'xdg', 'templates', 'config.json'),
      JSON.stringify({ store: join(ws.dir, 'xdg-store'), repos: [repoFile] }),
    );
    const xdg = json((await runCli(['config', '--json'], { XDG_CONFIG_HOME: join(ws.dir, 'xdg') })).stdout)[0]!;
    expect(xdg).toMatchObject({
      store: { value: join(ws.dir, 'xdg-store'), from: 'file' },
      repos: { value: [repoFile], from: 'file' },
    });
    const listed = await runCli(['list', '--json'], { XDG_CONFIG_HOME: join(ws.dir, 'xdg') });
    expect(json(listed.stdout).map((v) => v.ref)).toEqual(['net:tpl:v2', 'net:tpl:v1']);
    expect(
      json(
        (await runCli(['config', '--json', '--store', '/flag'], { XDG_CONFIG_HOME: join(ws.dir, 'xdg') })).stdout,
      )[0],
    ).toMatchObject({ store: { value: '/flag', from: 'flag' } });
  });

  it('refuses a broken config file with CONFIG_INVALID (exit 2) naming it', async () => {
    const file = join(ws.dir, 'bad.json');
    await writeFile(file, JSON.stringify({ retries: 'many' }));
    const result = await runCli(['config', '--config', file]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(`${file}: retries`);
    expect(result.stderr).toContain('CONFIG_INVALID');
    expect((await runCli(['list', '--config', join(ws.dir, 'absent.json')])).exitCode).toBe(2);
  });
});
