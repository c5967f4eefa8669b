// Finding repositories: --repo, --repos directories, TEMPLATES_REPOS, HTTP repositories cached for offline use.
import { mkdir, readdir, writeFile, cp } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createContext, loadRepositories, loadRepository, openStore, splitRepoList } from '../../src/index.js';
import { repoCachePath } from '../../src/store/layout.js';
import { workspace, type Workspace } from '../helpers/env.js';

let ws: Workspace;
beforeEach(async () => {
  ws = await workspace();
});
afterEach(async () => {
  await ws.cleanup();
});

const minimal = (name: string) => ({ name, sources: {}, templates: {} });

describe('splitRepoList', () => {
  it('splits on colons but keeps URLs (with ports) whole', () => {
    expect(splitRepoList('/a/dir:http://h:8080/r.json:/b.json:https://x/y.json::file:///c.json')).toEqual([
      '/a/dir',
      'http://h:8080/r.json',
      '/b.json',
      'https://x/y.json',
      'file:///c.json',
    ]);
  });
});

describe('loadRepositories', () => {
  it('reads every *.json of --repos directories by name and warns about (but skips) a broken file', async () => {
    const dir = join(ws.dir, 'repodir');
    await mkdir(dir);
    await writeFile(join(dir, 'a.json'), JSON.stringify(minimal('alpha')));
    await writeFile(join(dir, 'b.json'), JSON.stringify(minimal('beta')));
    await writeFile(join(dir, 'broken.json'), '{"name":');
    await writeFile(join(dir, 'notes.txt'), 'ignored');
    const warnings: string[] = [];
    const set = await loadRepositories({
      context: createContext({ env: {} }),
      repoDirs: [dir],
      onWarning: (m) => warnings.push(m),
    });
    expect(set.names()).toEqual(['alpha', 'beta']);
    expect(warnings).toEqual([expect.stringContaining('broken.json')]);
  });

  it('fails on a broken repository named explicitly', async () => {
    const path = await ws.writeRepo('x', '{"name":');
    await expect(loadRepositories({ context: createContext({ env: {} }), repos: [path] })).rejects.toMatchObject({
      code: 'REPO_INVALID',
      fields: { file: path },
    });
    await expect(
      loadRepositories({ context: createContext({ env: {} }), repos: [join(ws.dir, 'missing.json')] }),
    ).rejects.toMatchObject({ code: 'REPO_NOT_FOUND' });
  });

  it('takes a TEMPLATES_REPOS-style list (files, directories and URLs) and keeps the first of two same-named repositories', async () => {
    const file = await ws.writeRepo('one', minimal('one'));
    const dir = join(ws.dir, 'more');
    await mkdir(dir);
    await writeFile(join(dir, 'two.json'), JSON.stringify(minimal('two')));
    await writeFile(join(dir, 'dup.json'), JSON.stringify(minimal('one')));
    await writeFile(join(ws.www, 'three.json'), JSON.stringify(minimal('three')));
    const warnings: string[] = [];
    const locations = splitRepoList(`${file}:${dir}:${ws.baseurl}three.json`);
    const set = await loadRepositories({
      context: createContext({ env: {} }),
      locations,
      onWarning: (m) => warnings.push(m),
    });
    // The library reads no TEMPLATES_* variable: only the CLI does.
    const none = await loadRepositories({ context: createContext({ env: { TEMPLATES_REPOS: file } }) });
    expect(none.names()).toEqual([]);
    expect(set.names().sort()).toEqual(['one', 'three', 'two']);
    expect(set.get('one')?.location).toBe(file);
    expect(warnings).toEqual([expect.stringContaining('same name')]);
  });
});

describe('repositories over HTTP', () => {
  it('caches the JSON in the store and falls back to it, with a warning, when the server is unreachable', async () => {
    await writeFile(join(ws.www, 'r.json'), JSON.stringify(minimal('remote')));
    const store = await openStore({ root: ws.store });
    const context = createContext({ env: {} });
    const url = `${ws.baseurl}r.json`;
    expect((await loadRepository(url, { context, store })).name).toBe('remote');
    expect(await readdir(join(ws.store, '.repos'))).toHaveLength(1);

    // Same cache, server gone: simulate by pointing a copy of the cache at a dead URL.
    const deadUrl = 'http://127.0.0.1:9/r.json';
    const other = await openStore({ root: join(ws.dir, 'store2') });
    await expect(loadRepository(deadUrl, { context, store: other })).rejects.toMatchObject({
      code: 'SOURCE_UNREACHABLE',
    });
    await mkdir(join(other.root, '.repos'), { recursive: true });
    await cp(repoCachePath(store.root, url), repoCachePath(other.root, deadUrl));
    const warnings: string[] = [];
    const repo = await loadRepository(deadUrl, { context, store: other, onWarning: (m) => warnings.push(m) });
    expect(repo.name).toBe('remote');
    expect(warnings).toEqual([expect.stringContaining('using the copy cached')]);
  });

  it('refuses HTML (a captive portal) and reports 404 as REPO_NOT_FOUND', async () => {
    const context = createContext({ env: {} });
    const portal = ws.baseurl.replace(/\/ws-[^/]+\/$/, '/portal/r.json');
    await expect(loadRepository(portal, { context })).rejects.toMatchObject({ code: 'REPO_INVALID' });
    await expect(loadRepository(`${ws.baseurl}nope.json`, { context })).rejects.toMatchObject({
      code: 'REPO_NOT_FOUND',
      fields: { status: 404 },
    });
  });

  it('refuses unsupported location schemes', async () => {
    await expect(loadRepository('ftp://h/r.json', { context: createContext({ env: {} }) })).rejects.toMatchObject({
      code: 'USAGE',
    });
  });
});
