// resolveTemplate and templatePath: what a fetch would use, and where a stored template is, without downloading.
import { createContext, type Context } from '../context.js';
import { TemplatesError, isTemplatesError } from '../errors.js';
import { providerFor } from '../providers/index.js';
import type { Provider } from '../providers/types.js';
import type { Repository } from '../repository/model.js';
import type { RepositorySet } from '../repository/set.js';
import { formatDigest } from '../repository/digest.js';
import { resolveReference } from '../repository/resolve.js';
import { sourceServers } from '../repository/mirrors.js';
import { deltaPartialPath } from '../store/layout.js';
import { checkStore, readStoredEntry, type Store } from '../store/store.js';
import { touchLastUse } from '../store/users.js';
import { type DeltaReport, planDelta } from './delta-plan.js';
import { IMAGE_SUFFIXES, readHash } from './source.js';

export interface Resolution {
  ref: string;
  repository: string;
  template: string;
  version: string;
  timestamp: number;
  source: { name: string; type: string };
  /** The image locations a fetch tries, in order, on the source's own server. */
  urls: string[];
  /** Mirrors of an http source (the repository's, then the config's), tried after it in health order. */
  mirrors: string[];
  /** The uncompressed image's hash a fetch verifies (from the repository JSON or its `.hash` file), or null. */
  hash: string | null;
  hashFrom: 'repository' | 'hash-file' | null;
  compressedHash: string | null;
  /** The `.zst` the repository lists (a fetch tries it first when zstd is installed), or null. */
  zst: { hash: string; size: number | null } | null;
  size: number | null;
  format: string | null;
  /** The repository's signature: verified by a trusted key (which, when, revision), unsigned (no key applies), or null (built in memory). */
  signature: Repository['signature'] | null;
  /**
   * What a fetch into the store would move (docs/delta.md): the version's chunk index against the stored versions of
   * the template, and whether the delta or the whole file is taken. Null without a store, without an index in the
   * repository, offline, or when the index cannot be read (a fetch then takes the whole file as well).
   */
  delta: DeltaEstimate | null;
}

/** A delta fetch's cost before it runs: the figures of its result, the wire estimate, and the choice. */
export interface DeltaEstimate extends DeltaReport {
  /** The whole `.zst`'s size when listed, else null. */
  wholeBytes: number | null;
  chosen: 'delta' | 'whole';
}

export interface ResolveOptions {
  repositories: RepositorySet | Repository[];
  context?: Context;
  signal?: AbortSignal;
  /** Do not read the `.hash` file from the source (no network): `hash` is then only the repository's. */
  offline?: boolean;
  /** The store a fetch would fill: with it, what a delta fetch would cost (`delta`). */
  store?: Store;
}

/** The delta's cost into `store`, or null when there is none to work out or its index cannot be read. */
async function estimateDelta(
  ctx: Context,
  store: Store,
  resolved: ReturnType<typeof resolveReference>,
  provider: Provider,
  signal?: AbortSignal,
): Promise<DeltaEstimate | null> {
  const { version, key } = resolved;
  if (!version.caibx) return null;
  try {
    const planned = await planDelta(
      ctx,
      store,
      key,
      {
        provider,
        handle: version.handle,
        caibx: version.caibx,
        ...(version.size !== undefined ? { size: version.size } : {}),
        ...(version.zst?.size !== undefined ? { zstSize: version.zst.size } : {}),
      },
      deltaPartialPath(store.root, key),
      signal,
    );
    return { ...planned.report, wholeBytes: version.zst?.size ?? null, chosen: planned.worthIt ? 'delta' : 'whole' };
  } catch (error) {
    if (signal?.aborted || !isTemplatesError(error)) throw error;
    return null;
  }
}

/** Resolves `ref` and reads its hash file when the repository JSON gives no hash; never downloads the image. */
export async function resolveTemplate(ref: string, options: ResolveOptions): Promise<Resolution> {
  const ctx = options.context ?? createContext();
  const resolved = resolveReference(ref, options.repositories);
  const { version, key } = resolved;
  const provider = providerFor(version.source, ctx.http);
  const sidecar =
    version.hash || options.offline ? undefined : await readHash(provider, version.handle, options.signal);
  const hash = version.hash ?? sidecar;
  return {
    ref: resolved.ref,
    repository: key.repository,
    template: key.template,
    version: key.version,
    timestamp: version.timestamp,
    source: { name: version.source.name, type: version.source.type },
    urls: [...(version.zst ? ['.zst'] : []), ...IMAGE_SUFFIXES].map((suffix) =>
      provider.locate(version.handle, suffix),
    ),
    mirrors: version.source.type === 'http' ? sourceServers(version.source, ctx.mirrors).slice(1) : [],
    hash: hash ? formatDigest(hash) : null,
    hashFrom: version.hash ? 'repository' : sidecar ? 'hash-file' : null,
    compressedHash: version.compressedHash ? `${version.compressedHash.algorithm}:${version.compressedHash.hex}` : null,
    zst: version.zst ? { hash: formatDigest(version.zst.digest), size: version.zst.size ?? null } : null,
    size: version.size ?? null,
    format: version.format ?? null,
    signature: resolved.repository.signature ?? null,
    delta:
      options.store && !options.offline
        ? await estimateDelta(ctx, options.store, resolved, provider, options.signal)
        : null,
  };
}

export interface PathOptions {
  store: Store;
  repositories: RepositorySet | Repository[];
  /** The clock for the last-use record (default Date.now). */
  now?: () => number;
}

/** The stored image's absolute path; NOT_STORED when it is not in the store. */
export async function templatePath(ref: string, options: PathOptions): Promise<string> {
  checkStore('templatePath', options?.store);
  const resolved = resolveReference(ref, options.repositories);
  const entry = await readStoredEntry(options.store, resolved.key);
  if (!entry) {
    throw new TemplatesError('NOT_STORED', `${resolved.ref} is not in the store ${options.store.root}`, {
      ref: resolved.ref,
      path: options.store.root,
      hint: `run: templates fetch ${resolved.ref}`,
    });
  }
  await touchLastUse(options.store, resolved.key, (options.now ?? Date.now)());
  return entry.path;
}
