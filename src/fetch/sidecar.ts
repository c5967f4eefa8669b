// A version's `.hash` or `.metadata` read at its source, from the primary else a mirror, as a fetch would read them.
import type { Context } from '../context.js';
import { providerFor, type Provider } from '../providers/index.js';
import type { VersionSpec } from '../repository/model.js';
import type { Store } from '../store/store.js';
import { tryServers } from './servers.js';
import { readHash, readMetadata } from './source.js';

export interface SidecarOptions {
  /** For messages: the entry's name. */
  what: string;
  store: Store;
  context: Context;
  signal?: AbortSignal;
}

/**
 * The version's metadata as JSON text, or its image digest as `algo:hex`; undefined when the source has no `.hash`.
 * An http source's servers are tried in health order (the store's record of them), as a fetch tries them.
 */
export async function readSidecar(
  version: VersionSpec,
  kind: 'metadata' | 'hash',
  options: SidecarOptions,
): Promise<string | undefined> {
  const { signal } = options;
  const read = async (provider: Provider) => {
    if (kind === 'metadata') return JSON.stringify(await readMetadata(provider, version.handle, signal));
    const digest = await readHash(provider, version.handle, signal);
    return digest ? `${digest.algorithm}:${digest.hex}` : undefined;
  };
  return readAtSource(version, options, read);
}

/**
 * `read` of the version's source: an http source's servers in health order (the store's record of them), as a fetch
 * tries them, until one delivers; any other source once.
 */
export async function readAtSource<T>(
  version: VersionSpec,
  options: SidecarOptions,
  read: (provider: Provider) => Promise<T>,
): Promise<T> {
  const { signal } = options;
  if (version.source.type !== 'http') return read(providerFor(version.source, options.context.http));
  const servers = {
    what: options.what,
    health: options.store.serverHealth,
    handle: version.handle,
    ...(signal ? { signal } : {}),
  };
  return (await tryServers(options.context, version.source, servers, ({ provider }) => read(provider))).value;
}
