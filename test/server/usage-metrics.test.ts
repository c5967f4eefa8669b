// The usage API against `templates du --json` on a store with several repositories, and /metrics checked by promtool and scraped by Prometheus.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, workspace, type Workspace } from '../helpers/env.js';
import { makeDisk, publishImage } from '../helpers/images.js';
import { freePort } from '../helpers/nginx.js';
import { startServe, type Served } from '../helpers/serve.js';

let ws: Workspace;
let server: Served;
let store: string;

type Node = {
  name: string;
  size: number;
  disk_size: number;
  _embedded?: { items: Node[] };
  _links?: Record<string, { href: string } | Array<{ href: string }>>;
};

beforeAll(async () => {
  ws = await workspace();
  store = join(ws.dir, 'cache');
  const repos: string[] = [];
  for (const [repo, templates] of [
    ['alpha', ['a', 'b']],
    ['beta', ['c++']],
  ] as const) {
    const versions: Record<string, unknown> = {};
    for (const name of templates) {
      await publishImage(
        ws.www,
        `${repo}/${name}/v1`,
        await makeDisk(join(ws.dir, `${repo}-${name}.raw`), { sizeMiB: 2, dataKiB: 128, label: name }),
      );
      versions[name] = { versions: { v1: { source: 'web', handle: `${repo}/${name}/v1`, timestamp: 1 } } };
    }
    repos.push(
      await ws.writeRepo(repo, {
        name: repo,
        sources: { web: { type: 'http', args: { baseurl: ws.baseurl } } },
        templates: versions,
      }),
    );
  }
  const fetched = await runCli(
    ['fetch', '--store', store, ...repos.flatMap((r) => ['--repo', r]), 'alpha:a', 'alpha:b', 'beta:c++'],
    { HOME: ws.dir },
  );
  expect(fetched.exitCode, fetched.stderr).toBe(0);
  server = await startServe(['--store', store, ...repos.flatMap((r) => ['--repo', r])], { HOME: ws.dir });
});

afterAll(async () => {
  await server?.stop();
  await ws?.cleanup();
});

const get = async (path: string) => {
  const response = await fetch(`${server.url}${path}`);
  expect(response.headers.get('content-type')).toMatch(/^application\/(hal\+)?json/);
  return { status: response.status, body: (await response.json()) as Node & { timestamp?: number } };
};

describe('usage API', () => {
  it('embeds the whole tree in one GET, equal to templates du --json', async () => {
    const du = JSON.parse((await runCli(['du', '--json', '--store', store], { HOME: ws.dir })).stdout) as {
      total: { size: number };
      repositories: Node[] & Array<{ templates: Array<Node & { versions: Node[] }> }>;
    };
    const { status, body } = await get('/api/1/repositories?embed=true');
    expect(status).toBe(200);
    expect(body.timestamp).toBeGreaterThan(1.7e9);
    const tree = body._embedded!.items.map((r) => ({
      name: r.name,
      size: r.size,
      disk_size: r.disk_size,
      templates: r._embedded!.items.map((t) => ({
        name: t.name,
        size: t.size,
        disk_size: t.disk_size,
        versions: t._embedded!.items.map((v) => ({ name: v.name, size: v.size, disk_size: v.disk_size })),
      })),
    }));
    expect(tree).toEqual(du.repositories);
    const version = body._embedded!.items[0]!._embedded!.items[0]!._embedded!.items[0]! as Node &
      Record<string, unknown>;
    expect(version).toMatchObject({
      name: 'v1',
      users: [],
      source: expect.stringContaining('/alpha/a/v1.xz'),
      format: 'raw',
      digest: expect.stringMatching(/^sha1:/),
    });
    expect(Date.parse(String(version.fetched_at))).toBeGreaterThan(0);
  });

  it('embeds only as many levels as asked, and links with percent-encoded names', async () => {
    const one = (await get('/api/1/repositories?embed=1')).body;
    expect(one._embedded!.items.map((r) => r.name)).toEqual(['alpha', 'beta']);
    expect(one._embedded!.items.every((r) => r._embedded === undefined)).toBe(true);
    const plain = (await get('/api/1/repositories/beta')).body;
    expect(plain).toEqual({
      name: 'beta',
      size: 2 * 2 ** 20,
      disk_size: expect.any(Number),
      signature: { state: 'unsigned' },
    });
    const linked = (await get('/api/1/repositories/beta?links=true')).body;
    expect(linked._links).toEqual({
      self: { href: '/api/1/repositories/beta' },
      up: { href: '/api/1/repositories' },
      collection: { href: '/api/1/repositories' },
      items: [{ href: '/api/1/repositories/beta/templates/c%2B%2B' }],
    });
    const version = (await get('/api/1/repositories/beta/templates/c%2B%2B/versions/v1?links=true')).body;
    expect(version._links).toMatchObject({
      self: { href: '/api/1/repositories/beta/templates/c%2B%2B/versions/v1' },
      up: { href: '/api/1/repositories/beta/templates/c%2B%2B' },
      collection: { href: '/api/1/repositories/beta/templates/c%2B%2B/versions' },
      download: { href: '/repos/beta/c%2B%2B/v1/image' },
    });
    const download = await fetch(`${server.url}${(version._links!.download as { href: string }).href}`);
    expect(download.status).toBe(200);
    expect((await download.arrayBuffer()).byteLength).toBe(2 * 2 ** 20);
    expect((await get('/api/1/repositories/beta/templates?links=true')).body._links!.items).toEqual([
      { href: '/api/1/repositories/beta/templates/c%2B%2B' },
    ]);
    expect((await get('/api/1/repositories/nope')).status).toBe(404);
    const totals = (await get('/api/1/store')).body as unknown as { entries: number; size: number; free: number };
    expect(totals).toMatchObject({ entries: 3, size: 6 * 2 ** 20 });
    expect(totals.free).toBeGreaterThan(0);
  });
});

describe('metrics', () => {
  it('passes promtool check metrics', async () => {
    await fetch(`${server.url}/repos/alpha.json`);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/^templates_store_size_bytes 6291456$/m);
    expect(text).toMatch(/^templates_http_requests_total\{route="\/repos\/\*",method="GET",status="200"\} \d+$/m);
    const checked = await execa('promtool', ['check', 'metrics'], { input: text, reject: false });
    expect(checked.stdout + checked.stderr).toBe('');
    expect(checked.exitCode).toBe(0);
  });

  it('is scraped by a real Prometheus, whose query API returns the store size', async () => {
    const dir = await mkdtemp(join(ws.dir, 'prom-'));
    const port = await freePort();
    const target = new URL(server.url).host;
    await writeFile(
      join(dir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: templates\n    static_configs:\n      - targets: ['${target}']\n`,
    );
    const prometheus = execa(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { reject: false },
    );
    try {
      let value: string | undefined;
      // The first scrape lands about 5 s after start; bounded at 40 s.
      for (let i = 0; i < 80 && value === undefined; i++) {
        await sleep(500);
        const answer = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=templates_store_size_bytes`).then(
          (r) => r.json() as Promise<{ data?: { result?: Array<{ value: [number, string] }> } }>,
          () => undefined,
        );
        value = answer?.data?.result?.[0]?.value[1];
      }
      expect(value).toBe(String(6 * 2 ** 20));
    } finally {
      prometheus.kill('SIGTERM');
      await prometheus;
      await rm(dir, { recursive: true, force: true });
    }
  });
});
