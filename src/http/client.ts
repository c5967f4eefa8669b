// The HTTP client factory: node:http with timeouts, http(s)-only redirects, env proxies, retries and challenges, raw bytes.
import type { Agent as HttpAgent, IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { TemplatesError, abortError, isTemplatesError, redactUrl } from '../errors.js';
import type { Credentials } from './credentials.js';
import { proxyFor, type ProxyEnv } from './proxy.js';
import { exchange } from './request.js';

export interface HttpResponse {
  status: number;
  /** The final URL after redirects. */
  url: string;
  headers: IncomingHttpHeaders;
  /** Content-Length when the server sent one. */
  size?: number;
  body: Readable;
}

interface HttpRequestOptions {
  signal?: AbortSignal;
  headers?: Record<string, string>;
  /** HEAD instead of GET (the body is empty). */
  method?: 'GET' | 'HEAD';
  /** Retries for this request instead of the client's (0 when a mirror can answer instead). */
  retries?: number;
}

/** One request of any method (`send`): no retries, no challenge handling and no redirects followed. */
export interface HttpSendOptions {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  signal?: AbortSignal;
  headers?: Record<string, string>;
  body?: Buffer | Readable;
  /** The Authorization header to send (replaces the configured credentials for the URL). */
  authorization?: string;
  /** Send no Authorization at all (a redirect to another host). */
  anonymous?: boolean;
}

export interface HttpClient {
  /** GET that resolves once headers arrive, whatever the status; the caller consumes or destroys `body`. */
  get(url: string, options?: HttpRequestOptions): Promise<HttpResponse>;
  /** One request as given, for protocols that authenticate and redirect themselves (OCI registries). */
  send(url: string, options: HttpSendOptions): Promise<HttpResponse>;
}

export interface HttpClientOptions {
  userAgent: string;
  /** Time allowed to open the TCP (and TLS) connection. */
  connectTimeoutMs: number;
  /** Time allowed without a byte moving once connected (headers and body). */
  idleTimeoutMs: number;
  /** Where HTTP_PROXY / HTTPS_PROXY / NO_PROXY are read from. */
  env: ProxyEnv;
  /** Retries after 429/500/502/503/504 or a connection reset before the response (default 3). */
  retries?: number;
  /** First retry delay, doubled each time (default 1 s); a Retry-After header replaces it. */
  retryDelayMs?: number;
  /** Longest wait between tries; a longer Retry-After ends the retries (default 30 s). */
  retryMaxDelayMs?: number;
  /**
   * A 503 with Retry-After (a server that is busy with this very file, such as a cache host pulling it) is asked
   * again without counting as a retry until this much time was spent waiting (default 1 h).
   */
  busyBudgetMs?: number;
  /** Authorization for requests; never logged, never sent along a redirect to another origin. */
  credentials?: Credentials;
}

/** Statuses that say "try again later". */
const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);

/** Milliseconds a Retry-After header asks for (seconds or an HTTP date), or undefined. */
function retryAfterMs(value: string | string[] | undefined, now: number): number | undefined {
  if (typeof value !== 'string' || !value.trim()) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Maps a network error to SOURCE_UNREACHABLE (or ABORTED), naming the URL without credentials. */
export function mapHttpError(error: unknown, url: string, signal?: AbortSignal): TemplatesError {
  if (signal?.aborted) return abortError(signal);
  if (isTemplatesError(error)) return error;
  const err = error as { code?: string; event?: string; message?: string };
  const shown = redactUrl(url);
  const why =
    err.code === 'ETIMEDOUT' && err.event ? `timed out (${err.event})` : (err.code ?? err.message ?? String(error));
  return new TemplatesError(
    'SOURCE_UNREACHABLE',
    `cannot download ${shown}: ${why}`,
    {
      url: shown,
      hint: 'check the network, the proxy settings and that the server is up, then run the command again',
    },
    { cause: error },
  );
}

/** A server refused the request for want of (valid) credentials: AUTH_FAILED, saying where credentials come from. */
export function authFailed(url: string, status: number): TemplatesError {
  const shown = redactUrl(url);
  return new TemplatesError(
    'AUTH_FAILED',
    `${shown}: HTTP ${status}: ${status === 401 ? 'credentials needed or refused' : 'not allowed'}`,
    {
      url: shown,
      status,
      hint: 'give credentials: TEMPLATES_TOKEN, "auth" per URL prefix in the config file, or ~/.netrc (see docs/serve.md)',
    },
  );
}

export function createHttpClient(options: HttpClientOptions): HttpClient {
  const agents = new Map<string, HttpAgent>();
  // The proxy agents load only when a proxy is configured for the URL.
  const agentFor = async (url: URL): Promise<HttpAgent | undefined> => {
    const proxy = proxyFor(url, options.env);
    if (!proxy) return undefined;
    const key = `${url.protocol}${proxy}`;
    let agent = agents.get(key);
    if (!agent) {
      agent =
        url.protocol === 'https:'
          ? new (await import('https-proxy-agent')).HttpsProxyAgent(proxy)
          : new (await import('http-proxy-agent')).HttpProxyAgent(proxy);
      agents.set(key, agent);
    }
    return agent;
  };

  const once = async (
    url: string,
    requestOptions: Omit<HttpRequestOptions, 'method'> & {
      method?: HttpSendOptions['method'];
      authorization?: string;
      anonymous?: boolean;
      body?: Buffer | Readable;
      redirects?: boolean;
    },
  ): Promise<HttpResponse> => {
    const { signal } = requestOptions;
    if (signal?.aborted) throw abortError(signal);
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (error) {
      throw new TemplatesError('USAGE', `not a URL: ${redactUrl(url)}`, { url: redactUrl(url) }, { cause: error });
    }
    const authorization = requestOptions.anonymous
      ? undefined
      : (requestOptions.authorization ?? options.credentials?.forUrl(parsed));
    try {
      const { response, url: answered } = await exchange(parsed, {
        method: requestOptions.method ?? 'GET',
        headers: { 'user-agent': options.userAgent, 'accept-encoding': 'identity', ...requestOptions.headers },
        ...(authorization ? { authorization } : {}),
        ...(requestOptions.body !== undefined ? { body: requestOptions.body } : {}),
        redirects: requestOptions.redirects !== false,
        connectTimeoutMs: options.connectTimeoutMs,
        idleTimeoutMs: options.idleTimeoutMs,
        agent: agentFor,
        ...(signal ? { signal } : {}),
      });
      const length = Number(response.headers['content-length']);
      return {
        status: response.statusCode ?? 0,
        url: answered,
        headers: response.headers,
        ...(Number.isSafeInteger(length) && length >= 0 ? { size: length } : {}),
        body: response,
      };
    } catch (error) {
      throw mapHttpError(error, url, signal);
    }
  };

  /** A bearer token from a templates server's /auth_token (the realm of its challenge), with Basic credentials. */
  const fetchToken = async (
    tokenUrl: string,
    basic: string,
    requestOptions: HttpRequestOptions,
  ): Promise<string | undefined> => {
    const response = await once(tokenUrl, { ...requestOptions, authorization: basic });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > 64 * 1024) break;
      chunks.push(chunk);
    }
    response.body.destroy();
    if (response.status !== 200) return undefined;
    try {
      const token = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { auth_token?: unknown }).auth_token;
      return typeof token === 'string' ? `Bearer ${token}` : undefined;
    } catch {
      return undefined;
    }
  };

  const clientRetries = options.retries ?? 3;
  const baseDelay = options.retryDelayMs ?? 1000;
  const maxDelay = options.retryMaxDelayMs ?? 30_000;
  const busyBudget = options.busyBudgetMs ?? 3_600_000;
  // Origins that asked for a token: later requests to them send it from the start.
  const challenged = new Map<string, string>();
  return {
    send: (url, sendOptions) => once(url, { ...sendOptions, redirects: false }),
    async get(url, requestOptions = {}) {
      const { signal } = requestOptions;
      let busyWaited = 0;
      const retries = requestOptions.retries ?? clientRetries;
      for (let attempt = 0; ; attempt++) {
        let response: HttpResponse;
        const origin = URL.canParse(url) ? new URL(url).origin : url;
        try {
          response = await once(url, {
            ...requestOptions,
            ...(challenged.has(origin) ? { authorization: challenged.get(origin)! } : {}),
          });
          if (response.status === 401 && options.credentials) {
            const answer = options.credentials.onChallenge(
              new URL(url),
              String(response.headers['www-authenticate'] ?? ''),
            );
            const retryWith =
              answer &&
              ('authorization' in answer
                ? answer.authorization
                : await fetchToken(answer.tokenUrl, answer.basic, requestOptions));
            if (retryWith && retryWith !== challenged.get(origin)) {
              response.body.destroy();
              challenged.set(origin, retryWith);
              response = await once(url, { ...requestOptions, authorization: retryWith });
            }
          }
        } catch (error) {
          // A connection reset before any response is worth another try; everything else fails now.
          const reset =
            isTemplatesError(error) && (error.cause as { code?: string } | undefined)?.code === 'ECONNRESET';
          if (!reset || attempt >= retries) throw error;
          await wait(Math.min(baseDelay * 2 ** attempt, maxDelay), signal);
          continue;
        }
        const asked = retryAfterMs(response.headers['retry-after'], Date.now());
        if (response.status === 503 && asked !== undefined && asked <= maxDelay && busyWaited + asked <= busyBudget) {
          // The server is busy with this file (a pull in progress) and says when to come back: not a failure.
          response.body.destroy();
          busyWaited += asked;
          attempt--;
          await wait(asked, signal);
          continue;
        }
        if (!RETRY_STATUSES.has(response.status) || attempt >= retries) return response;
        if (asked !== undefined && asked > maxDelay) return response;
        response.body.destroy();
        await wait(asked ?? Math.min(baseDelay * 2 ** attempt, maxDelay), signal);
      }
    },
  };
}

async function wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, signal ? { signal } : {});
  } catch {
    throw abortError(signal);
  }
}
