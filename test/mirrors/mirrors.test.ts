// Mirrors and status end to end: a primary and two mirrors as three nginx servers; fetches that survive them, and status.
import { copyFile, cp, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RepositoryStatus, StatusReport } from '../../src/api/status.js';
import { createContext, parseRepository } from '../../src/index.js';
import { runCli, workspace, type Workspace } from '../helpers/env.js';
import { makeDisk } from '../helpers/images.js';
import { freePort, nginxConf, startNginx, type RunningNginx } from '../helpers/nginx.js';
import { startServe } from '../helpers/serve.js';

interface Site {
  name: string;
  dir: string;
  port: number;
  url: string;
  nginx?: RunningNginx;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Request lines ("GET /path") nginx logged since the last call of `clearLog`. */
  requests(): Promise<string[]>;
  clearLog(): Promise<void>;
}

let ws: Workspace;
let primary: Site;
let mirrorA: Site;
let mirrorB: Site;
let jsonUrl: string;

async function site(name: string): Promise<Site> {
  const prefix = join(ws.dir, `nginx-${name}`);
  const dir = join(ws.dir, name);
  await mkdir(prefix, { recursive: true });
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const log = join(prefix, 'access.log');
  const conf = nginxConf(prefix, `  access_log ${log};\n  server { listen 127.0.0.1:${port}; root ${dir}; }`);
  const self: Site = {
    name,
    dir,
    port,
    url: `http://127.0.0.1:${port}/`,
    async start() {
      self.nginx = await startNginx(prefix, conf, port);
    },
    async stop() {
      await self.nginx?.stop();
      self.nginx = undefined;
    },
    async requests() {
      const text = await readFile(log, 'utf8').catch(() => '');
      return text
        .split('\n')
        .map((line) => /"(GET|HEAD) (\S+)/.exec(line))
        .filter((m) => m !== null)
        .map((m) => `${m[1]} ${m[2]}`)
        .filter((line) => line !== 'GET /');
    },
    async clearLog() {
      await writeFile(log, '');
    },
  };
  await self.start();
  return self;
}

/** The primary's directory copied onto a mirror, as `rsync -a` would (the JSON included). */
async function sync(mirror: Site): Promise<void> {
  await cp(primary.dir, mirror.dir, { recursive: true, force: true });
}

const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { HOME: ws.dir, ...env });
const storeOf = (name: string) => join(ws.dir, `store-${name}`);

async function status(args: string[] = []): Promise<{ exitCode: number; report: StatusReport }> {
  const result = await cli(['status', '--json', '--repo', jsonUrl, '--store', storeOf('status'), ...args]);
  return { exitCode: result.exitCode, report: JSON.parse(result.stdout) as StatusReport };
}

/** The report's rows by the port of their server. */
const rows = (report: StatusReport): Record<string, RepositoryStatus> =>
  Object.fromEntries(report.servers.flatMap((s) => s.repositories).map((r) => [r.server.split(':')[1]!, r]));

beforeAll(async () => {
  ws = await workspace();
  [primary, mirrorA, mirrorB] = [await site('primary'), await site('mirror-a'), await site('mirror-b')];
  await makeDisk(join(primary.dir, 'alpine-3.19.raw'), { sizeMiB: 4, dataKiB: 512, label: 'alpine' });
  await makeDisk(join(primary.dir, 'debian-12.raw'), { sizeMiB: 4, dataKiB: 512, label: 'debian' });
  const indexed = await cli([
    'index',
    primary.dir,
    '--name',
    'demo',
    '--formats',
    'xz',
    '--base-url',
    primary.url,
    '--mirror',
    mirrorA.url,
    '--mirror',
    mirrorB.url,
    '--quiet',
  ]);
  expect(indexed.exitCode, indexed.stderr).toBe(0);
  jsonUrl = `${primary.url}demo.json`;
  await sync(mirrorA);
  await sync(mirrorB);
}, 120_000);

afterAll(async () => {
  await Promise.all([primary, mirrorA, mirrorB].map((s) => s?.stop()));
  await ws?.cleanup();
});

describe('templates index for mirrors', () => {
  it('writes revision 1, published and the mirrors at the top level, and keeps the revision when nothing changed', async () => {
    const text = await readFile(join(primary.dir, 'demo.json'), 'utf8');
    const json = JSON.parse(text) as Record<string, unknown>;
    expect(json.revision).toBe(1);
    expect(typeof json.published).toBe('number');
    expect(json.mirrors).toEqual({ demo: [mirrorA.url, mirrorB.url] });
    expect(Object.keys((json.sources as Record<string, { args: object }>).demo!.args)).toEqual(['baseurl']);
    const again = await cli([
      'index',
      primary.dir,
      '--name',
      'demo',
      '--formats',
      'xz',
      '--base-url',
      primary.url,
      '--mirror',
      mirrorA.url,
      '--mirror',
      mirrorB.url,
      '--quiet',
      '--json',
    ]);
    expect(JSON.parse(again.stdout)).toMatchObject({ written: false, revision: 1 });
    const resolved = await cli(['resolve', 'demo:alpine', '--repo', jsonUrl, '--store', storeOf('resolve'), '--json'], {
      TEMPLATES_MIRRORS: `${primary.url}=http://other.example/`,
    });
    expect(JSON.parse(resolved.stdout)).toMatchObject({
      urls: [`${primary.url}alpine-3.19.raw.xz`, `${primary.url}alpine-3.19.raw`],
      mirrors: [mirrorA.url, mirrorB.url, 'http://other.example/'],
    });
    const repository = parseRepository(text, jsonUrl, { env: {}, home: '/', allowFileSources: false });
    const version = repository.templates.get('alpine');
    expect(version?.ok && [...version.value.versions.values()][0]).toMatchObject({
      ok: true,
      value: { source: { baseurl: primary.url, mirrors: [mirrorA.url, mirrorB.url] } },
    });
  });
});

describe('templates status', () => {
  it('reports the primary up and both mirrors in sync: exit 0', async () => {
    const { exitCode, report } = await status();
    expect(exitCode).toBe(0);
    expect(report.healthy).toBe(true);
    const by = rows(report);
    expect(by[`${primary.port}`]).toMatchObject({
      name: 'demo',
      role: 'primary',
      reachable: true,
      httpStatus: 200,
      revision: 1,
      templates: 2,
      versions: 2,
      sync: { state: 'primary' },
    });
    expect(by[`${mirrorA.port}`]).toMatchObject({
      role: 'mirror',
      revision: 1,
      sync: { state: 'in-sync', behindRevisions: 0 },
      healthy: true,
    });
    expect(by[`${mirrorB.port}`]).toMatchObject({ role: 'mirror', sync: { state: 'in-sync' }, healthy: true });
    expect(by[`${primary.port}`]!.rootSizeBytes).toBe(2 * 4 * 1024 * 1024);
    expect(by[`${primary.port}`]!.latencySeconds).toBeGreaterThan(0);
    const table = await cli(['status', '--repo', jsonUrl, '--store', storeOf('status')]);
    expect(table.stdout).toMatch(/^REPOSITORY\s+SERVER\s+ROLE\s+STATE/);
    expect(table.stdout.split('\n').filter((line) => line.startsWith('demo'))).toHaveLength(3);
  });
});

describe('fetching through mirrors', () => {
  it('with the primary stopped, takes the JSON and the image from a mirror, and the record, info and list say which', async () => {
    const store = storeOf('cached');
    // A first look while the primary is up leaves the JSON (and its mirrors) cached in the store.
    expect((await cli(['list', '--repo', jsonUrl, '--store', store])).exitCode).toBe(0);
    await primary.stop();
    await Promise.all([mirrorA, mirrorB].map((m) => m.clearLog()));
    try {
      const fetched = await cli(['fetch', 'demo:alpine:3.19', '--repo', jsonUrl, '--store', store, '--refresh']);
      expect(fetched.exitCode, fetched.stderr).toBe(0);
      expect(fetched.stderr).toContain(`using the copy at mirror ${mirrorA.url}demo.json`);
      expect(fetched.stderr).toContain(
        `templates: warning: demo:alpine:3.19: cannot download ${primary.url}alpine-3.19.raw.xz: ECONNREFUSED [SOURCE_UNREACHABLE]; trying ${mirrorA.url}`,
      );
      expect(await mirrorA.requests()).toEqual(expect.arrayContaining(['GET /demo.json', 'GET /alpine-3.19.raw.xz']));
      expect(await mirrorB.requests()).toEqual([]);
      const record = JSON.parse(await readFile(join(store, 'demo:alpine:3.19.record.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      expect(record).toMatchObject({ server: mirrorA.url, mirror: true, source: `${mirrorA.url}alpine-3.19.raw.xz` });
      const info = JSON.parse(
        (await cli(['info', 'demo:alpine:3.19', '--repo', jsonUrl, '--store', store, '--json', '--offline'])).stdout,
      ) as { stored: { server: string; mirror: boolean } };
      expect(info.stored).toMatchObject({ server: mirrorA.url, mirror: true });
      const verify = await cli(['verify', 'demo:alpine:3.19', '--store', store, '--repo', jsonUrl, '--offline']);
      expect(verify.exitCode, verify.stderr).toBe(0);
    } finally {
      await primary.start();
    }
  });

  it('without a cached copy, finds the JSON through the config mirrors (TEMPLATES_MIRRORS)', async () => {
    await primary.stop();
    try {
      const env = { TEMPLATES_MIRRORS: `${primary.url}=${mirrorB.url}` };
      const fetched = await cli(
        ['fetch', 'demo:debian:12', '--repo', jsonUrl, '--store', storeOf('rules'), '--quiet'],
        env,
      );
      expect(fetched.exitCode, fetched.stderr).toBe(0);
      expect(fetched.stderr).toContain(`using the copy at mirror ${mirrorB.url}demo.json`);
      const withoutRule = await cli([
        'fetch',
        'demo:debian:12',
        '--repo',
        jsonUrl,
        '--store',
        storeOf('no-rules'),
        '--json',
      ]);
      expect(withoutRule.exitCode).toBe(6);
      expect(JSON.parse(withoutRule.stdout.trim().split('\n').pop()!)).toMatchObject({
        error: { code: 'SOURCE_UNREACHABLE' },
      });
    } finally {
      await primary.start();
    }
  });

  it('passes over a mirror serving a wrong image with a warning naming it, and takes the next', async () => {
    // A valid image, but not this one: only the digest can tell, and it decides.
    const image = join(mirrorA.dir, 'alpine-3.19.raw.xz');
    const good = await readFile(image);
    await copyFile(join(mirrorA.dir, 'debian-12.raw.xz'), image);
    await primary.stop();
    await Promise.all([mirrorA, mirrorB].map((m) => m.clearLog()));
    const store = storeOf('corrupt');
    try {
      const env = { TEMPLATES_MIRRORS: `${primary.url}=${mirrorA.url}` };
      const fetched = await cli(['fetch', 'demo:alpine:3.19', '--repo', jsonUrl, '--store', store, '--quiet'], env);
      expect(fetched.exitCode, fetched.stderr).toBe(0);
      expect(fetched.stderr).toMatch(
        new RegExp(
          `warning: demo:alpine:3\\.19: .*${mirrorA.url}alpine-3\\.19\\.raw\\.xz.*\\[HASH_MISMATCH\\]; trying ${mirrorB.url}`,
        ),
      );
      // The order, proved by the servers' own logs: the primary (down), mirror A (wrong bytes), then mirror B.
      expect((await mirrorA.requests()).filter((line) => line.includes('alpine'))).toContain('GET /alpine-3.19.raw.xz');
      expect((await mirrorB.requests()).filter((line) => line.includes('alpine'))).toContain('GET /alpine-3.19.raw.xz');
      const record = JSON.parse(await readFile(join(store, 'demo:alpine:3.19.record.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      expect(record).toMatchObject({ server: mirrorB.url, mirror: true });
      // What this store learnt orders the next fetch: the primary, up again, and mirror A failed just now; B goes first.
      await primary.start();
      await Promise.all([primary, mirrorA, mirrorB].map((m) => m.clearLog()));
      const next = await cli(['fetch', 'demo:debian:12', '--repo', jsonUrl, '--store', store, '--quiet']);
      expect(next.exitCode, next.stderr).toBe(0);
      expect((await mirrorB.requests()).filter((line) => line.includes('debian'))).toContain('GET /debian-12.raw.xz');
      expect((await primary.requests()).filter((line) => line.includes('debian'))).toEqual([]);
      expect((await mirrorA.requests()).filter((line) => line.includes('debian'))).toEqual([]);
      const health = JSON.parse(await readFile(join(store, '.mirrors', 'health.json'), 'utf8')) as {
        servers: Record<string, { failures: number }>;
      };
      expect(health.servers[mirrorA.url]).toMatchObject({ failures: 1 });
    } finally {
      await writeFile(image, good);
      if (!primary.nginx) await primary.start();
    }
  });

  it('lists every server tried and why when none delivers (MIRRORS_FAILED, exit 6), and stores nothing', async () => {
    const moved = [mirrorA, mirrorB].flatMap((m) => ['debian-12.raw.xz', 'debian-12.raw'].map((f) => join(m.dir, f)));
    await Promise.all(moved.map((path) => rename(path, `${path}.away`)));
    await primary.stop();
    const store = storeOf('none');
    try {
      const env = { TEMPLATES_MIRRORS: `${primary.url}=${mirrorA.url}` };
      const result = await cli(['fetch', 'demo:debian:12', '--repo', jsonUrl, '--store', store, '--json'], env);
      expect(result.exitCode).toBe(6);
      const error = (
        JSON.parse(result.stdout.trim().split('\n').pop()!) as {
          error: { code: string; attempts: Array<{ url: string; code: string }> };
        }
      ).error;
      expect(error.code).toBe('MIRRORS_FAILED');
      expect(error.attempts.map((a) => [a.url, a.code])).toEqual([
        [`${primary.url}debian-12.raw.xz`, 'SOURCE_UNREACHABLE'],
        [`${mirrorA.url}debian-12.raw`, 'IMAGE_NOT_FOUND'],
        [`${mirrorB.url}debian-12.raw`, 'IMAGE_NOT_FOUND'],
      ]);
      const human = await cli(['fetch', 'demo:debian:12', '--repo', jsonUrl, '--store', store], env);
      expect(human.stderr.trim().split('\n').pop()).toMatch(
        /all 3 servers failed: .*127\.0\.0\.1.*; .*mirror|all 3 servers failed/,
      );
      const stored = await cli(['list', '--stored', '--store', store, '--json', '--offline', '--repo', jsonUrl]);
      expect(stored.stdout).not.toContain('debian');
    } finally {
      await Promise.all(moved.map((path) => rename(`${path}.away`, path)));
      await primary.start();
    }
  });
});

describe('templates status when mirrors fall behind, lose files or go down', () => {
  it('a mirror with an older JSON is behind by one revision: exit 12, and the Prometheus text passes promtool', async () => {
    await makeDisk(join(primary.dir, 'fedora-40.raw'), { sizeMiB: 4, dataKiB: 256, label: 'fedora' });
    const indexed = await cli([
      'index',
      primary.dir,
      '--name',
      'demo',
      '--formats',
      'xz',
      '--base-url',
      primary.url,
      '--mirror',
      mirrorA.url,
      '--mirror',
      mirrorB.url,
      '--quiet',
      '--json',
    ]);
    expect(JSON.parse(indexed.stdout)).toMatchObject({ written: true, revision: 2 });
    await sync(mirrorA);
    const { exitCode, report } = await status();
    expect(exitCode).toBe(12);
    expect(report.healthy).toBe(false);
    const by = rows(report);
    const published = (JSON.parse(await readFile(join(primary.dir, 'demo.json'), 'utf8')) as { published: number })
      .published;
    expect(by[`${primary.port}`]).toMatchObject({ revision: 2, versions: 3, healthy: true });
    expect(by[`${mirrorA.port}`]).toMatchObject({ revision: 2, sync: { state: 'in-sync' }, healthy: true });
    expect(by[`${mirrorB.port}`]).toMatchObject({
      revision: 1,
      versions: 2,
      sync: { state: 'behind', behindRevisions: 1, since: published },
      healthy: false,
    });

    const prometheus = await cli(['status', '--prometheus', '--repo', jsonUrl, '--store', storeOf('status')]);
    expect(prometheus.exitCode).toBe(12);
    const checked = await execa('promtool', ['check', 'metrics'], { input: prometheus.stdout, reject: false });
    expect(checked.exitCode, `${checked.stdout}${checked.stderr}`).toBe(0);
    const line = (metric: string, server: Site) =>
      prometheus.stdout
        .split('\n')
        .find((l) => l.startsWith(`${metric}{repository="demo",server="127.0.0.1:${server.port}"`));
    expect(line('templates_repository_behind_revisions', mirrorB)).toMatch(/ 1$/);
    expect(line('templates_repository_behind_revisions', mirrorA)).toMatch(/ 0$/);
    expect(line('templates_repository_revision', primary)).toMatch(/ 2$/);
    expect(line('templates_repository_up', mirrorB)).toMatch(/ 1$/);
    expect(line('templates_repository_versions', primary)).toMatch(/ 3$/);
    expect(line('templates_repository_root_size_bytes', primary)).toMatch(new RegExp(` ${3 * 4 * 1024 * 1024}$`));
    expect(line('templates_repository_revision_timestamp_seconds', primary)).toMatch(new RegExp(` ${published}$`));
    expect(line('templates_repository_latency_seconds', primary)).toMatch(/ \d/);
    await sync(mirrorB);
    expect((await status()).exitCode).toBe(0);
  });

  it('--deep finds a newest image missing on one mirror and a truncated one on another', async () => {
    const missing = join(mirrorB.dir, 'fedora-40.raw.xz');
    const plain = join(mirrorB.dir, 'fedora-40.raw');
    const truncated = join(mirrorA.dir, 'debian-12.raw.xz');
    const keep = await readFile(truncated);
    await rename(missing, `${missing}.away`);
    await rename(plain, `${plain}.away`);
    await writeFile(truncated, keep.subarray(0, 1000));
    try {
      expect((await status()).exitCode).toBe(0);
      const { exitCode, report } = await status(['--deep']);
      expect(exitCode).toBe(12);
      const by = rows(report);
      expect(by[`${primary.port}`]!.deep).toHaveLength(6);
      expect(by[`${primary.port}`]!.deep!.every((check) => check.ok && check.present)).toBe(true);
      expect(by[`${mirrorB.port}`]!.deep!.filter((check) => !check.ok)).toEqual([
        expect.objectContaining({ ref: 'demo:fedora:40', file: 'image', present: false }),
      ]);
      expect(by[`${mirrorA.port}`]!.deep!.filter((check) => !check.ok)).toEqual([
        expect.objectContaining({
          ref: 'demo:debian:12',
          file: 'image',
          present: true,
          size: 1000,
          primarySize: keep.length,
        }),
      ]);
      const table = await cli(['status', '--deep', '--repo', jsonUrl, '--store', storeOf('status')]);
      expect(table.stdout).toContain(`demo @ 127.0.0.1:${mirrorB.port}: demo:fedora:40 image missing`);
      expect(table.stdout).toContain(
        `demo @ 127.0.0.1:${mirrorA.port}: demo:debian:12 image is 1000 bytes, the primary's ${keep.length}`,
      );
    } finally {
      await rename(`${missing}.away`, missing);
      await rename(`${plain}.away`, plain);
      await writeFile(truncated, keep);
    }
  });

  it('a stopped mirror is down (up 0, exit 12); templates serve scrapes it too: /api/1/status and /metrics', async () => {
    await mirrorB.stop();
    const serve = await startServe(['--repo', jsonUrl, '--store', storeOf('serve'), '--scrape-interval', '1s'], {
      HOME: ws.dir,
    });
    try {
      const { exitCode, report } = await status();
      expect(exitCode).toBe(12);
      expect(rows(report)[`${mirrorB.port}`]).toMatchObject({
        reachable: false,
        sync: { state: 'down' },
        error: { code: 'SOURCE_UNREACHABLE' },
        healthy: false,
      });
      const api = (await (await fetch(`${serve.url}/api/1/status`)).json()) as StatusReport & {
        _links: { self: { href: string } };
      };
      expect(api._links.self.href).toBe(`${serve.url}/api/1/status`);
      expect(rows(api)[`${mirrorB.port}`]).toMatchObject({ reachable: false, healthy: false });
      expect(rows(api)[`${mirrorA.port}`]).toMatchObject({
        reachable: true,
        healthy: true,
        sync: { state: 'in-sync' },
      });
      const metrics = await (await fetch(`${serve.url}/metrics`)).text();
      expect(metrics).toContain(
        `templates_repository_up{repository="demo",server="127.0.0.1:${mirrorB.port}",role="mirror"} 0`,
      );
      expect(metrics).toContain(
        `templates_repository_up{repository="demo",server="127.0.0.1:${mirrorA.port}",role="mirror"} 1`,
      );
      const checked = await execa('promtool', ['check', 'metrics'], { input: metrics, reject: false });
      expect(checked.exitCode, `${checked.stdout}${checked.stderr}`).toBe(0);
      // Back up: the next scrape (every second here) sees it.
      await mirrorB.start();
      let healthy = false;
      for (let i = 0; i < 40 && !healthy; i++) {
        await sleep(250);
        healthy = ((await (await fetch(`${serve.url}/api/1/status`)).json()) as StatusReport).healthy;
      }
      expect(healthy).toBe(true);
      expect(serve.logs().some((line) => line.kind === 'status' && line.healthy === false)).toBe(true);
    } finally {
      expect(await serve.stop()).toBe(0);
      if (!mirrorB.nginx) await mirrorB.start();
    }
  });

  it('library: scrapeStatus with the same results, and status of a local file and of a name', async () => {
    const { scrapeStatus } = await import('../../src/api/status.js');
    const report = await scrapeStatus({ locations: [jsonUrl], context: createContext({ env: {} }) });
    expect(report.servers.map((s) => s.name).sort()).toEqual(
      [primary, mirrorA, mirrorB].map((s) => `127.0.0.1:${s.port}`).sort(),
    );
    expect(report.healthy).toBe(true);
    const local = await cli(['status', '--json', join(primary.dir, 'demo.json'), '--store', storeOf('status')]);
    expect(local.exitCode).toBe(0);
    expect((JSON.parse(local.stdout) as StatusReport).servers).toEqual([expect.objectContaining({ name: 'local' })]);
    const byName = await cli(['status', '--json', 'demo', '--repo', jsonUrl, '--store', storeOf('status')]);
    expect((JSON.parse(byName.stdout) as StatusReport).servers).toHaveLength(3);
    const none = await cli(['status', '--json', 'other', '--repo', jsonUrl, '--store', storeOf('status')]);
    expect((JSON.parse(none.stdout) as StatusReport).servers).toEqual([]);
  });
});
