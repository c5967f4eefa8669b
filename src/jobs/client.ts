// createJobClient: a templates serve's /api/1/jobs from another host: create, get, list, renew, remove, and wait.
import { TemplatesError, abortError, isTemplatesError, type ErrorCode } from '../errors.js';
import { ERROR_CODES } from '../errors.js';

/** A job as the API shows it (docs/jobs.md). */
export interface JobJson {
  id: number;
  owner: string;
  refs: Array<{ ref: string; version: string; digest: string | null; state: number; state_name: string }>;
  state: number;
  state_name: 'wait' | 'fetching' | 'done' | 'removed' | 'failed';
  state_reason: string | null;
  state_code: string | null;
  label: string | null;
  results: string[];
  seconds_to_live: number;
  time_submitted: string;
  time_started: string | null;
  time_done: string | null;
  time_to_expire: string | null;
  time_removed: string | null;
  removed_by: string | null;
  result_repofile: string | null;
  /** Once done: each result repository by its upstream repository's name. */
  result_repofiles: Record<string, string> | null;
  progress: { bytes: number; total: number | null };
}

export interface JobPage {
  meta: {
    page: number;
    pages: number;
    per_page: number;
    total: number;
    first: string;
    last: string;
    prev: string | null;
    next: string | null;
  };
  items: JobJson[];
}

export interface JobClientOptions {
  /** The server, e.g. http://cache:7480. */
  url: string;
  /** A bearer token from the server's /auth_token, when it needs one. */
  token?: string;
  /** Injected for tests and proxies (default: the global fetch). */
  fetch?: typeof globalThis.fetch;
  /**
   * Polling when events are not available: first delay, growth and cap (default 1 s, 1.5×, 15 s), and how long
   * a server that cannot be reached (or answers 502/503) is waited for before `wait` gives up (default 120 s).
   */
  poll?: { firstMs?: number; factor?: number; maxMs?: number; unreachableMs?: number };
  /**
   * How long a request waits for the response's headers (default 30 s). Node's fetch never settles when a
   * server (or a TCP proxy in front of a dead one) accepts the connection and closes it at once; this bounds it.
   */
  headersTimeoutMs?: number;
}

export interface NewJobRequest {
  refs: string[];
  secondsToLive?: number;
  results?: Array<'raw' | 'qcow2'>;
  label?: string;
}

export interface WaitOptions {
  /** Give up after this many milliseconds (JOB_TIMEOUT). */
  timeout?: number;
  signal?: AbortSignal;
  /** Each state or progress the client sees. */
  onUpdate?: (job: JobJson) => void;
}

export interface JobClient {
  create(request: NewJobRequest, options?: { signal?: AbortSignal }): Promise<JobJson>;
  get(id: number, options?: { signal?: AbortSignal }): Promise<JobJson>;
  list(
    query?: { state?: string; owner?: string; label?: string; orderBy?: 'id' | '-id'; page?: number; perPage?: number },
    options?: { signal?: AbortSignal },
  ): Promise<JobPage>;
  renew(id: number, secondsToLive: number, options?: { signal?: AbortSignal }): Promise<JobJson>;
  remove(id: number, options?: { signal?: AbortSignal }): Promise<JobJson>;
  /**
   * Resolves with the job once it is done; a job that failed (or was removed first) rejects with its own error code.
   * Follows the job's events; polls (1 s growing 1.5× to a cap) when they cannot be had.
   */
  wait(id: number, options?: WaitOptions): Promise<JobJson>;
}

const known = (code: unknown): code is ErrorCode => typeof code === 'string' && code in ERROR_CODES;

/** The error a finished-but-not-done job stands for. */
export function jobFailure(job: JobJson): TemplatesError {
  if (job.state_name === 'removed')
    return new TemplatesError(
      'JOB_CONFLICT',
      `job ${job.id} was removed by ${job.removed_by ?? 'someone'} before it was done`,
      { hint: `renew it: templates job renew ${job.id}` },
    );
  const code = known(job.state_code) ? job.state_code : 'INTERNAL';
  return new TemplatesError(code, `job ${job.id} failed: ${job.state_reason ?? 'no reason given'}`, {
    hint: `see templates job show ${job.id}`,
  });
}

/** A failure a restarting server gives: nothing answers, or a proxy's 502/503. */
function transient(error: unknown): boolean {
  if (!isTemplatesError(error)) return false;
  if (error.code === 'SOURCE_UNREACHABLE') return true;
  const status = error.fields.status;
  return error.code === 'SOURCE_HTTP_ERROR' && (status === 502 || status === 503);
}

export function createJobClient(options: JobClientOptions): JobClient {
  const base = options.url.replace(/\/+$/, '');
  const doFetch = options.fetch ?? globalThis.fetch;
  const poll = { firstMs: 1000, factor: 1.5, maxMs: 15_000, unreachableMs: 120_000, ...options.poll };
  const headers = (extra: Record<string, string> = {}) => ({
    accept: 'application/json',
    ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
    ...extra,
  });

  const headersTimeoutMs = options.headersTimeoutMs ?? 30_000;

  /** fetch, bounded until the headers arrive by a timer that also keeps the process alive meanwhile. */
  async function send(url: string, init: RequestInit, signal: AbortSignal | undefined): Promise<Response> {
    const deadline = new AbortController();
    const timer = setTimeout(
      () =>
        deadline.abort(
          new TemplatesError('SOURCE_UNREACHABLE', `${url}: no answer in ${Math.round(headersTimeoutMs / 1000)} s`, {
            url,
            hint: 'check --server (TEMPLATES_SERVER) and that templates serve runs there',
          }),
        ),
      headersTimeoutMs,
    );
    try {
      return await doFetch(url, {
        ...init,
        signal: signal ? AbortSignal.any([signal, deadline.signal]) : deadline.signal,
      });
    } catch (error) {
      if (deadline.signal.aborted && !signal?.aborted) throw deadline.signal.reason;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  async function call(method: string, path: string, body: unknown, signal: AbortSignal | undefined): Promise<unknown> {
    const url = `${base}${path}`;
    let response: Response;
    try {
      response = await send(
        url,
        {
          method,
          headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        },
        signal,
      );
    } catch (error) {
      if (signal?.aborted) throw abortError(signal);
      if (isTemplatesError(error)) throw error;
      throw new TemplatesError(
        'SOURCE_UNREACHABLE',
        `cannot reach ${url}: ${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message}`,
        { url, hint: 'check --server (TEMPLATES_SERVER) and that templates serve runs there' },
        { cause: error },
      );
    }
    const text = await response.text();
    let data: unknown;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      data = undefined;
    }
    if (response.ok && data !== undefined) return data;
    if (response.status === 401)
      throw new TemplatesError('AUTH_FAILED', `${url}: the server wants a valid token (HTTP 401)`, {
        url,
        status: 401,
        hint: "set TEMPLATES_TOKEN to a token from the server's /auth_token",
      });
    const error = (data as { error?: { code?: string; message?: string; hint?: string } } | undefined)?.error;
    if (error && known(error.code))
      throw new TemplatesError(error.code, error.message ?? `HTTP ${response.status}`, {
        url,
        status: response.status,
        ...(error.hint ? { hint: error.hint } : {}),
      });
    throw new TemplatesError(
      'SOURCE_HTTP_ERROR',
      `${url}: HTTP ${response.status}${error?.message ? `: ${error.message}` : ''}`,
      { url, status: response.status, hint: 'is this a templates serve?' },
    );
  }

  const client: JobClient = {
    create: (request, opts) =>
      call(
        'POST',
        '/api/1/jobs',
        {
          refs: request.refs,
          ...(request.secondsToLive !== undefined ? { seconds_to_live: request.secondsToLive } : {}),
          ...(request.results ? { results: request.results } : {}),
          ...(request.label !== undefined ? { label: request.label } : {}),
        },
        opts?.signal,
      ) as Promise<JobJson>,
    get: (id, opts) => call('GET', `/api/1/jobs/${id}`, undefined, opts?.signal) as Promise<JobJson>,
    list(query = {}, opts) {
      const params = new URLSearchParams();
      for (const [name, value] of [
        ['state', query.state],
        ['owner', query.owner],
        ['label', query.label],
        ['order_by', query.orderBy],
        ['page', query.page],
        ['per_page', query.perPage],
      ] as const) {
        if (value !== undefined) params.set(name, String(value));
      }
      return call('GET', `/api/1/jobs${params.size ? `?${params}` : ''}`, undefined, opts?.signal) as Promise<JobPage>;
    },
    renew: (id, secondsToLive, opts) =>
      call('PATCH', `/api/1/jobs/${id}`, { seconds_to_live: secondsToLive }, opts?.signal) as Promise<JobJson>,
    remove: (id, opts) => call('DELETE', `/api/1/jobs/${id}`, undefined, opts?.signal) as Promise<JobJson>,
    async wait(id, opts = {}) {
      const stop = new AbortController();
      const signals = [stop.signal, ...(opts.signal ? [opts.signal] : [])];
      const timer =
        opts.timeout !== undefined
          ? setTimeout(
              () =>
                stop.abort(
                  new TemplatesError(
                    'JOB_TIMEOUT',
                    `job ${id} was not done after ${Math.round(opts.timeout! / 1000)} s`,
                    { hint: `it goes on; see templates job show ${id}` },
                  ),
                ),
              opts.timeout,
            )
          : undefined;
      const signal = AbortSignal.any(signals);
      const settle = (job: JobJson): JobJson | undefined => {
        opts.onUpdate?.(job);
        if (job.state_name === 'done') return job;
        if (job.state_name === 'failed' || job.state_name === 'removed') throw jobFailure(job);
        return undefined;
      };
      try {
        const followed = await followEvents(id, signal, settle).catch((error: unknown) => {
          if (signal.aborted || (isTemplatesError(error) && !transient(error))) throw error;
          return undefined; // no event stream (a proxy, an old server, a server restarting): poll instead
        });
        if (followed) return followed;
        let delay = poll.firstMs;
        let unreachableSince: number | undefined;
        for (;;) {
          // The job lives in the server's database: a server restarting (refused, reset, 502/503) is waited for, a while.
          const current = await client.get(id, { signal }).catch((error: unknown) => {
            if (!transient(error) || signal.aborted) throw error;
            unreachableSince ??= Date.now();
            if (Date.now() - unreachableSince > poll.unreachableMs) throw error;
            return undefined;
          });
          if (current) unreachableSince = undefined;
          const job = current && settle(current);
          if (job) return job;
          await new Promise((resolve, reject) => {
            const t = setTimeout(resolve, delay);
            signal.addEventListener(
              'abort',
              () => {
                clearTimeout(t);
                reject(abortError(signal));
              },
              { once: true },
            );
          });
          delay = Math.min(delay * poll.factor, poll.maxMs);
        }
      } catch (error) {
        // A timeout or the caller's abort wins over whatever the aborted request threw.
        throw signal.aborted ? abortError(signal) : error;
      } finally {
        if (timer) clearTimeout(timer);
        stop.abort();
      }
    },
  };

  /** Reads the job's event stream until `settle` returns a job or throws; undefined when the stream ended first. */
  async function followEvents(
    id: number,
    signal: AbortSignal,
    settle: (job: JobJson) => JobJson | undefined,
  ): Promise<JobJson | undefined> {
    const response = await send(
      `${base}/api/1/jobs/${id}/events`,
      { headers: headers({ accept: 'text/event-stream' }) },
      signal,
    );
    if (
      !response.ok ||
      !response.body ||
      !(response.headers.get('content-type') ?? '').startsWith('text/event-stream')
    ) {
      await response.body?.cancel().catch(() => undefined);
      if (response.status === 404) await call('GET', `/api/1/jobs/${id}`, undefined, signal);
      throw new Error(`no event stream (HTTP ${response.status})`);
    }
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trimStart())
          .join('\n');
        if (!data) continue;
        const job = settle(JSON.parse(data) as JobJson);
        if (job) return job;
      }
    }
    return undefined;
  }

  return client;
}
