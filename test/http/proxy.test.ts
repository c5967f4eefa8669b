// Proxies from HTTP_PROXY/HTTPS_PROXY/NO_PROXY: the pure choice, and a real forward proxy (nginx) in the path.
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { fetchTemplate, openStore } from '../../src/index.js';
import { bypassesProxy, proxyFor } from '../../src/http/proxy.js';
import { digestOf, makeDisk, publishImage } from '../helpers/images.js';
import { lagoRepo, librarySetup, workspace, type Workspace } from '../helpers/env.js';

describe('proxyFor', () => {
  const env = {
    http_proxy: 'http://p:3128',
    HTTPS_PROXY: 'http://sp:3128',
    NO_PROXY: 'localhost,.internal.example, exact.org:8443',
  };
  it.each([
    ['http://h.example/x', 'http://p:3128'],
    ['https://h.example/x', 'http://sp:3128'],
    ['http://localhost/x', undefined],
    ['http://a.b.internal.example/x', undefined],
    ['http://internal.example/x', undefined],
    ['https://exact.org:8443/x', undefined],
    ['https://exact.org/x', 'http://sp:3128'],
  ])('%s goes through %s', (url, proxy) => {
    expect(proxyFor(new URL(url), env)).toBe(proxy);
  });
  it('NO_PROXY=* bypasses everything', () => {
    expect(bypassesProxy(new URL('http://x/'), { NO_PROXY: '*' })).toBe(true);
  });
});

describe('a real forward proxy', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await workspace();
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  it('sends every request through HTTP_PROXY, and none when NO_PROXY names the host', async () => {
    const nginx = inject('nginx');
    const disk = await makeDisk(join(ws.dir, 'a.raw'), { sizeMiB: 8 });
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    const repo = await ws.writeRepo(
      'r',
      lagoRepo('r', ws, { tpl: { v1: { source: 'web', handle: 'tpl/v1.raw', timestamp: 1 } } }),
    );
    const proxied = async () =>
      (await readFile(nginx.proxyLog, 'utf8').catch(() => ''))
        .split('\n')
        .filter((l) => l.includes(ws.baseurl.split('/')[3]!));

    const viaProxy = await librarySetup(ws, [repo], {
      env: { PATH: process.env.PATH, HTTP_PROXY: `http://127.0.0.1:${nginx.proxyPort}` },
    });
    const result = await fetchTemplate('r:tpl:v1', { ...viaProxy, store: viaProxy.store });
    expect(await digestOf(result.path)).toBe(await digestOf(disk));
    expect((await proxied()).length).toBeGreaterThanOrEqual(3); // metadata, hash, image

    const before = (await proxied()).length;
    const direct = await librarySetup(ws, [repo], {
      env: { PATH: process.env.PATH, HTTP_PROXY: `http://127.0.0.1:${nginx.proxyPort}`, NO_PROXY: '127.0.0.1' },
    });
    await fetchTemplate('r:tpl:v1', { ...direct, store: await openStore({ root: join(ws.dir, 'other-store') }) });
    expect((await proxied()).length).toBe(before);
  });
});
