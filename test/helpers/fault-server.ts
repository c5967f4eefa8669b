// A fault-injection HTTP server on 127.0.0.1 for error paths only: each path names the misbehaviour it answers with.
import { readFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';

export interface FaultServer {
  /** Base URL ending in `/`; a request for `<base><fault>/<handle>` misbehaves as `fault` says, serving `files[handle]`. */
  base: string;
  /** Requests seen so far, per path. */
  hits: Map<string, number>;
  /** In order: `asked <path>` when a request arrived, `answered <path>` when a sidecar's answer was sent. */
  events: string[];
  close(): Promise<void>;
}

/**
 * Paths not in `files` get 404; `.hash` and `.metadata` files are always served well. Faults (the first path segment):
 * - `ok`: a normal 200.
 * - `reset`: headers and half the body, then a TCP reset.
 * - `stall`: headers and half the body, then silence (the socket stays open).
 * - `short`: Content-Length twice the body, then the connection closes.
 * - `long`: Content-Length half the body, then the whole body.
 * - `busy503`, `busy429`: that status (with `Retry-After: 1`) on the first request, then a normal 200.
 * - `down502`: 502 every time.
 * - `slowsidecars`: a normal 200, but each `.hash` and `.metadata` found is answered 300 ms late.
 */
export async function startFaultServer(files: Record<string, string>): Promise<FaultServer> {
  const hits = new Map<string, number>();
  const events: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let head = '';
    socket.on('data', (chunk) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const path = decodeURIComponent(head.split(' ')[1] ?? '/');
      head = '';
      const count = (hits.get(path) ?? 0) + 1;
      hits.set(path, count);
      events.push(`asked ${path}`);
      void answer(socket, path, count);
    });
  });
  const answer = async (socket: Socket, path: string, count: number) => {
    const [, fault = '', ...rest] = path.split('/');
    const file = files[rest.join('/')];
    const status = (code: number, extra = '') =>
      socket.end(`HTTP/1.1 ${code} X\r\nContent-Length: 0\r\nConnection: close\r\n${extra}\r\n`);
    if (!file) return status(404);
    const body = await readFile(file);
    // Sidecars (.hash, .metadata) are always served well: the faults are about the image.
    if (/\.(hash|metadata)$/.test(path)) {
      if (fault === 'slowsidecars') await new Promise((resolve) => setTimeout(resolve, 300));
      events.push(`answered ${path}`);
      return socket.end(
        Buffer.concat([
          Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`),
          body,
        ]),
      );
    }
    if (fault === 'down502') return status(502);
    if ((fault === 'busy503' || fault === 'busy429') && count === 1)
      return status(fault === 'busy503' ? 503 : 429, 'Retry-After: 1\r\n');
    const half = body.subarray(0, Math.floor(body.length / 2));
    const headers = (length: number) =>
      `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n`;
    switch (fault) {
      case 'reset':
        socket.write(headers(body.length));
        socket.write(half, () => setTimeout(() => socket.resetAndDestroy(), 50));
        return;
      case 'stall':
        socket.write(headers(body.length));
        socket.write(half);
        return;
      case 'short':
        socket.write(headers(body.length * 2));
        socket.end(body);
        return;
      case 'long':
        socket.write(headers(half.length));
        socket.end(body);
        return;
      default:
        socket.write(headers(body.length));
        socket.end(body);
    }
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('fault server has no port');
  return {
    base: `http://127.0.0.1:${address.port}/`,
    hits,
    events,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
