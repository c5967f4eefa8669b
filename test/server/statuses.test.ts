// One table of the statuses templates serve answers with, over real HTTP to an in-process server: each with its code.
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/api/serve.js';
import { createContext, loadRepositories, openStore } from '../../src/index.js';
import { TOOL_PATH, makeDisk, publishImage } from '../helpers/images.js';
import { lagoRepo, workspace, type Workspace } from '../helpers/env.js';

let ws: Workspace;
let server: RunningServer;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  ws = await workspace();
  await publishImage(ws.www, 'a/v1', await makeDisk(join(ws.dir, 'a.raw'), { sizeMiB: 8, dataKiB: 256 }));
  const repo = lagoRepo('up', ws, {
    a: { v1: { source: 'web', handle: 'a/v1', timestamp: 1 } },
    dead: { v1: { source: 'gone', handle: 'dead/v1', timestamp: 1 } },
  });
  (repo.sources as Record<string, unknown>).gone = { type: 'http', args: { baseurl: 'http://127.0.0.1:9/' } };
  const repoFile = await ws.writeRepo('up', repo);
  const htpasswd = join(ws.dir, 'htpasswd');
  await execa('htpasswd', ['-B', '-b', '-c', htpasswd, 'alice', 'sesame'], { env: { PATH: TOOL_PATH } });
  await execa('htpasswd', ['-B', '-b', htpasswd, 'bob', 'secret'], { env: { PATH: TOOL_PATH } });
  const context = createContext({ env: { PATH: TOOL_PATH, HOME: ws.dir }, retries: 0 });
  const store = await openStore({ root: join(ws.dir, 'cache'), keepCompressed: true });
  server = await startServer({
    store,
    context,
    port: 0,
    htpasswd,
    // Never ready for want of space: /readyz says 503.
    minFreeBytes: Number.MAX_SAFE_INTEGER,
    loadRepositories: (signal) => loadRepositories({ context, store, signal, repos: [repoFile] }),
  });
  for (const [user, password] of [
    ['alice', 'sesame'],
    ['bob', 'secret'],
  ]) {
    const response = await fetch(`${server.url}/auth_token`, {
      headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` },
    });
    tokens[user!] = ((await response.json()) as { auth_token: string }).auth_token;
  }
});
afterAll(async () => {
  await server?.close(1000);
  await ws?.cleanup();
});

async function call(method: string, path: string, options: { user?: string; body?: unknown; raw?: string } = {}) {
  const headers: Record<string, string> = {};
  if (options.user) headers.authorization = `Bearer ${tokens[options.user]}`;
  if (options.body !== undefined || options.raw !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers,
    ...(options.raw !== undefined
      ? { body: options.raw }
      : options.body !== undefined
        ? { body: JSON.stringify(options.body) }
        : {}),
  });
  const text = await response.text();
  const json = text.startsWith('{') ? (JSON.parse(text) as { error?: { code: string } }) : {};
  return [response.status, json.error?.code];
}

describe('templates serve: statuses', () => {
  it('answers each kind of failure with its status and code', async () => {
    // A job of alice's that cannot be done: its template's upstream is dead.
    const created = await fetch(`${server.url}/api/1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.alice}`, 'content-type': 'application/json' },
      body: JSON.stringify({ refs: ['up:dead'], seconds_to_live: 600 }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: number };
    const cases: Array<[string, Promise<unknown[]>, unknown[]]> = [
      ['a bad submission', call('POST', '/api/1/jobs', { user: 'alice', body: { refs: 'up:a' } }), [400, 'USAGE']],
      ['no token', call('GET', '/api/1/jobs'), [401, 'UNAUTHORIZED']],
      ["another user's job", call('DELETE', `/api/1/jobs/${id}`, { user: 'bob' }), [403, 'JOB_FORBIDDEN']],
      ['an unknown job', call('GET', '/api/1/jobs/99999', { user: 'alice' }), [404, 'JOB_NOT_FOUND']],
      ['an unknown path', call('GET', '/nothing', { user: 'alice' }), [404, 'NOT_FOUND']],
      ['another method', call('DELETE', '/healthz'), [405, 'METHOD_NOT_ALLOWED']],
      [
        'a body over 64 KiB',
        call('POST', '/api/1/jobs', { user: 'alice', raw: `"${'x'.repeat(70_000)}"` }),
        [413, 'BODY_TOO_LARGE'],
      ],
      [
        'an upstream that is down',
        call('GET', '/repos/up/dead/v1/image.hash', { user: 'alice' }),
        [502, 'SOURCE_UNREACHABLE'],
      ],
    ];
    for (const [what, answer, expected] of cases) expect(await answer, what).toEqual(expected);
    // Waiting, fetching or failed: a job that is not done has no result repository.
    expect(await call('GET', `/repos/jobs/${id}.json`, { user: 'alice' })).toEqual([409, 'JOB_CONFLICT']);
    const ready = await fetch(`${server.url}/readyz`);
    expect([ready.status, ((await ready.json()) as { status: string }).status]).toEqual([503, 'not ready']);
  });
});
