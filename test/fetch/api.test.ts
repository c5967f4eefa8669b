// The library's front door: the one-call fetchTemplates, RepositorySet, and USAGE errors for wrong arguments at the boundary.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  RepositorySet,
  fetchTemplate,
  fetchTemplates,
  fetchTemplatesSettled,
  loadRepositories,
  loadRepository,
  openStore,
  resolveReference,
  templatePath,
  type TemplatesError,
} from '../../src/index.js';
import { TOOL_PATH, digestOf, makeDisk, publishImage } from '../helpers/images.js';
import { lagoRepo, workspace, type Workspace } from '../helpers/env.js';

let ws: Workspace;
let repo: string;
const env = () => ({ PATH: TOOL_PATH, HOME: ws.dir });

beforeEach(async () => {
  ws = await workspace();
  for (const name of ['a', 'b', 'c'])
    await publishImage(
      ws.www,
      `${name}/v1`,
      await makeDisk(join(ws.dir, `${name}.raw`), { sizeMiB: 2, dataKiB: 64, label: name }),
    );
  repo = await ws.writeRepo(
    'r',
    lagoRepo(
      'r',
      ws,
      Object.fromEntries(
        ['a', 'b', 'c'].map((name) => [name, { v1: { source: 'web', handle: `${name}/v1`, timestamp: 1 } }]),
      ),
    ),
  );
});
afterEach(async () => {
  await ws.cleanup();
});

async function usage(promise: Promise<unknown> | (() => unknown)): Promise<TemplatesError> {
  const error = await (typeof promise === 'function' ? Promise.resolve().then(promise) : promise).then(
    () => undefined,
    (e: unknown) => e as TemplatesError,
  );
  expect(error?.code).toBe('USAGE');
  return error!;
}

describe('fetchTemplates', () => {
  it('loads the repositories, opens the store and fetches every reference, in order, several at once', async () => {
    const results = await fetchTemplates(['r:c', 'r:a:v1', 'r:b'], { repos: [repo], store: ws.store, concurrency: 2 });
    expect(results.map((r) => [r.ref, r.status])).toEqual([
      ['r:c:v1', 'downloaded'],
      ['r:a:v1', 'downloaded'],
      ['r:b:v1', 'downloaded'],
    ]);
    expect(await digestOf(results[1]!.path)).toBe(await digestOf(join(ws.dir, 'a.raw')));
    const again = await fetchTemplates('r:a', { repos: [repo], store: await openStore({ root: ws.store }) });
    expect(again.map((r) => r.status)).toEqual(['cached']);
    expect((await ws.requests('/a/v1.xz')).length).toBe(1);
  });

  it('fetchTemplatesSettled goes on past a failure and gives each reference its outcome, in order', async () => {
    const heard: Array<[number, string, boolean]> = [];
    const outcomes = await fetchTemplatesSettled(['r:a', 'r:nope', 'r:b'], {
      repos: [repo],
      store: ws.store,
      onOutcome: (outcome, index) => heard.push([index, outcome.ref, outcome.ok]),
    });
    expect(outcomes.map((o) => [o.ref, o.ok])).toEqual([
      ['r:a', true],
      ['r:nope', false],
      ['r:b', true],
    ]);
    expect(outcomes[1]).toMatchObject({ ok: false, error: { code: 'TEMPLATE_NOT_FOUND' } });
    expect(outcomes[2]).toMatchObject({ ok: true, result: { ref: 'r:b:v1', status: 'downloaded' } });
    expect(heard.sort()).toEqual([
      [0, 'r:a', true],
      [1, 'r:nope', false],
      [2, 'r:b', true],
    ]);
    await usage(fetchTemplatesSettled(['r:a'], { concurrency: 0 }));
  });

  it('stops at the first failure, throws it with its code, and leaves nothing partial', async () => {
    const error = await fetchTemplates(['r:a', 'r:nope', 'r:b'], { repos: [repo], store: ws.store }).then(
      () => undefined,
      (e: unknown) => e as TemplatesError,
    );
    expect(error?.code).toBe('TEMPLATE_NOT_FOUND');
    expect((await ws.storeFiles()).filter((f) => f.startsWith('r:b'))).toEqual([]);
  });

  it('refuses wrong arguments with USAGE before any IO', async () => {
    await usage(fetchTemplates(42 as unknown as string[]));
    await usage(fetchTemplates(['r:a'], { repos: repo as unknown as string[] }));
    await usage(fetchTemplates(['r:a'], { repos: [repo], repositories: [] }));
    await usage(fetchTemplates(['r:a'], { repos: [repo], store: ws.store, concurrency: 0 }));
    expect(await ws.storeFiles()).toEqual([]);
  });
});

describe('RepositorySet and the checks at the boundary', () => {
  it('is what loadRepositories returns: by name, iterable, in the configured order', async () => {
    const set = await loadRepositories({ repos: [repo], context: undefined });
    expect(set).toBeInstanceOf(RepositorySet);
    expect(set.names()).toEqual(['r']);
    expect([...set].map((r) => r.name)).toEqual(['r']);
    expect(set.get('r')?.templates.size).toBe(3);
  });

  it('accepts an array of loaded repositories where a set is expected', async () => {
    const store = await openStore({ root: ws.store, env: env() });
    const result = await fetchTemplate('r:a', { store, repositories: [await loadRepository(repo)] });
    expect(result.ref).toBe('r:a:v1');
    expect(resolveReference('a', [await loadRepository(repo)]).ref).toBe('r:a:v1');
  });

  it('says what was expected when a caller passes the wrong thing', async () => {
    const store = await openStore({ root: ws.store });
    const set = await loadRepositories({ repos: [repo] });
    const destructured = (set as unknown as { repositories: undefined }).repositories;
    const error = await usage(fetchTemplate('r:a', { store, repositories: destructured as unknown as RepositorySet }));
    expect(error.message).toContain(
      'fetchTemplate: repositories must be the RepositorySet that loadRepositories() returns',
    );
    expect(error.fields.hint).toContain('loadRepositories');
    await usage(fetchTemplate('r:a', { store: { root: ws.store } as never, repositories: set }));
    await usage(fetchTemplate('r:a', { store, repositories: set, signal: 'soon' as never }));
    await usage(templatePath('r:a', { store: ws.store as never, repositories: set }));
    await usage(loadRepositories({ repos: 'one.json' as never }));
    await usage(openStore({ root: 7 as never }));
    await usage(() => resolveReference(undefined as never, set));
  });
});

describe('isTemplatesError across copies of the package', () => {
  it('recognises an error thrown by another copy (the built dist/ beside these sources), and checks its code', async () => {
    const other = (await import('../../dist/errors.js')) as unknown as typeof import('../../src/errors.js');
    const { isTemplatesError: ours, TemplatesError: OurError } = await import('../../src/errors.js');
    const foreign = new other.TemplatesError('NOT_STORED', 'x');
    expect(foreign).not.toBeInstanceOf(OurError);
    expect(ours(foreign)).toBe(true);
    expect(ours(foreign, 'NOT_STORED')).toBe(true);
    expect(ours(foreign, 'CORRUPT')).toBe(false);
    expect(other.isTemplatesError(new OurError('CORRUPT', 'y'), 'CORRUPT')).toBe(true);
    expect(ours(new Error('plain'))).toBe(false);
    expect(ours({ code: 'NOT_STORED' })).toBe(false);
  });
});
