// On-demand jobs through a real templates serve and nginx: lifecycle and events, result repository, qcow2, holds, auth, metrics.
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, withoutLockFiles, workspace, type Workspace } from '../helpers/env.js';
import { digestOf, makeDisk, publishImage } from '../helpers/images.js';
import { startServe, type Served } from '../helpers/serve.js';

let ws: Workspace;
let open: Served;
let authed: Served;
let anonymous: Served;
let openStore: string;
const sha1 = new Map<string, string>();

const basic = (user: string) => `Basic ${Buffer.from(`${user}:pw-${user}`).toString('base64')}`;
async function tokenOf(server: Served, user: string): Promise<string> {
  return (
    (await (await fetch(`${server.url}/auth_token`, { headers: { authorization: basic(user) } })).json()) as {
      auth_token: string;
    }
  ).auth_token;
}
async function api(
  server: Served,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; json: any }> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: response.status, json: await response.json().catch(() => undefined) };
}
async function until(server: Served, id: number, state: string, token?: string): Promise<any> {
  for (let i = 0; i < 300; i++) {
    const { json } = await api(server, 'GET', `/api/1/jobs/${id}`, undefined, token);
    if (json.state_name === state) return json;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`job ${id} never became ${state}`);
}

beforeAll(async () => {
  ws = await workspace();
  const versions: Record<string, unknown> = {};
  for (const name of ['a', 'b', 'c']) {
    const disk = await makeDisk(join(ws.dir, `${name}.raw`), { sizeMiB: 2, dataKiB: 128, label: name });
    sha1.set(name, (await publishImage(ws.www, `${name}/v1`, disk)).sha1);
    versions[name] = {
      versions: { v1: { source: 'web', handle: `${name}/v1`, timestamp: 1, hash: `sha1:${sha1.get(name)}` } },
    };
  }
  // Lies about its hash: every fetch of it fails with HASH_MISMATCH.
  versions.liar = { versions: { v1: { source: 'web', handle: 'a/v1', timestamp: 1, hash: `sha1:${'0'.repeat(40)}` } } };
  const repo = await ws.writeRepo('up', {
    name: 'up',
    sources: { web: { type: 'http', args: { baseurl: ws.baseurl } } },
    templates: versions,
  });
  // A second repository: a job spanning both has a result repository for each, under its name.
  const other = await ws.writeRepo('other', {
    name: 'other',
    sources: { web: { type: 'http', args: { baseurl: ws.baseurl } } },
    templates: { a: versions.a },
  });
  const htpasswd = join(ws.dir, 'htpasswd');
  await execa('htpasswd', ['-B', '-b', '-c', htpasswd, 'alice', 'pw-alice']);
  for (const user of ['bob', 'root']) await execa('htpasswd', ['-B', '-b', htpasswd, user, `pw-${user}`]);
  const config = join(ws.dir, 'config.json');
  await writeFile(config, JSON.stringify({ admins: ['root'] }));
  openStore = join(ws.dir, 'open');
  [open, authed, anonymous] = await Promise.all([
    startServe(
      ['--store', openStore, '--repo', repo, '--repo', other, '--sweep-interval', '1s', '--max-seconds-to-live', '1h'],
      { HOME: ws.dir },
    ),
    startServe(['--store', join(ws.dir, 'authed'), '--repo', repo, '--auth', htpasswd, '--config', config], {
      HOME: ws.dir,
    }),
    startServe(['--store', join(ws.dir, 'anon'), '--repo', repo, '--auth', htpasswd, '--anonymous', 'write'], {
      HOME: ws.dir,
    }),
  ]);
});

afterAll(async () => {
  await Promise.all([open?.stop(), authed?.stop(), anonymous?.stop()]);
  await ws?.cleanup();
});

describe('templates serve: /api/1/jobs', () => {
  it('takes a job with a qcow2 result through wait, fetching and done (as events), offers its result repository, and removes it at expiry', async () => {
    const created = await api(open, 'POST', '/api/1/jobs', {
      refs: ['up:a', 'up:b:v1'],
      seconds_to_live: 3,
      results: ['raw', 'qcow2'],
      label: 'lifecycle',
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      owner: 'anonymous',
      label: 'lifecycle',
      seconds_to_live: 3,
      results: ['raw', 'qcow2'],
      result_repofile: null,
    });
    expect(created.json.refs.map((r: any) => [r.version, r.digest])).toEqual([
      ['up:a:v1', `sha1:${sha1.get('a')}`],
      ['up:b:v1', `sha1:${sha1.get('b')}`],
    ]);
    const id = created.json.id as number;
    // The event stream: the state now, then each change, until done.
    const events = await fetch(`${open.url}/api/1/jobs/${id}/events`);
    expect(events.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const seen: string[] = [];
    const decoder = new TextDecoder();
    let text = '';
    for await (const chunk of events.body as unknown as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk);
      for (const block of text.split('\n\n').slice(0, -1))
        if (block.startsWith('event: state')) seen.push(JSON.parse(block.split('data: ')[1]!).state_name);
      text = text.slice(text.lastIndexOf('\n\n') + 2);
      if (seen.includes('done')) break;
    }
    expect(seen.at(-1)).toBe('done');
    expect(seen.every((state) => ['wait', 'fetching', 'done'].includes(state))).toBe(true);
    const done = (await api(open, 'GET', `/api/1/jobs/${id}`)).json;
    expect(done).toMatchObject({
      state: 2,
      state_name: 'done',
      result_repofile: `${open.url}/repos/jobs/${id}.json`,
      result_repofiles: { up: `${open.url}/repos/jobs/${id}/up.json` },
    });
    expect(Date.parse(done.time_to_expire) - Date.parse(done.time_done)).toBe(3000);
    // The result repository lists exactly the pinned versions, raw and qcow2; a neighbour fetches from it.
    const repo = (await (await fetch(done.result_repofile)).json()) as any;
    // Under the upstream repository's name: a neighbour's entries are the same whichever job brought them.
    expect(repo.name).toBe('up');
    const byName = (await (await fetch(done.result_repofiles.up)).json()) as any;
    expect([byName.name, Object.keys(byName.templates).sort()]).toEqual(['up', Object.keys(repo.templates).sort()]);
    expect(Object.keys(repo.templates).sort()).toEqual(['a', 'a-qcow2', 'b', 'b-qcow2']);
    expect(repo.templates['a-qcow2'].versions.v1).toMatchObject({
      source: 'cache-qcow2',
      format: 'qcow2',
      handle: 'up/a/v1/image.qcow2',
    });
    const qcow2 = join(ws.dir, 'a.qcow2');
    await writeFile(qcow2, Buffer.from(await (await fetch(`${open.url}/repos/up/a/v1/image.qcow2`)).arrayBuffer()));
    expect(JSON.parse((await execa('qemu-img', ['info', '--output=json', qcow2])).stdout).format).toBe('qcow2');
    const neighbour = join(ws.dir, 'neighbour');
    const fetched = await runCli(
      ['fetch', '--store', neighbour, '--repo', done.result_repofile, 'up:a', 'up:b-qcow2:v1'],
      { HOME: ws.dir },
    );
    expect(fetched.exitCode, fetched.stderr + fetched.stdout).toBe(0);
    expect(await digestOf(join(neighbour, 'up:a:v1'))).toBe(await digestOf(join(ws.dir, 'a.raw')));
    expect(await digestOf(join(neighbour, 'up:b-qcow2:v1'))).toBe(await digestOf(join(ws.dir, 'b.raw')));
    // Expiry: the sweeper (every second) removes the job and frees both entries.
    const removed = await until(open, id, 'removed');
    expect(removed.removed_by).toBe('expiry');
    for (let i = 0; i < 50 && withoutLockFiles(await readdir(openStore)).some((n) => n.startsWith('up:')); i++)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(withoutLockFiles(await readdir(openStore)).filter((n) => n.startsWith('up:'))).toEqual([]);
    expect((await api(open, 'GET', `/repos/jobs/${id}.json`)).status).toBe(409);
  });

  it('gives a job spanning two repositories a result repository for each, under its name; a neighbour fetches by upstream names', async () => {
    const { json: job } = await api(open, 'POST', '/api/1/jobs', { refs: ['up:c', 'other:a'], seconds_to_live: 600 });
    const done = await until(open, job.id, 'done');
    expect(Object.keys(done.result_repofiles).sort()).toEqual(['other', 'up']);
    const other = (await (await fetch(done.result_repofiles.other)).json()) as any;
    expect(other.name).toBe('other');
    expect(Object.keys(other.templates)).toEqual(['a']);
    expect(((await (await fetch(done.result_repofile)).json()) as any).name).toBe('up');
    const missing = await api(open, 'GET', `/repos/jobs/${job.id}/nope.json`);
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe('REPO_NOT_FOUND');
    const neighbour = join(ws.dir, 'neighbour-2');
    const fetched = await runCli(
      [
        'fetch',
        '--store',
        neighbour,
        '--repo',
        done.result_repofiles.other,
        '--repo',
        done.result_repofiles.up,
        'other:a',
        'up:c',
      ],
      { HOME: ws.dir },
    );
    expect(fetched.exitCode, fetched.stderr).toBe(0);
    expect(withoutLockFiles(await readdir(neighbour)).filter((n) => !n.includes('.'))).toEqual(
      expect.arrayContaining(['other:a:v1', 'up:c:v1']),
    );
    await api(open, 'DELETE', `/api/1/jobs/${job.id}`);
  });

  it("holds a done job's entries: prune and rm refuse them (ENTRY_IN_USE), info names the job; removing the job frees them", async () => {
    const { json: job } = await api(open, 'POST', '/api/1/jobs', { refs: ['up:c'], seconds_to_live: 3600 });
    await until(open, job.id, 'done');
    const rm = await runCli(['rm', '--store', openStore, '--json', 'up:c:v1'], { HOME: ws.dir });
    expect(rm.exitCode).toBe(10);
    expect(JSON.parse(rm.stdout.trim().split('\n').at(-1)!).error.code).toBe('ENTRY_IN_USE');
    const info = await runCli(['info', '--store', openStore, 'up:c:v1'], { HOME: ws.dir });
    expect(info.stdout).toContain(`job ${job.id} (templates serve)`);
    expect((await api(open, 'DELETE', `/api/1/jobs/${job.id}`)).json).toMatchObject({
      state_name: 'removed',
      removed_by: 'anonymous',
    });
    expect(withoutLockFiles(await readdir(openStore)).filter((n) => n.startsWith('up:c'))).toEqual([]);
  });

  it('refuses bad submissions with 400 and a code, queueing nothing; lists with filters and pages', async () => {
    const before = (await api(open, 'GET', '/api/1/jobs')).json.meta.total as number;
    for (const [body, code] of [
      [{ refs: ['up:nope'], seconds_to_live: 60 }, 'TEMPLATE_NOT_FOUND'],
      [{ refs: ['no such'], seconds_to_live: 60 }, 'BAD_REFERENCE'],
      [{ refs: [], seconds_to_live: 60 }, 'USAGE'],
      [{ refs: Array.from({ length: 51 }, () => 'up:a'), seconds_to_live: 60 }, 'USAGE'],
      [{ refs: ['up:a'], seconds_to_live: 7200 }, 'USAGE'],
      [{ refs: ['up:a'], results: ['qcow2'] }, 'USAGE'],
      ['not an object', 'USAGE'],
      [{ refs: 'up:a', seconds_to_live: 60 }, 'USAGE'],
      [{ refs: ['up:a'], seconds_to_live: '60' }, 'USAGE'],
      [{ seconds_to_live: 60 }, 'USAGE'],
    ] as const) {
      const { status, json } = await api(open, 'POST', '/api/1/jobs', body);
      expect([status, json.error.code], JSON.stringify(body)).toEqual([400, code]);
    }
    expect((await api(open, 'GET', '/api/1/jobs')).json.meta.total).toBe(before);
    const ids: number[] = [];
    for (let i = 0; i < 3; i++)
      ids.push(
        (await api(open, 'POST', '/api/1/jobs', { refs: ['up:a'], seconds_to_live: 600, label: 'paged' })).json.id,
      );
    const page = (await api(open, 'GET', '/api/1/jobs?label=paged&per_page=2&order_by=id')).json;
    expect(page.meta).toMatchObject({ page: 1, pages: 2, per_page: 2, total: 3, prev: null });
    expect(page.items.map((j: any) => j.id)).toEqual(ids.slice(0, 2));
    const next = (await (await fetch(page.meta.next)).json()) as any;
    expect(next.items.map((j: any) => j.id)).toEqual([ids[2]]);
    for (const id of ids) await until(open, id, 'done');
    expect((await api(open, 'GET', '/api/1/jobs?label=paged&state=done')).json.meta.total).toBe(3);
    expect((await api(open, 'GET', '/api/1/jobs?label=paged&state=2')).json.meta.total).toBe(3);
    expect((await api(open, 'GET', '/api/1/jobs?state=sleeping')).status).toBe(400);
    expect((await api(open, 'GET', '/api/1/jobs/999999')).json.error.code).toBe('JOB_NOT_FOUND');
    const put = await fetch(`${open.url}/api/1/jobs/${ids[0]}`, { method: 'PUT' });
    expect([put.status, put.headers.get('allow')]).toEqual([405, 'GET, HEAD, PATCH, DELETE']);
    for (const id of ids) await api(open, 'DELETE', `/api/1/jobs/${id}`);
  });

  it('owns jobs by token: another user may not renew or remove them (403), an admin may; no token is 401 unless --anonymous write', async () => {
    const [alice, bob, root] = await Promise.all([
      tokenOf(authed, 'alice'),
      tokenOf(authed, 'bob'),
      tokenOf(authed, 'root'),
    ]);
    expect((await api(authed, 'POST', '/api/1/jobs', { refs: ['up:a'], seconds_to_live: 60 })).status).toBe(401);
    const { status, json: job } = await api(
      authed,
      'POST',
      '/api/1/jobs',
      { refs: ['up:a'], seconds_to_live: 60 },
      alice,
    );
    expect([status, job.owner]).toEqual([201, 'alice']);
    await until(authed, job.id, 'done', alice);
    expect((await api(authed, 'PATCH', `/api/1/jobs/${job.id}`, { seconds_to_live: 600 }, bob)).json.error.code).toBe(
      'JOB_FORBIDDEN',
    );
    const refused = await api(authed, 'DELETE', `/api/1/jobs/${job.id}`, undefined, bob);
    expect([refused.status, refused.json.error.code]).toEqual([403, 'JOB_FORBIDDEN']);
    const renewed = await api(authed, 'PATCH', `/api/1/jobs/${job.id}`, { seconds_to_live: 600 }, alice);
    expect(Date.parse(renewed.json.time_to_expire) - Date.now()).toBeGreaterThan(590_000);
    const removed = await api(authed, 'DELETE', `/api/1/jobs/${job.id}`, undefined, root);
    expect([removed.status, removed.json.state_name, removed.json.removed_by]).toEqual([202, 'removed', 'root']);
    const anon = await api(anonymous, 'POST', '/api/1/jobs', { refs: ['up:b'], seconds_to_live: 60 });
    expect([anon.status, anon.json.owner]).toEqual([201, 'anonymous']);
  });

  it('exports job metrics that promtool accepts', async () => {
    const text = await (await fetch(`${open.url}/metrics`)).text();
    expect(text).toMatch(/^templates_jobs\{state="removed"\} [1-9]/m);
    expect(text).toMatch(/^templates_job_queue_wait_seconds_count [1-9]/m);
    expect(text).toMatch(/^templates_job_fetch_duration_seconds_count\{state="done"\} [1-9]/m);
    const check = await execa('promtool', ['check', 'metrics'], { input: text, reject: false });
    expect(check.exitCode, check.stdout + check.stderr).toBe(0);
  });

  it('drives jobs from the CLI: create --wait prints the result repository (exit 0); a failing job exits with its code', async () => {
    const env = { HOME: ws.dir, TEMPLATES_SERVER: open.url };
    const created = await runCli(['job', 'create', '--ttl', '10m', '--wait', 'up:b'], env);
    expect(created.exitCode, created.stderr).toBe(0);
    expect(created.stdout.trim()).toMatch(new RegExp(`^${open.url}/repos/jobs/\\d+\\.json$`));
    const id = /(\d+)\.json/.exec(created.stdout)![1]!;
    const shown = await runCli(['job', 'show', '--json', id], env);
    expect(JSON.parse(shown.stdout)).toMatchObject({ id: Number(id), state_name: 'done' });
    const listed = await runCli(['job', 'list', '--state', 'done'], env);
    expect(listed.stdout).toContain('up:b:v1');
    const failing = await runCli(['job', 'create', '--wait', '--json', 'up:liar'], env);
    expect(failing.exitCode).toBe(5);
    expect(JSON.parse(failing.stdout.trim().split('\n').at(-1)!).error.code).toBe('HASH_MISMATCH');
    expect((await runCli(['job', 'rm', id], env)).exitCode).toBe(0);
    expect((await runCli(['job', 'show', '999999'], env)).exitCode).toBe(3);
    expect((await runCli(['job', 'show', '1'], { HOME: ws.dir })).exitCode).toBe(2);
  });
});
