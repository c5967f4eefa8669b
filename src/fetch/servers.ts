// A source's servers (primary, then mirrors by health) tried in turn until one delivers verified bytes; all failures listed.
import type { Context } from '../context.js';
import { TemplatesError, abortError, isTemplatesError, type ErrorCode } from '../errors.js';
import type { HttpClient } from '../http/client.js';
import { createHttpProvider, joinUrl } from '../providers/http.js';
import type { Provider } from '../providers/types.js';
import type { SourceSpec } from '../repository/model.js';
import { sourceServers } from '../repository/mirrors.js';
import type { ServerHealth } from '../store/server-health.js';

/**
 * Failures that belong to the server, not to the template or this host: another server may well deliver. A hash
 * mismatch is one: the digest decides, so a wrong mirror never wins.
 */
const SERVER_FAULTS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'SOURCE_UNREACHABLE',
  'SOURCE_HTTP_ERROR',
  'AUTH_FAILED',
  'IMAGE_NOT_FOUND',
  'HASH_MISMATCH',
  'HASH_INVALID',
  'HASH_MISSING',
  'METADATA_INVALID',
  'FORMAT_MISMATCH',
  'SIZE_MISMATCH',
  'IMAGE_TOO_LARGE',
  'DECODE_FAILED',
  'FORMAT_UNSUPPORTED',
]);

/** One server that failed, and why. */
interface ServerAttempt {
  url: string;
  code: ErrorCode;
  message: string;
}

export interface Delivered<T> {
  value: T;
  /** The base URL that delivered. */
  server: string;
  /** True when it is not the source's own baseurl. */
  mirror: boolean;
}

export interface ServerTry {
  provider: Provider;
  server: string;
  /** True for the last server in the order: its requests keep the client's retries. */
  last: boolean;
}

export interface TryServersOptions {
  /** What is being fetched, for the error (a ref). */
  what: string;
  health: ServerHealth;
  /** The URL a kept partial download came from, asked only when there are servers to order: its server goes first (resume only works there). */
  partialUrl?: () => Promise<string | undefined>;
  handle: string;
  signal?: AbortSignal;
  /** A server failed and the next is tried (the CLI prints it as a warning; serve logs it). */
  onServerFailed?: (failed: ServerAttempt, next: string) => void;
}

/** The client without retries: with another server to ask, a 503 or a reset moves on at once. */
function withoutRetries(http: HttpClient): HttpClient {
  return {
    get: (url, options = {}) => http.get(url, { ...options, retries: 0 }),
    send: (url, options) => http.send(url, options),
  };
}

/** The provider of one server, reporting the time its first file took to answer. */
function timedProvider(server: string, http: HttpClient, onLatency: (ms: number) => void): Provider {
  const provider = createHttpProvider(server, http);
  let timed = false;
  return {
    locate: provider.locate,
    async open(handle, suffix, options) {
      const started = performance.now();
      const file = await provider.open(handle, suffix, options);
      if (!timed) {
        timed = true;
        onLatency(performance.now() - started);
      }
      return file;
    },
  };
}

/**
 * Runs `attempt` against each server of an http source in health order until one succeeds; moves on only after a
 * server's fault (SERVER_FAULTS). With one server its error is thrown as it is; with several, MIRRORS_FAILED lists
 * every URL tried and why.
 */
export async function tryServers<T>(
  ctx: Context,
  source: Extract<SourceSpec, { type: 'http' }>,
  options: TryServersOptions,
  attempt: (server: ServerTry) => Promise<T>,
): Promise<Delivered<T>> {
  const { health, signal } = options;
  const servers = sourceServers(source, ctx.mirrors);
  // One server: nothing to order or remember (a store without mirrors gets no .mirrors/).
  if (servers.length === 1) {
    const server = servers[0]!;
    return {
      value: await attempt({ provider: createHttpProvider(server, ctx.http), server, last: true }),
      server,
      mirror: false,
    };
  }
  const partialUrl = await options.partialUrl?.();
  const prefer =
    partialUrl === undefined
      ? undefined
      : servers.find((server) => ['.xz', ''].some((suffix) => joinUrl(server, options.handle, suffix) === partialUrl));
  const order = await health.order(servers, prefer);
  const failed: ServerAttempt[] = [];
  try {
    for (const [index, server] of order.entries()) {
      const last = index === order.length - 1;
      let latency: number | undefined;
      const provider = timedProvider(server, last ? ctx.http : withoutRetries(ctx.http), (ms) => (latency = ms));
      try {
        const value = await attempt({ provider, server, last });
        health.success(server, latency);
        return { value, server, mirror: server !== servers[0] };
      } catch (error) {
        if (signal?.aborted) throw abortError(signal);
        if (!isTemplatesError(error) || !SERVER_FAULTS.has(error.code)) throw error;
        health.failure(server);
        failed.push({ url: error.fields.url ?? server, code: error.code, message: error.message });
        if (!last) options.onServerFailed?.(failed[failed.length - 1]!, order[index + 1]!);
      }
    }
  } finally {
    await health.save();
  }
  throw new TemplatesError(
    'MIRRORS_FAILED',
    `${options.what}: all ${failed.length} servers failed: ${failed.map((f) => `${f.message} [${f.code}]`).join('; ')}`,
    {
      url: servers[0]!,
      attempts: failed,
      hint: 'no server delivered a verified copy; check `templates status --deep` and try again later',
    },
  );
}
