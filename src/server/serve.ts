// startServer: the store served to neighbours (templates serve): repositories, pull-through, usage API, metrics, auth.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import type { Context } from '../context.js';
import { TemplatesError, asTemplatesError } from '../errors.js';
import { JobDatabase } from '../jobs/database.js';
import { createJobService } from '../jobs/service.js';
import { jobsDatabasePath } from '../store/layout.js';
import { RepositorySet } from '../repository/set.js';
import type { PrunePolicy } from '../manage/prune-plan.js';
import type { Store } from '../store/store.js';
import { buildApp } from './app.js';
import { createTokens, loadHtpasswd, loadSecret } from './auth.js';
import type { AuthPolicy, RepositoryState, ServerDeps } from './deps.js';
import { currentCatalogue } from './catalogue.js';
import { createInventoryCache } from './inventory-cache.js';
import { createMetrics } from './metrics.js';
import { createPulls } from './pulls.js';
import { createRenditions } from './renditions.js';
import { createWarmer } from './warm.js';
import { createChunkSource } from '../fetch/chunk-source.js';
import { createActivity } from './activity.js';
import { observeJobs, pullEvents } from './observe.js';
import { scrapeStatus } from '../status/scrape.js';
import { watchStatus } from './status-watch.js';

export interface ServeOptions {
  store: Store;
  context: Context;
  /** Loads the upstream repositories; called at start and every `refreshMs` (a failure keeps the last good set). */
  loadRepositories: (signal: AbortSignal) => Promise<RepositorySet>;
  refreshMs?: number;
  host?: string;
  /** 0: any free port. */
  port?: number;
  /** An htpasswd -B file: with it, everything but health, metrics and /auth_token needs a token. */
  htpasswd?: string;
  anonymous?: 'none' | 'read' | 'write';
  tokenTtlSeconds?: number;
  /** Default `<store>/.serve/secret`. */
  secretFile?: string;
  /** The URL neighbours use, behind a proxy (default: the Host the request came to). */
  publicUrl?: string;
  minFreeBytes?: number;
  /** The configured prune policy: the dashboard shows what it would take next (nothing is removed by the server). */
  prunePolicy?: PrunePolicy;
  /** /auth_token requests per client per window. */
  authLimits?: { max: number; windowMs: number };
  /** Jobs fetching at once (default 2). */
  workers?: number;
  /** Largest seconds_to_live a job may ask for (default 7 days); 86400 or this, if lower, when it asks none. */
  maxSecondsToLive?: number;
  /** Users who may renew and remove anyone's jobs. */
  admins?: string[];
  /** How often expired jobs are removed and what they held freed (default 30 s). */
  sweepMs?: number;
  /** The mirrors-and-status scrape: repository locations, every `intervalMs` (0: off; default 5 min when locations are given). */
  status?: { locations: string[]; intervalMs?: number; deep?: boolean };
  /** PEM files: serve https only (simplestreams clients take nothing else); read again by `reloadTls`. */
  tls?: { certFile: string; keyFile: string };
  /**
   * "newest": after each load of the repositories, pull the newest version of every template the store lacks, one at a
   * time (so that simplestreams and virt-builder, which list only what is held, show every template). Default "none".
   */
  warm?: 'none' | 'newest';
  /** One JSON object per request and per pull (default: none). */
  log?: (line: Record<string, unknown>) => void;
}

export interface RunningServer {
  /** `http://HOST:PORT` (or https) as listening. */
  url: string;
  /**
   * Reads the TLS certificate and key files again and serves new connections with them (a renewed certificate, on
   * SIGHUP); CONFIG_INVALID, and the old pair kept, when they cannot be read or do not go together.
   */
  reloadTls(): Promise<void>;
  /** Stops accepting, lets responses and pulls in flight finish within `graceMs`, then cuts the rest. */
  close(graceMs: number): Promise<void>;
}

function repositoryState(
  options: ServeOptions,
  signal: AbortSignal,
  log: (line: Record<string, unknown>) => void,
): RepositoryState & { load(): Promise<void> } {
  let current = new RepositorySet();
  let loadedAt: number | undefined;
  let problem: string | undefined;
  return {
    current: () => current,
    loadedAt: () => loadedAt,
    problem: () => problem,
    async load() {
      try {
        current = await options.loadRepositories(signal);
        loadedAt = options.context.now();
        problem = undefined;
      } catch (error) {
        problem = asTemplatesError(error).toLine();
        log({ kind: 'repositories', error: asTemplatesError(error).code, message: problem });
      }
    },
  };
}

function tlsInvalid(files: { certFile: string; keyFile: string }, error: unknown): TemplatesError {
  return new TemplatesError(
    'CONFIG_INVALID',
    `cannot use the TLS certificate ${files.certFile} with the key ${files.keyFile}: ${(error as Error).message}`,
    { hint: 'give a PEM certificate (chain) and its PEM private key' },
    { cause: error },
  );
}

/** The certificate and key, checked to go together (tls.createSecureContext) before any server takes them. */
async function readTls(files: { certFile: string; keyFile: string }): Promise<{ cert: Buffer; key: Buffer }> {
  const read = (path: string) =>
    readFile(path).catch((error: unknown) => {
      throw new TemplatesError(
        'CONFIG_INVALID',
        `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
        {
          hint: 'check --tls-cert and --tls-key',
        },
        { cause: error },
      );
    });
  const [cert, key] = await Promise.all([read(files.certFile), read(files.keyFile)]);
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    throw tlsInvalid(files, error);
  }
  return { cert, key };
}

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const log = options.log ?? (() => undefined);
  const shutdown = new AbortController();
  const { store, context } = options;
  let auth: AuthPolicy = { anonymous: options.anonymous ?? 'none' };
  if (options.htpasswd) {
    const users = await loadHtpasswd(options.htpasswd);
    const secret = await loadSecret(options.secretFile || join(store.root, '.serve', 'secret'));
    auth = { ...auth, users, tokens: createTokens(secret, options.tokenTtlSeconds ?? 3600, context.now) };
  }
  const inventory = createInventoryCache(store, context.now);
  const db = new JobDatabase(jobsDatabasePath(store.root));
  const status = watchStatus({
    intervalMs: options.status ? (options.status.intervalMs ?? 300_000) : 0,
    scrape: scrapeStatus,
    options: {
      locations: options.status?.locations ?? [],
      deep: options.status?.deep ?? false,
      context,
      store,
      signal: shutdown.signal,
    },
    log,
  });
  const metrics = await createMetrics(
    () => inventory.get(),
    () => db.countByState(),
    () => status.latest(),
  );
  const repositories = repositoryState(options, shutdown.signal, log);
  // Read before listening: no request waits for a whole store to be read.
  await Promise.all([repositories.load(), inventory.get()]);
  const activity = createActivity(context.now);
  const observers = { metrics, log, inventory, activity, repositories: () => repositories.current() };
  const pulls = createPulls({
    store,
    context,
    repositories: () => repositories.current(),
    events: pullEvents(observers),
  });
  const warm = options.warm === 'newest' ? createWarmer({ pulls, signal: shutdown.signal, log }) : undefined;
  const reload = async () => {
    await repositories.load();
    if (warm) warm(await deps.catalogue());
  };
  const refresh = setInterval(() => void reload(), options.refreshMs ?? 600_000);
  refresh.unref();
  const closing = new AbortController();
  const maxSecondsToLive = options.maxSecondsToLive ?? 7 * 86_400;
  const service = createJobService({
    store,
    context,
    db,
    repositories: () => repositories.current(),
    workers: options.workers ?? 2,
    maxSecondsToLive,
  });
  observeJobs(service, observers);
  const sweep = () =>
    void service
      .sweep()
      .catch((error: unknown) =>
        log({ kind: 'jobs', error: asTemplatesError(error).code, message: asTemplatesError(error).toLine() }),
      );
  sweep();
  const sweeper = setInterval(sweep, options.sweepMs ?? 30_000);
  sweeper.unref();
  const publicUrl = options.publicUrl?.replace(/\/+$/, '');
  const deps: ServerDeps = {
    store,
    context,
    repositories,
    inventory,
    pulls,
    renditions: createRenditions({ store, context, signal: shutdown.signal, log }),
    chunks: createChunkSource({
      store,
      context,
      signal: shutdown.signal,
      onBytes: (kind, bytes) => metrics.chunkBytes.inc({ kind }, bytes),
    }),
    metrics,
    auth,
    status,
    activity,
    jobs: {
      service,
      admins: new Set(options.admins ?? []),
      defaultSecondsToLive: Math.min(86_400, maxSecondsToLive),
      closing: closing.signal,
    },
    catalogue: currentCatalogue(
      store.root,
      () => repositories.current(),
      () => inventory.get(),
    ),
    baseUrl: (request: FastifyRequest) => publicUrl || `${request.protocol}://${request.host}`,
    minFreeBytes: options.minFreeBytes ?? 1024 ** 3,
    prunePolicy: options.prunePolicy ?? {},
    shutdown: shutdown.signal,
    log,
  };
  const tls = options.tls ? await readTls(options.tls) : undefined;
  const app = await buildApp(deps, {
    authLimits: options.authLimits ?? { max: 10, windowMs: 60_000 },
    ...(tls ? { tls } : {}),
  });
  let address: string;
  try {
    address = await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 7480 });
  } catch (error) {
    throw new TemplatesError(
      'USAGE',
      `cannot listen on ${options.host ?? '127.0.0.1'}:${options.port ?? 7480}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      {
        hint: 'pick another --listen HOST:PORT (port 0: any free one)',
      },
      { cause: error },
    );
  }
  if (warm) warm(await deps.catalogue());
  return {
    url: address,
    async reloadTls() {
      if (!options.tls) throw new TemplatesError('USAGE', 'this server was started without TLS: nothing to reload');
      const pair = await readTls(options.tls);
      try {
        (app.server as unknown as TlsServer).setSecureContext(pair);
      } catch (error) {
        throw tlsInvalid(options.tls, error);
      }
      log({ kind: 'tls', reloaded: true, cert: options.tls.certFile });
    },
    async close(graceMs) {
      clearInterval(refresh);
      clearInterval(sweeper);
      status.stop();
      const deadline = Date.now() + graceMs;
      closing.abort();
      service.stop();
      const stopping = app.close();
      // Pulls and jobs finish within the grace (neighbours following them get every byte), then are aborted: nothing
      // partial stays; an aborted job fetches again when the server starts again.
      await Promise.all([
        pulls.drain(graceMs),
        Promise.race([service.idle(), new Promise((resolve) => setTimeout(resolve, graceMs).unref())]),
      ]);
      service.close();
      await service.idle();
      db.close();
      const cut = setTimeout(() => app.server.closeAllConnections(), Math.max(0, deadline - Date.now()));
      cut.unref();
      await stopping;
      clearTimeout(cut);
      shutdown.abort(new TemplatesError('ABORTED', 'the server is shutting down'));
    },
  };
}
