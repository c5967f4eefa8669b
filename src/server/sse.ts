// Server-Sent Events: take over a reply, send named events with ids, a heartbeat, and end with either side.
import type { FastifyReply, FastifyRequest } from 'fastify';

/** A comment line this often keeps proxies from closing a quiet stream. */
const HEARTBEAT_MS = 15_000;

export interface EventStream {
  send(event: string, data: unknown): void;
}

/**
 * Opens the stream; `onEnd` runs once when the client goes, the socket fails or `closing` aborts (server shutdown,
 * so it does not wait for streams).
 */
export function openEventStream(
  request: FastifyRequest,
  reply: FastifyReply,
  closing: AbortSignal,
  onEnd: () => void,
): EventStream {
  reply.hijack();
  const out = reply.raw;
  out.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no',
    connection: 'keep-alive',
  });
  let counter = 0;
  const heartbeat = setInterval(() => out.write(': keep-alive\n\n'), HEARTBEAT_MS);
  heartbeat.unref();
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    closing.removeEventListener('abort', end);
    onEnd();
    if (!out.writableEnded) out.end();
  };
  closing.addEventListener('abort', end, { once: true });
  request.raw.once('close', end);
  out.once('error', end);
  return {
    send(event, data) {
      if (!ended) out.write(`event: ${event}\nid: ${++counter}\ndata: ${JSON.stringify(data)}\n\n`);
    },
  };
}
