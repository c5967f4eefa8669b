// The dashboard at / in Debian's chromium (headless, playwright-core) against real templates serve processes and nginx.
/// <reference lib="dom" />
import { existsSync } from 'node:fs';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, workspace, type Workspace } from '../helpers/env.js';
import { makeDisk } from '../helpers/images.js';
import { freePort, nginxConf, startNginx, type RunningNginx } from '../helpers/nginx.js';
import { startServe, type Served } from '../helpers/serve.js';

/** Screenshots go here (CI keeps them); docs/serve.md shows one. */
const ARTIFACTS = resolve(process.env.TEST_ARTIFACTS ?? join(import.meta.dirname, '../../test-artifacts'));
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => existsSync(path));
const SCRAPE_SECONDS = 2;

let ws: Workspace;
let browser: Browser;
let primary: RunningNginx;
let mirror: { start(): Promise<void>; stop(): Promise<void>; port: number };
let open: Served;
let authed: Served;
let reader: Served;
let store: string;
let jsonUrl: string;

const cli = (args: string[]) => runCli(args, { HOME: ws.dir });

async function site(name: string, dir: string): Promise<{ port: number; url: string; start(): Promise<RunningNginx> }> {
  const prefix = join(ws.dir, `nginx-${name}`);
  await mkdir(prefix, { recursive: true });
  const port = await freePort();
  const conf = nginxConf(prefix, `  access_log off;\n  server { listen 127.0.0.1:${port}; root ${dir}; }`);
  return { port, url: `http://127.0.0.1:${port}/`, start: () => startNginx(prefix, conf, port) };
}

/** A page at `width`×800 that records every URL it asks for. */
async function openPage(server: Served, width = 1280): Promise<{ page: Page; requests: string[] }> {
  const page = await browser.newPage({ viewport: { width, height: 800 } });
  const requests: string[] = [];
  page.on('request', (request) => void requests.push(request.url()));
  page.on('dialog', (dialog) => void dialog.accept());
  await page.goto(`${server.url}/`);
  return { page, requests };
}

/** The exact byte counts (`<data value>`) of a table's rows, by the row's first cell. */
async function tableBytes(page: Page, selector: string): Promise<Record<string, number[]>> {
  return page.$$eval(`${selector} tbody tr`, (rows) =>
    Object.fromEntries(
      rows.map((row) => [
        row.querySelector('th')?.textContent ?? '',
        [...row.querySelectorAll('data')].map((data) => Number(data.getAttribute('value'))),
      ]),
    ),
  );
}

beforeAll(async () => {
  if (!CHROMIUM) throw new Error('chromium is not installed: run ./scripts/setup.sh (Debian package chromium)');
  ws = await workspace();
  const published = join(ws.dir, 'primary');
  const mirrored = join(ws.dir, 'mirror');
  await mkdir(published, { recursive: true });
  const [up, down] = [await site('primary', published), await site('mirror', mirrored)];
  await makeDisk(join(published, 'alpine-3.19.raw'), { sizeMiB: 8, dataKiB: 1024, label: 'alpine' });
  await makeDisk(join(published, 'debian-12.raw'), { sizeMiB: 4, dataKiB: 512, label: 'debian' });
  await makeDisk(join(published, 'fedora-40.raw'), { sizeMiB: 4, dataKiB: 256, label: 'fedora' });
  await makeDisk(join(published, 'ubuntu-24.raw'), { sizeMiB: 4, dataKiB: 256, label: 'ubuntu' });
  const indexed = await cli([
    'index',
    published,
    '--name',
    'demo',
    '--formats',
    'xz',
    '--base-url',
    up.url,
    '--mirror',
    down.url,
    '--quiet',
  ]);
  expect(indexed.exitCode, indexed.stderr).toBe(0);
  await cp(published, mirrored, { recursive: true });
  primary = await up.start();
  let running: RunningNginx | undefined = await down.start();
  mirror = {
    port: down.port,
    start: async () => {
      running = await down.start();
    },
    stop: async () => {
      await running?.stop();
      running = undefined;
    },
  };
  jsonUrl = `${up.url}demo.json`;
  store = join(ws.dir, 'store');
  const fetched = await cli(['fetch', '--repo', jsonUrl, '--store', store, 'demo:alpine:3.19', 'demo:debian:12']);
  expect(fetched.exitCode, fetched.stderr).toBe(0);
  // A policy that would take everything: the page lists what goes next.
  const config = join(ws.dir, 'config.json');
  await writeFile(config, JSON.stringify({ pruneMaxBytes: 1 }));
  const htpasswd = join(ws.dir, 'htpasswd');
  await execa('htpasswd', ['-B', '-b', '-c', htpasswd, 'alice', 'pw-alice']);
  [open, authed, reader] = await Promise.all([
    startServe(['--store', store, '--repo', jsonUrl, '--config', config, '--scrape-interval', `${SCRAPE_SECONDS}s`], {
      HOME: ws.dir,
    }),
    startServe(['--store', join(ws.dir, 'authed'), '--repo', jsonUrl, '--auth', htpasswd], { HOME: ws.dir }),
    startServe(['--store', join(ws.dir, 'reader'), '--repo', jsonUrl, '--auth', htpasswd, '--anonymous', 'read'], {
      HOME: ws.dir,
    }),
  ]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all([open, authed, reader].map((server) => server?.stop()));
  await Promise.all([primary?.stop(), mirror?.stop()]);
  await ws?.cleanup();
});

describe('the dashboard', () => {
  it('shows the figures templates du --json gives, loading nothing from outside the server', async () => {
    const { page, requests } = await openPage(open);
    await page.waitForSelector('#per-repo tbody tr[data-repository="demo"]');
    await page.waitForSelector('#prune-next tbody tr th a');
    const du = JSON.parse((await cli(['du', '--json', '--store', store])).stdout) as {
      total: { size: number; disk_size: number };
      free: number;
      repositories: Array<{
        name: string;
        size: number;
        disk_size: number;
        templates: Array<{ name: string; versions: Array<{ name: string; size: number; disk_size: number }> }>;
      }>;
    };
    const totals = await page.$$eval('#store-totals div', (items) =>
      Object.fromEntries(
        items.map((item) => [
          item.querySelector('dt')!.textContent,
          Number(item.querySelector('data')!.getAttribute('value')),
        ]),
      ),
    );
    expect(totals).toMatchObject({ 'Stored versions': 2, Size: du.total.size, 'On disk': du.total.disk_size });
    expect(totals.Free).toBeGreaterThan(0);
    expect(await tableBytes(page, '#per-repo')).toEqual(
      Object.fromEntries(du.repositories.map((r) => [r.name, [r.size, r.disk_size]])),
    );
    const versions = du.repositories.flatMap((r) =>
      r.templates.flatMap((t) => t.versions.map((v) => [`${r.name}:${t.name}:${v.name}`, [v.size, v.disk_size]])),
    );
    expect(await tableBytes(page, '#largest')).toEqual(Object.fromEntries(versions));
    // Largest first; every figure links to the API resource it comes from.
    const largest = await page.$$eval('#largest tbody th a', (links) => links.map((a) => a.getAttribute('href')));
    expect(largest).toEqual([
      '/api/1/repositories/demo/templates/alpine/versions/3.19',
      '/api/1/repositories/demo/templates/debian/versions/12',
    ]);
    for (const href of [
      ...largest,
      ...(await page.$$eval('#store-totals a, #per-repo a', (links) => links.map((a) => a.getAttribute('href')))),
    ]) {
      expect((await fetch(`${open.url}${href}`)).status, href!).toBe(200);
    }
    // pruneMaxBytes 1: both entries would go, least recently used first.
    expect(await page.$$eval('#prune-next tbody th', (cells) => cells.length)).toBe(2);
    expect(await page.textContent('#policy')).toContain('least recently used');
    const origin = new URL(open.url).origin;
    expect(requests.filter((url) => !url.startsWith(`${origin}/`) && !url.startsWith('data:'))).toEqual([]);
    await page.close();
  }, 60_000);

  it('a job created through the API appears and reaches done without a reload; its owner renews it from the page', async () => {
    const { page, requests } = await openPage(open);
    await page.waitForSelector('#jobs-table tbody td.empty, #jobs-table tbody tr[data-job]');
    const navigations: string[] = [];
    page.on('framenavigated', (frame) => void navigations.push(frame.url()));
    const created = await fetch(`${open.url}/api/1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refs: ['demo:fedora:40'], seconds_to_live: 600, label: 'ci-42' }),
    });
    expect(created.status).toBe(201);
    const job = (await created.json()) as { id: number };
    await page.waitForSelector(`#jobs-table tr[data-job="${job.id}"][data-state="done"]`, { timeout: 30_000 });
    expect(await page.textContent(`#jobs-table tr[data-job="${job.id}"]`)).toContain('ci-42');
    // The fetch it ran is among the recent ones, with its result and source.
    await page.waitForSelector('#recent tbody tr[data-transfer]');
    const recent = await page.textContent('#recent tbody');
    expect(recent).toContain('demo:fedora:40');
    expect(recent).toMatch(/downloaded[\s\S]*primary/);
    const renewed = page.waitForResponse(
      (response) => response.url().endsWith(`/api/1/jobs/${job.id}`) && response.request().method() === 'PATCH',
    );
    await page.click(`button[data-key="renew-${job.id}"]`);
    expect((await renewed).status()).toBe(200);
    expect(navigations).toEqual([]);
    expect(requests.every((url) => url.startsWith(new URL(open.url).origin))).toBe(true);
    await page.close();
  }, 60_000);

  it("a neighbour's pull-through appears among the recent fetches, from the primary, without a reload", async () => {
    const { page } = await openPage(open);
    await page.waitForSelector('#in-flight li');
    const neighbour = await runCli(
      ['fetch', '--repo', `${open.url}/repos/demo.json`, '--store', join(ws.dir, 'neighbour'), 'demo:ubuntu:24'],
      { HOME: ws.dir },
    );
    expect(neighbour.exitCode, neighbour.stderr).toBe(0);
    const row = '#recent tbody tr[data-transfer]:has(a[href="/api/1/repositories/demo/templates/ubuntu/versions/24"])';
    await page.waitForSelector(row, { timeout: 20_000 });
    expect(await page.textContent(row)).toMatch(/downloaded[\s\S]*primary/);
    const transfers = (await (await fetch(`${open.url}/api/1/transfers`)).json()) as {
      recent: Array<{ kind: string; ref: string; result: string; source: string; bytes: number }>;
    };
    expect(transfers.recent.find((t) => t.ref === 'demo:ubuntu:24')).toMatchObject({
      kind: 'pull',
      result: 'downloaded',
      source: 'primary',
    });
    expect(transfers.recent.find((t) => t.ref === 'demo:ubuntu:24')!.bytes).toBeGreaterThan(0);
    // With a job done and two fetches behind it: the picture docs/serve.md shows.
    await page.waitForSelector('#store-totals data[value="4"]', { timeout: 20_000 });
    // What the neighbour got counts for lago's format, as /api/1/formats says.
    await page.waitForSelector('#formats tbody tr[data-format="lago"]', { timeout: 20_000 });
    const formats = (await (await fetch(`${open.url}/api/1/formats`)).json()) as {
      formats: Array<{ format: string; requests: number; bytes: number }>;
    };
    const lago = formats.formats.find((f) => f.format === 'lago')!;
    expect(lago.bytes).toBeGreaterThan(0);
    expect((await tableBytes(page, '#formats')).lago![0]).toBeGreaterThan(0);
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
    await page.close();
  }, 60_000);

  it('a stopped mirror turns its cell red within a scrape interval', async () => {
    const { page } = await openPage(open);
    const cell = `#mirror-grid tr[data-repository="demo"] td[data-server="127.0.0.1:${mirror.port}"]`;
    await page.waitForSelector(`${cell}[data-state="ok"]`, { timeout: 20_000 });
    await mirror.stop();
    try {
      const stopped = Date.now();
      // A scrape may have just begun when it stopped: the next one sees it.
      await page.waitForSelector(`${cell}[data-state="bad"]`, { timeout: (2 * SCRAPE_SECONDS + 3) * 1000 });
      expect(Date.now() - stopped).toBeLessThan((2 * SCRAPE_SECONDS + 3) * 1000);
      expect(await page.textContent(cell)).toContain('down');
      const colour = await page.$eval(`${cell} .cell`, (node) => getComputedStyle(node).color);
      expect(colour).toBe('rgb(164, 20, 26)');
    } finally {
      await mirror.start();
      await page.close();
    }
  }, 60_000);

  it("fits a phone's width, labels every control, and is usable from the keyboard", async () => {
    const { page } = await openPage(open, 375);
    await page.waitForSelector('#per-repo tbody tr[data-repository="demo"]');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    const unlabeled = await page.$$eval('input, button, progress, [role="img"]', (nodes) =>
      nodes
        .filter((node) => {
          const element = node as HTMLInputElement;
          return !(
            element.labels?.length ||
            element.getAttribute('aria-label') ||
            element.getAttribute('aria-labelledby') ||
            element.textContent?.trim()
          );
        })
        .map((node) => node.outerHTML),
    );
    expect(unlabeled).toEqual([]);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to the figures');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('href'))).toBe('#store');
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-phone.png'), fullPage: true });
    await page.close();
  }, 60_000);

  it('asks for credentials when the API needs a token, keeps it in sessionStorage and never in a URL', async () => {
    const { page, requests } = await openPage(authed);
    await page.waitForSelector('#signin:not([hidden])');
    expect(await page.isVisible('#store .locked')).toBe(true);
    await page.fill('#user', 'alice');
    await page.fill('#password', 'wrong');
    await page.click('#signin button');
    await page.waitForFunction(() =>
      document.querySelector('#signin-error')?.textContent?.includes('Wrong user or password'),
    );
    await page.fill('#password', 'pw-alice');
    await page.click('#signin button');
    await page.waitForSelector('#signin', { state: 'hidden' });
    await page.waitForSelector('#store-totals data');
    expect(await page.textContent('#who')).toContain('alice');
    const saved = await page.evaluate(
      () => JSON.parse(sessionStorage.getItem('templates.session') ?? 'null') as { token: string } | null,
    );
    expect(saved?.token).toMatch(/^ey/);
    expect(requests.filter((url) => url.includes(saved!.token) || url.includes('pw-alice'))).toEqual([]);
    expect(await page.evaluate(() => JSON.stringify(localStorage))).toBe('{}');
    // Signing out forgets the token.
    await page.click('#signout');
    expect(await page.evaluate(() => sessionStorage.getItem('templates.session'))).toBeNull();
    await page.close();
  }, 60_000);

  it('with --anonymous read, shows what is public while signed out', async () => {
    const { page } = await openPage(reader);
    await page.waitForFunction(() => document.querySelector('#who')?.textContent?.includes('Public here'));
    expect(await page.$$eval('#who a', (links) => links.map((a) => a.textContent))).toEqual(['demo']);
    expect(await page.isVisible('#signin')).toBe(true);
    await page.close();
  }, 60_000);
});

describe('the API the dashboard reads', () => {
  it('serves the page with a policy that allows only this server, and refuses other files', async () => {
    const page = await fetch(`${authed.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(page.headers.get('content-security-policy')).toContain("connect-src 'self'");
    expect(await page.text()).toContain('<h2 id="store-title">Store</h2>');
    expect((await fetch(`${authed.url}/ui/app.js`)).headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await fetch(`${authed.url}/ui/..%2fpackage.json`)).status).toBe(404);
    expect((await fetch(`${authed.url}/api/1/transfers`)).status).toBe(401);
    expect((await fetch(`${authed.url}/api/1/events`)).status).toBe(401);
  });

  it('/api/1/prune is what templates prune --dry-run would take under the configured policy', async () => {
    const plan = (await (await fetch(`${open.url}/api/1/prune`)).json()) as {
      policy: Record<string, unknown>;
      next: Array<{ ref: string }>;
      freed: number;
    };
    expect(plan.policy).toEqual({ older_than_seconds: null, keep: null, max_bytes: 1 });
    const dry = await cli(['prune', '--dry-run', '--json', '--store', store, '--config', join(ws.dir, 'config.json')]);
    const report = JSON.parse(dry.stdout) as { removed: Array<{ ref: string }>; freed: number };
    expect(plan.next.map((e) => e.ref).sort()).toEqual(report.removed.map((e) => e.ref).sort());
    expect(plan.freed).toBe(report.freed);
  });

  it('/api/1/events streams job changes as they happen', async () => {
    const controller = new AbortController();
    const response = await fetch(`${open.url}/api/1/events`, { signal: controller.signal });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    const created = await fetch(`${open.url}/api/1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refs: ['demo:debian:12'], seconds_to_live: 60 }),
    });
    const { id } = (await created.json()) as { id: number };
    let text = '';
    for (let i = 0; i < 200 && !text.includes(`"id":${id},`); i++) text += (await reader.read()).value ?? '';
    for (let i = 0; i < 200 && !/"state_name":"done"/.test(text); i++) text += (await reader.read()).value ?? '';
    controller.abort();
    expect(text).toContain('event: hello');
    expect(text).toMatch(/event: job\nid: \d+\ndata: \{"id":\d+/);
    expect(text).toContain('"state_name":"done"');
  });
});
