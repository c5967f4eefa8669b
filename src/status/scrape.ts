// scrapeStatus: every configured repository at its primary and each mirror, in parallel with a bound and a timeout.
import { basename } from 'node:path';
import { createContext, type Context } from '../context.js';
import { abortError, redactUrl } from '../errors.js';
import type { RepositoryCache } from '../repository/cache.js';
import { repositoryLocations } from '../repository/find.js';
import type { Repository } from '../repository/model.js';
import { parseRepository } from '../repository/parse.js';
import { createLimit } from '../util/limit.js';
import { compareCopies } from './compare.js';
import { copiesOf, type Copy } from './copies.js';
import { httpSources } from '../repository/mirrors.js';
import { deepCheck, newestFiles, type SizeMap } from './deep.js';
import type { RepositoryStatus, ServerStatus, StatusReport } from './model.js';
import { countRepository, readHttpCopy, readLocalCopy, type CopyReading } from './read-copy.js';
import { readRepositorySignature } from '../repository/load.js';
import { copySignature, type CopySignature } from '../trust/check.js';
import { trustedKeys } from '../trust/policy.js';

export type { StatusReport };

export interface ScrapeOptions {
  /** Repository files, directories and URLs (as TEMPLATES_REPOS entries; the CLI passes its configured ones). */
  locations?: string[];
  /** Only repositories with these names or locations. */
  only?: string[];
  /** Also HEAD each template's newest image and `.hash` on every server. */
  deep?: boolean;
  /** Requests at once (default 8). */
  concurrency?: number;
  /** Per request (default 10 s). */
  timeoutMs?: number;
  context?: Context;
  /** The store's cache of repository JSON: names and mirrors of a repository whose primary is down. */
  store?: { repositoryCache: RepositoryCache };
  signal?: AbortSignal;
}

type Run = <T>(task: () => Promise<T>) => Promise<T>;

function entry(
  name: string,
  copy: Copy,
  reading: CopyReading,
  sync: RepositoryStatus['sync'],
  deep: RepositoryStatus['deep'],
  signature: CopySignature | null,
): RepositoryStatus {
  const counts = countRepository(reading.repository);
  const readable = reading.repository !== null;
  const signed = signature === null || signature.state === 'verified' || signature.state === 'unchecked';
  const synced = copy.role === 'primary' || sync.state === 'in-sync';
  return {
    name,
    server: copy.server,
    role: copy.role,
    url: redactUrl(copy.jsonUrl),
    reachable: reading.reachable,
    httpStatus: reading.httpStatus,
    latencySeconds: reading.latencySeconds,
    error: reading.error,
    revision: reading.repository?.revision ?? null,
    digest: reading.digest,
    published: reading.repository?.published ?? null,
    lastModified: reading.lastModified,
    etag: reading.etag,
    templates: counts.templates,
    versions: counts.versions,
    newestVersionTimestamp: counts.newest,
    rootSizeBytes: counts.rootSize,
    sync,
    deep,
    signature,
    healthy: readable && synced && signed && (deep === null || deep.every((check) => check.ok)),
  };
}

async function cachedRepository(ctx: Context, url: string, options: ScrapeOptions): Promise<Repository | undefined> {
  const cached = await options.store?.repositoryCache.read(url).catch(() => undefined);
  if (!cached) return undefined;
  try {
    return parseRepository(cached.body, redactUrl(url), { env: ctx.env, home: ctx.home, allowFileSources: false });
  } catch {
    return undefined;
  }
}

/** One repository location: its primary, then its mirrors (found from the primary's JSON, else the cached copy). */
async function scrapeLocation(
  ctx: Context,
  location: string,
  run: Run,
  options: ScrapeOptions,
  signal: AbortSignal,
): Promise<RepositoryStatus[]> {
  const timeout = options.timeoutMs ?? 10_000;
  const http = /^https?:\/\//i.test(location);
  const primaryCopy: Copy = http
    ? copiesOf(location, [], [])[0]!
    : { server: 'local', role: 'primary', jsonUrl: location, rewrite: (u) => u };
  const primary = await run(() => (http ? readHttpCopy(ctx, location, timeout, signal) : readLocalCopy(ctx, location)));
  const known = primary.repository ?? (http ? await cachedRepository(ctx, location, options) : undefined);
  const copies = http ? copiesOf(location, ctx.mirrors, httpSources(known)) : [primaryCopy];
  const mirrors = copies.slice(1);
  const readings = await Promise.all(
    mirrors.map((copy) => run(() => readHttpCopy(ctx, copy.jsonUrl, timeout, signal))),
  );
  const name =
    primary.repository?.name ??
    readings.find((r) => r.repository)?.repository?.name ??
    known?.name ??
    basename(location).replace(/\.json$/, '');
  const files = options.deep
    ? newestFiles(
        primary.repository ??
          readings.find((r) => r.repository)?.repository ??
          known ?? { name, location, templates: new Map(), problems: [] },
      )
    : [];
  let primarySizes: SizeMap | undefined;
  const primaryDeep =
    options.deep && primary.reachable
      ? await run(() => deepCheck(ctx, files, primaryCopy.rewrite, undefined, signal))
      : null;
  if (primaryDeep) primarySizes = new Map(primaryDeep.map((check) => [`${check.ref}/${check.file}`, check.size]));
  // Every copy is checked with the keys trusted for the repository at its primary location.
  const keys = trustedKeys(ctx.trust, location, name);
  // One try within the timeout; a signature that cannot be read counts as missing.
  const minisig = (copy: Copy) =>
    run(() =>
      readRepositorySignature(copy.jsonUrl, {
        context: ctx,
        retries: 0,
        signal: AbortSignal.any([signal, AbortSignal.timeout(timeout)]),
      }).catch((_error: unknown) => {
        if (signal.aborted) throw abortError(signal);
        return undefined;
      }),
    );
  const signed = async (copy: Copy, reading: CopyReading) =>
    reading.text === null ? null : copySignature(reading.text, keys.length ? await minisig(copy) : undefined, keys);
  const out = [
    entry(
      name,
      copies[0]!,
      primary,
      { state: 'primary', behindRevisions: 0, since: null },
      options.deep ? (primaryDeep ?? []) : null,
      await signed(copies[0]!, primary),
    ),
  ];
  await Promise.all(
    mirrors.map(async (copy, index) => {
      const reading = readings[index]!;
      const deep =
        options.deep && reading.reachable
          ? await run(() => deepCheck(ctx, files, copy.rewrite, primarySizes ?? new Map(), signal))
          : null;
      out[index + 1] = entry(
        name,
        copy,
        reading,
        compareCopies(primary, reading),
        options.deep ? (deep ?? []) : null,
        await signed(copy, reading),
      );
    }),
  );
  return out;
}

/** Groups (repository, server) results by server, each server's repositories sorted by name. */
function byServer(results: RepositoryStatus[]): ServerStatus[] {
  const servers = new Map<string, RepositoryStatus[]>();
  for (const result of results) servers.set(result.server, [...(servers.get(result.server) ?? []), result]);
  return [...servers].map(([name, repositories]) => ({
    name,
    repositories: repositories.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  }));
}

/** Scrapes every configured repository (see docs/mirrors.md); never throws for a server that is down: that is a result. */
export async function scrapeStatus(options: ScrapeOptions = {}): Promise<StatusReport> {
  const ctx = options.context ?? createContext();
  const signal = options.signal ?? new AbortController().signal;
  const run = createLimit(Math.max(1, options.concurrency ?? 8));
  const listed = await repositoryLocations({ locations: options.locations ?? [] });
  const scraped = await Promise.all(listed.map(({ location }) => scrapeLocation(ctx, location, run, options, signal)));
  const only = options.only ?? [];
  const results = scraped
    .filter((list) => only.length === 0 || list.some((r) => only.includes(r.name) || only.includes(r.url)))
    .flat();
  return {
    scrapedAt: new Date(ctx.now()).toISOString(),
    servers: byServer(results),
    healthy: results.every((r) => r.healthy),
  };
}
