// HTTP abuse of serve: idle connections by the hundred, slowloris, oversized headers; it keeps serving, memory bounded.
import { readFile } from 'node:fs/promises';
import { type Socket, connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workspace, type Workspace } from '../helpers/env.js';
import { startServe, type Served } from '../helpers/serve.js';

let ws: Workspace;
let server: Served;
let port: number;
const sockets: Socket[] = [];

/** The server process's resident memory, KiB. */
async function rssKiB(): Promise<number> {
  const status = await readFile(`/proc/${server.process.pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)![1]);
}

/** A GET of /healthz and how long it took. */
async function healthy(): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  const response = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(5000) });
  return { status: response.status, ms: performance.now() - started };
}

const open = () =>
  new Promise<Socket>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.on('error', reject);
    sockets.push(socket);
  });

beforeAll(async () => {
  ws = await workspace();
  server = await startServe(['--store', join(ws.dir, 'cache')], { HOME: ws.dir });
  port = Number(new URL(server.url).port);
});
afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await server?.stop();
  await ws.cleanup();
});

describe('serve under abuse', () => {
  it('keeps answering others while 500 connections sit idle and 50 send their headers a byte at a time', async () => {
    const before = await rssKiB();
    const idle = await Promise.all(Array.from({ length: 500 }, open));
    const slow = await Promise.all(Array.from({ length: 50 }, open));
    const closed = slow.map((socket) => new Promise<void>((resolve) => socket.once('close', () => resolve())));
    const header = 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ';
    let sent = 0;
    const drip = setInterval(() => {
      for (const socket of slow) if (!socket.destroyed) socket.write(header[sent % header.length]!);
      sent++;
    }, 500);
    try {
      for (let i = 0; i < 5; i++) {
        const answer = await healthy();
        expect(answer.status).toBe(200);
        expect(answer.ms).toBeLessThan(1000);
      }
      // Headers must arrive within 10 s: the slow ones are cut, the others were never held up.
      await Promise.all(closed);
      expect(slow.every((socket) => socket.destroyed || socket.readableEnded)).toBe(true);
    } finally {
      clearInterval(drip);
    }
    expect((await healthy()).status).toBe(200);
    expect(idle.length).toBe(500);
    // 550 connections cost little: well under 64 MiB more than before.
    expect((await rssKiB()) - before).toBeLessThan(64 * 1024);
  }, 30_000);

  it('refuses oversized headers with 431 and bad request lines with 400, and goes on serving', async () => {
    const raw = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port }, () => socket.end(text));
        let answer = '';
        socket.on('data', (chunk) => {
          answer += chunk.toString('latin1');
        });
        socket.on('close', () => resolve(answer));
        // The server may answer and close before the whole oversized request is written: the answer is what counts.
        socket.on('error', (error) => (answer ? resolve(answer) : reject(error)));
      });
    expect(await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`)).toMatch(
      /^HTTP\/1\.1 431/,
    );
    expect(await raw('GARBAGE\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw('GET /repos/%00 HTTP/1.1\r\nHost: x\r\n\r\n')).toMatch(/^HTTP\/1\.1 (400|404)/);
    expect((await healthy()).status).toBe(200);
  });
});
