// One HTTP exchange over node:http(s): connect and idle timeouts, abort, a body, and http(s)-only redirects.
import type { Agent, ClientRequest, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';

export interface ExchangeOptions {
  method: string;
  headers: OutgoingHttpHeaders;
  /** Authorization, sent only to the origin of the first URL (never along a redirect to another one). */
  authorization?: string;
  body?: Buffer | Readable;
  /** Follow 301/302/303/307/308 to http(s) URLs (GET and HEAD only). */
  redirects: boolean;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** For a proxy; the default agent (keep-alive) otherwise. */
  agent?: (url: URL) => Promise<Agent | undefined>;
  signal?: AbortSignal;
}

export interface Exchanged {
  response: IncomingMessage;
  /** The URL that answered, after redirects. */
  url: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;

/** An error shaped like a timeout of a socket: `code` ETIMEDOUT, and which wait ran out. */
function timedOut(event: 'connect' | 'socket'): Error {
  return Object.assign(new Error(`timed out (${event})`), { code: 'ETIMEDOUT', event });
}

/** The location to follow, or undefined when the response is final. */
function redirectTarget(response: IncomingMessage, url: URL): URL | undefined {
  if (!REDIRECTS.has(response.statusCode ?? 0) || !response.headers.location) return undefined;
  try {
    const target = new URL(response.headers.location, url);
    return target.protocol === 'http:' || target.protocol === 'https:' ? target : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Sends one request and resolves with the response once its headers arrived (whatever the status). No time limit on
 * the whole: the connect timeout covers opening the connection, the idle one every wait for a byte after it, the
 * body's included (the body then fails with ETIMEDOUT).
 */
async function once(url: URL, options: ExchangeOptions, authorization: string | undefined): Promise<IncomingMessage> {
  const { request } = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
  const agent = await options.agent?.(url);
  return new Promise<IncomingMessage>((resolve, reject) => {
    const req: ClientRequest = request(url, {
      method: options.method,
      headers: { ...options.headers, ...(authorization ? { authorization } : {}) },
      ...(agent ? { agent } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    let response: IncomingMessage | undefined;
    req.once('socket', (socket) => {
      if (!socket.connecting) return;
      const timer = setTimeout(() => req.destroy(timedOut('connect')), options.connectTimeoutMs);
      socket.once('connect', () => clearTimeout(timer));
      socket.once('close', () => clearTimeout(timer));
    });
    req.setTimeout(options.idleTimeoutMs, () => {
      const error = timedOut('socket');
      if (response) response.destroy(error);
      req.destroy(error);
    });
    req.once('error', reject);
    req.once('response', (res) => {
      response = res;
      req.off('error', reject);
      // Later failures reach whoever reads the body; this keeps one that is only destroyed from crashing the process.
      req.on('error', () => {});
      res.on('error', () => {});
      resolve(res);
    });
    const { body } = options;
    if (body === undefined || Buffer.isBuffer(body)) {
      req.end(body);
    } else {
      body.once('error', (error) => req.destroy(error));
      // A request that ends before the body was read (an early answer, a reset) releases the body's file too.
      req.once('close', () => body.destroy());
      body.pipe(req);
    }
  });
}

/** The request, and the redirects it is answered with (Authorization dropped once the origin changes). */
export async function exchange(url: URL, options: ExchangeOptions): Promise<Exchanged> {
  let current = url;
  let method = options.method;
  for (let hop = 0; ; hop++) {
    const response = await once(
      current,
      { ...options, method },
      current.origin === url.origin ? options.authorization : undefined,
    );
    const target =
      options.redirects && (method === 'GET' || method === 'HEAD') ? redirectTarget(response, current) : undefined;
    if (!target || hop >= MAX_REDIRECTS) return { response, url: current.href };
    response.resume();
    if (response.statusCode === 303) method = method === 'HEAD' ? 'HEAD' : 'GET';
    current = target;
  }
}
