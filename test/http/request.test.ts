// The HTTP client's exchange over node:http: redirects (and Authorization across origins), idle timeouts, abort.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpClient } from '../../src/http/client.js';

/** A server on 127.0.0.1 answering by path, recording what each request carried. */
async function serve(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const seen: Array<{ port: string; path: string; authorization?: string; method: string }> = [];
let origin: { server: Server; url: string };
let other: { server: Server; url: string };

beforeAll(async () => {
  other = await serve((req, res) => {
    seen.push({
      port: other.url.split(':')[2]!,
      path: req.url!,
      method: req.method!,
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    res.end('elsewhere');
  });
  origin = await serve((req, res) => {
    seen.push({
      port: origin.url.split(':')[2]!,
      path: req.url!,
      method: req.method!,
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    const loop = /^\/loop\/(\d+)$/.exec(req.url!);
    if (req.url === '/same') return res.writeHead(302, { location: '/final' }).end();
    if (req.url === '/final') return res.end('final');
    if (req.url === '/away') return res.writeHead(307, { location: `${other.url}/there` }).end();
    if (req.url === '/file') return res.writeHead(302, { location: 'file:///etc/passwd' }).end();
    if (loop) return res.writeHead(302, { location: `/loop/${Number(loop[1]) + 1}` }).end();
    if (req.url === '/stall-body') {
      res.writeHead(200, { 'content-length': '1000' });
      return res.write('x'.repeat(10));
    }
    if (req.url === '/stall-headers') return;
    res.writeHead(404).end();
  });
});
afterAll(async () => {
  for (const { server } of [origin, other]) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

const client = (idleTimeoutMs = 10_000) =>
  createHttpClient({
    userAgent: 'test',
    connectTimeoutMs: 5000,
    idleTimeoutMs,
    env: {},
    retries: 0,
    credentials: {
      forUrl: (url: URL) => (url.origin === origin.url ? 'Bearer secret' : undefined),
      onChallenge: () => undefined,
    },
  });

async function text(body: NodeJS.ReadableStream): Promise<string> {
  let all = '';
  for await (const chunk of body) all += String(chunk);
  return all;
}

describe('redirects', () => {
  it('follows one on the same origin with the credentials, and reports the URL that answered', async () => {
    seen.length = 0;
    const response = await client().get(`${origin.url}/same`);
    expect(response.status).toBe(200);
    expect(response.url).toBe(`${origin.url}/final`);
    expect(await text(response.body)).toBe('final');
    expect(seen.map((r) => [r.path, r.authorization])).toEqual([
      ['/same', 'Bearer secret'],
      ['/final', 'Bearer secret'],
    ]);
  });

  it('follows one to another origin without sending it the credentials', async () => {
    seen.length = 0;
    const response = await client().get(`${origin.url}/away`);
    expect(await text(response.body)).toBe('elsewhere');
    expect(response.url).toBe(`${other.url}/there`);
    expect(seen).toEqual([
      { port: origin.url.split(':')[2], path: '/away', method: 'GET', authorization: 'Bearer secret' },
      { port: other.url.split(':')[2], path: '/there', method: 'GET' },
    ]);
  });

  it('answers with the redirect itself when it leads to another scheme, or past 10 hops', async () => {
    const toFile = await client().get(`${origin.url}/file`);
    expect(toFile.status).toBe(302);
    toFile.body.destroy();
    seen.length = 0;
    const looping = await client().get(`${origin.url}/loop/0`);
    expect(looping.status).toBe(302);
    looping.body.destroy();
    expect(seen).toHaveLength(11);
  });

  it('is not followed by send (registries authenticate and redirect themselves)', async () => {
    const response = await client().send(`${origin.url}/same`, { method: 'GET' });
    expect(response.status).toBe(302);
    response.body.destroy();
  });
});

describe('timeouts and abort', () => {
  it('fails with SOURCE_UNREACHABLE when no answer comes within the idle timeout', async () => {
    const error = await client(300)
      .get(`${origin.url}/stall-headers`)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SOURCE_UNREACHABLE' });
    expect((error as Error).message).toContain('timed out (socket)');
  });

  it('fails the body with ETIMEDOUT when it stops moving', async () => {
    const response = await client(300).get(`${origin.url}/stall-body`);
    expect(response.size).toBe(1000);
    await expect(text(response.body)).rejects.toMatchObject({ code: 'ETIMEDOUT', event: 'socket' });
  });

  it('fails with ABORTED when its signal aborts while it waits', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await expect(client().get(`${origin.url}/stall-headers`, { signal: controller.signal })).rejects.toMatchObject({
      code: 'ABORTED',
    });
  });
});
