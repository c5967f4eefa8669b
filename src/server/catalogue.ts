// The served repositories (pure): every upstream version plus what only the store holds, as ServedVersions and as lago JSON.
import type { Repository, VersionSpec } from '../repository/model.js';
import type { VersionKey } from '../repository/reference.js';
import type { RepositorySet } from '../repository/set.js';
import { compressedPath, entryName } from '../store/layout.js';
import type { StoredSummary } from '../store/inventory.js';
import { servedVersion, type ServedVersion } from './served-version.js';

export interface Catalogue {
  /** Repository names, sorted. */
  names(): string[];
  /** Every served version of a repository, by template then version; undefined for an unknown repository. */
  versions(repository: string): ServedVersion[] | undefined;
  version(key: VersionKey): ServedVersion | undefined;
  /** The upstream description of a version, when a configured repository has it. */
  upstream(key: VersionKey): VersionSpec | undefined;
  /** The configured (upstream) repository of that name, as it was loaded. */
  repository(name: string): Repository | undefined;
}

function createCatalogue(root: string, repositories: RepositorySet, stored: StoredSummary[]): Catalogue {
  const storedByName = new Map(stored.map((entry) => [entry.ref, entry]));
  const keys = new Map<string, VersionKey[]>();
  const add = (key: VersionKey) => {
    const list = keys.get(key.repository) ?? [];
    if (!list.some((k) => k.template === key.template && k.version === key.version)) list.push(key);
    keys.set(key.repository, list);
  };
  for (const repository of repositories) {
    for (const [template, entry] of repository.templates) {
      if (!entry.ok) continue;
      for (const [version, spec] of entry.value.versions)
        if (spec.ok) add({ repository: repository.name, template, version });
    }
  }
  for (const entry of stored) add(entry.key);
  const describe = (key: VersionKey) =>
    servedVersion(key, repositories.version(key), storedByName.get(entryName(key)), (compression) =>
      compressedPath(root, key, compression),
    );
  return {
    names: () => [...keys.keys()].sort(),
    versions(repository) {
      const list = keys.get(repository);
      if (!list) return undefined;
      return list
        .map(describe)
        .filter((v): v is ServedVersion => v !== undefined)
        .sort(
          (a, b) =>
            cmp(a.key.template, b.key.template) || a.timestamp - b.timestamp || cmp(a.key.version, b.key.version),
        );
    },
    version: (key) =>
      keys.get(key.repository)?.some((k) => k.template === key.template && k.version === key.version)
        ? describe(key)
        : undefined,
    upstream: (key) => repositories.version(key),
    repository: (name) => repositories.get(name),
  };
}

/**
 * The catalogue of the current repositories and store snapshot, built again only when either changed (the
 * repositories were reloaded, or the store read again): file requests do not rebuild it each time.
 */
export function currentCatalogue(
  root: string,
  repositories: () => RepositorySet,
  snapshot: () => Promise<{ entries: StoredSummary[] }>,
): () => Promise<Catalogue> {
  let last: { repositories: RepositorySet; entries: StoredSummary[]; catalogue: Catalogue } | undefined;
  return async () => {
    const [set, { entries }] = [repositories(), await snapshot()];
    if (last?.repositories !== set || last.entries !== entries)
      last = { repositories: set, entries, catalogue: createCatalogue(root, set, entries) };
    return last.catalogue;
  };
}

/** One version as lago JSON: the source and handle given, and what is known of its digests, size and format. */
export function versionJson(v: ServedVersion, source: string, handle: string): Record<string, unknown> {
  return {
    source,
    handle,
    timestamp: v.timestamp,
    ...(v.hash ? { hash: v.hash } : {}),
    ...(v.compressedHash ? { compressed_hash: v.compressedHash } : {}),
    ...(v.zst ? { zst_hash: v.zst.hash, ...(v.zst.size !== undefined ? { zst_size: v.zst.size } : {}) } : {}),
    ...(v.size !== undefined ? { size: v.size } : {}),
    ...(v.format ? { format: v.format } : {}),
    ...(v.caibx
      ? { caibx_hash: v.caibx.hash, ...(v.caibx.size !== undefined ? { caibx_size: v.caibx.size } : {}) }
      : {}),
  };
}

/** The lago-format JSON of one served repository: the same names as upstream, one http source pointing back here. */
export function neighbourJson(name: string, versions: ServedVersion[], baseurl: string, upstream?: string): string {
  const templates: Record<string, { versions: Record<string, unknown> }> = {};
  for (const v of versions) {
    templates[v.key.template] ??= { versions: {} };
    templates[v.key.template]!.versions[v.key.version] = versionJson(
      v,
      'cache',
      `${v.key.template}/${v.key.version}/image`,
    );
  }
  // `upstream`: the upstream JSON exactly as loaded, beside its .minisig (docs/trust.md): neighbours that trust its key check both.
  return `${JSON.stringify({ name, ...(upstream ? { upstream } : {}), sources: { cache: { type: 'http', args: { baseurl } } }, templates }, null, 2)}\n`;
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The newest stored version of each served template (by timestamp, then name): what the catalogues of other clients
 * make renditions for; older versions are listed only once their renditions exist (each would be a whole copy).
 */
export function newestStored(catalogue: Catalogue): ServedVersion[] {
  const newest = new Map<string, ServedVersion>();
  for (const name of catalogue.names())
    for (const version of catalogue.versions(name) ?? []) {
      if (!version.stored) continue;
      const id = `${version.key.repository}\0${version.key.template}`;
      const known = newest.get(id);
      if (
        !known ||
        version.timestamp > known.timestamp ||
        (version.timestamp === known.timestamp && version.key.version > known.key.version)
      )
        newest.set(id, version);
    }
  return [...newest.values()];
}
