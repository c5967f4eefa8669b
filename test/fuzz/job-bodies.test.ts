// Job bodies fuzzed over real HTTP to an in-process serve: every answer is 2xx or a 4xx with an error code, never a 5xx.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/api/serve.js';
import { TemplatesError } from '../../src/errors.js';
import { createContext, loadRepositories, openStore } from '../../src/index.js';
import { checkParser } from './harness.js';

let dir: string;
let server: RunningServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'templates-fuzz-jobs-'));
  // A repository whose one source is an empty directory: accepted jobs fail at once, nothing is downloaded.
  const repo = join(dir, 'up.json');
  await writeFile(
    repo,
    JSON.stringify({
      name: 'up',
      sources: { here: { type: 'file', args: { root: join(dir, 'empty') } } },
      templates: { a: { versions: { v1: { source: 'here', handle: 'a/v1', timestamp: 1 } } } },
    }),
  );
  const context = createContext({ env: { PATH: process.env.PATH ?? '', HOME: dir }, retries: 0 });
  const store = await openStore({ root: join(dir, 'cache'), keepCompressed: true });
  server = await startServer({
    store,
    context,
    port: 0,
    anonymous: 'write',
    loadRepositories: (signal) => loadRepositories({ context, store, signal, repos: [repo] }),
  });
});
afterAll(async () => {
  await server?.close(1000);
  await rm(dir, { recursive: true, force: true });
});

const ref = fc.oneof(
  fc.constantFrom('up:a:v1', 'up:a', 'up:nope:v1', 'nope:a:v1', 'up:a:v1:extra', '', ':::', 'up:a:v2'),
  fc.string({ maxLength: 40 }),
);
const json = fc.jsonValue({ maxDepth: 3 });
const body = fc.oneof(
  json.map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 300 }),
  fc
    .record(
      {
        refs: fc.oneof(fc.array(ref, { maxLength: 5 }), json),
        seconds_to_live: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -1, 2 ** 53, 60, 86_400), json),
        results: fc.oneof(fc.array(fc.constantFrom('raw', 'qcow2', 'oci', 'xz', ''), { maxLength: 3 }), json),
        label: fc.oneof(fc.string({ maxLength: 80 }), fc.constant(null), json),
      },
      { requiredKeys: [] },
    )
    .map((v) => JSON.stringify(v)),
);

/** An answer the property accepts: 2xx, or 4xx with `{error: {code}}`; anything else is a failure (not a TemplatesError). */
async function send(method: string, path: string, text: string): Promise<void> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: text,
  });
  const answer = await response.text();
  if (response.status >= 500 || response.status < 200)
    throw new Error(`${method} ${path} ${text}: ${response.status} ${answer}`);
  if (response.status >= 400) {
    const code = (JSON.parse(answer) as { error?: { code?: unknown } }).error?.code;
    if (typeof code !== 'string')
      throw new Error(`${method} ${path}: ${response.status} without an error code: ${answer}`);
    throw new TemplatesError('USAGE', `refused: ${code}`);
  }
}

describe('fuzz: job bodies', () => {
  it('POST /api/1/jobs answers every body with 2xx or a coded 4xx', () =>
    checkParser('job-bodies', body, (text) => send('POST', '/api/1/jobs', text), { runs: 400 }));

  it('PATCH /api/1/jobs/ID answers every body with 2xx or a coded 4xx', () =>
    checkParser(
      'job-renewals',
      fc.tuple(fc.constantFrom('1', '2', '999', 'x', '-1'), body),
      ([id, text]) => send('PATCH', `/api/1/jobs/${id}`, text),
      { runs: 300 },
    ));
});
