// createJobClient against a real templates serve: events, the polling fallback when events cannot be had, timeouts and errors.
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJobClient } from '../../src/api/serve.js';
import { workspace, type Workspace } from '../helpers/env.js';
import { makeDisk, publishImage } from '../helpers/images.js';
import { startServe, type Served } from '../helpers/serve.js';

let ws: Workspace;
let server: Served;

beforeAll(async () => {
  ws = await workspace();
  const { sha1 } = await publishImage(
    ws.www,
    'a/v1',
    await makeDisk(join(ws.dir, 'a.raw'), { sizeMiB: 2, dataKiB: 64 }),
  );
  const slowurl = ws.baseurl.replace(/\/(ws-[^/]+)\/$/, '/slow/$1/');
  const { sha1: bigSha1 } = await publishImage(
    ws.www,
    'big/v1',
    await makeDisk(join(ws.dir, 'big.raw'), { sizeMiB: 48, dataKiB: 24 * 1024 }),
  );
  const repo = await ws.writeRepo('up', {
    name: 'up',
    sources: {
      web: { type: 'http', args: { baseurl: ws.baseurl } },
      slow: { type: 'http', args: { baseurl: slowurl } },
    },
    templates: {
      a: { versions: { v1: { source: 'web', handle: 'a/v1', timestamp: 1, hash: `sha1:${sha1}` } } },
      big: { versions: { v1: { source: 'slow', handle: 'big/v1', timestamp: 1, hash: `sha1:${bigSha1}` } } },
    },
  });
  server = await startServe(['--store', ws.store, '--repo', repo], { HOME: ws.dir });
});

afterAll(async () => {
  await server?.stop();
  await ws?.cleanup();
});

describe('createJobClient', () => {
  it('waits by polling (growing delays) when the event stream is refused, and by events otherwise', async () => {
    const asked: string[] = [];
    const noEvents: typeof fetch = async (input, init) => {
      const url = String(input);
      asked.push(new URL(url).pathname);
      if (url.endsWith('/events')) return new Response('no streams here', { status: 502 });
      return fetch(input, init);
    };
    const polling = createJobClient({
      url: server.url,
      fetch: noEvents,
      poll: { firstMs: 50, factor: 1.5, maxMs: 200 },
    });
    const job = await polling.create({ refs: ['up:a'], secondsToLive: 60, label: 'poll' });
    const done = await polling.wait(job.id, { timeout: 30_000 });
    expect(done).toMatchObject({ id: job.id, state_name: 'done' });
    expect(asked.filter((path) => path === `/api/1/jobs/${job.id}`).length).toBeGreaterThanOrEqual(1);
    const updates: string[] = [];
    const events = createJobClient({ url: server.url });
    const second = await events.create({ refs: ['up:a'], secondsToLive: 60 });
    expect((await events.wait(second.id, { onUpdate: (j) => updates.push(j.state_name) })).state_name).toBe('done');
    expect(updates.at(-1)).toBe('done');
  });

  // big takes about 12 s through nginx's 2 MB/s /slow/ location: it is still fetching when it is cancelled.
  it('gives up waiting with JOB_TIMEOUT (the job goes on), and cancelling it makes wait fail with ABORTED', async () => {
    const client = createJobClient({ url: server.url });
    const job = await client.create({ refs: ['up:big'], secondsToLive: 60 });
    await expect(client.wait(job.id, { timeout: 300 })).rejects.toMatchObject({ code: 'JOB_TIMEOUT' });
    // Handled from the start: the event stream can end the wait before remove() itself has answered.
    const waiting = client.wait(job.id, { timeout: 30_000 }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect((await client.remove(job.id)).state_name).toBe('failed');
    expect(await waiting).toMatchObject({ code: 'ABORTED' });
    const list = await client.list({ state: 'failed' });
    expect(list.items.map((j) => j.id)).toContain(job.id);
  });

  // Fault injection: the server "restarts" (connections refused) for the first polls, then answers again.
  it('waits through a server that cannot be reached for a while (a restart), and gives up after unreachableMs', async () => {
    let refused = 0;
    const restarting: typeof fetch = async (input, init) => {
      const url = String(input);
      if (url.endsWith('/events')) throw new TypeError('fetch failed', { cause: new Error('ECONNRESET') });
      if (init?.method === 'GET' && refused < 3) {
        refused += 1;
        throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED') });
      }
      return fetch(input, init);
    };
    const client = createJobClient({ url: server.url, fetch: restarting, poll: { firstMs: 20, maxMs: 50 } });
    const job = await client.create({ refs: ['up:a'], secondsToLive: 60, label: 'restart' });
    expect(await client.wait(job.id, { timeout: 30_000 })).toMatchObject({ id: job.id, state_name: 'done' });
    expect(refused).toBe(3);
    const down: typeof fetch = async () => {
      throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED') });
    };
    const gone = createJobClient({
      url: server.url,
      fetch: down,
      poll: { firstMs: 20, maxMs: 50, unreachableMs: 200 },
    });
    await expect(gone.wait(job.id, { timeout: 30_000 })).rejects.toMatchObject({ code: 'SOURCE_UNREACHABLE' });
  });

  // Node's fetch never settles when a server accepts and closes at once (a TCP proxy in front of a dead server does).
  it('bounds a request that a server accepts and drops with SOURCE_UNREACHABLE (headersTimeoutMs)', async () => {
    const dropper = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => dropper.listen(0, '127.0.0.1', resolve));
    const { port } = dropper.address() as AddressInfo;
    try {
      const client = createJobClient({ url: `http://127.0.0.1:${port}`, headersTimeoutMs: 300 });
      await expect(client.get(1)).rejects.toMatchObject({ code: 'SOURCE_UNREACHABLE' });
      await expect(client.create({ refs: ['up:a'] })).rejects.toMatchObject({ code: 'SOURCE_UNREACHABLE' });
    } finally {
      dropper.close();
    }
  });

  it('maps refusals and unreachable servers to codes', async () => {
    const client = createJobClient({ url: server.url });
    await expect(client.get(999_999)).rejects.toMatchObject({ code: 'JOB_NOT_FOUND' });
    await expect(client.create({ refs: ['up:nope'] })).rejects.toMatchObject({ code: 'TEMPLATE_NOT_FOUND' });
    await expect(createJobClient({ url: 'http://127.0.0.1:9' }).get(1)).rejects.toMatchObject({
      code: 'SOURCE_UNREACHABLE',
    });
  });
});
