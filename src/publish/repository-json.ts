// The repository JSON that `templates index` writes (pure): lago's format plus the optional hash/size/format/zst fields.

export interface IndexedVersion {
  template: string;
  version: string;
  handle: string;
  timestamp: number;
  sha1: string;
  compressedSha256: string;
  /** The `.zst` beside the `.xz`, when written. */
  zst?: { sha256: string; size: number };
  /** The `.caibx` beside them, when written (its chunks are in the directory's `default.castr/`). */
  caibx?: { sha256: string; size: number };
  size: number;
  format: string;
  /** From the metadata, for virt-builder's index (not in the repository JSON). */
  arch?: string;
  osinfo?: string;
}

export type RepositorySource = { type: 'file'; root: string } | { type: 'http'; baseurl: string };

/** What `templates index` adds at the top level: the revision (bumped on every change), when, and the mirrors. */
export interface RepositoryTop {
  revision?: number;
  /** Seconds since the epoch. */
  published?: number;
  /** Mirror base URLs of the repository's one source. */
  mirrors?: string[];
}

/** Templates sorted by name, versions by timestamp (then name), so the same input gives the same bytes. */
export function repositoryJson(
  name: string,
  source: RepositorySource,
  versions: readonly IndexedVersion[],
  top: RepositoryTop = {},
): string {
  const args = source.type === 'file' ? { root: source.root } : { baseurl: source.baseurl };
  const templates: Record<string, { versions: Record<string, unknown> }> = {};
  const sorted = [...versions].sort(
    (a, b) => cmp(a.template, b.template) || a.timestamp - b.timestamp || cmp(a.version, b.version),
  );
  for (const v of sorted) {
    templates[v.template] ??= { versions: {} };
    templates[v.template]!.versions[v.version] = {
      source: name,
      handle: v.handle,
      timestamp: v.timestamp,
      hash: `sha1:${v.sha1}`,
      compressed_hash: `sha256:${v.compressedSha256}`,
      ...(v.zst ? { zst_hash: `sha256:${v.zst.sha256}`, zst_size: v.zst.size } : {}),
      ...(v.caibx ? { caibx_hash: `sha256:${v.caibx.sha256}`, caibx_size: v.caibx.size } : {}),
      size: v.size,
      format: v.format,
    };
  }
  const head = {
    name,
    ...(top.revision !== undefined ? { revision: top.revision } : {}),
    ...(top.published !== undefined ? { published: top.published } : {}),
  };
  const mirrors = top.mirrors?.length ? { mirrors: { [name]: top.mirrors } } : {};
  return `${JSON.stringify({ ...head, sources: { [name]: { type: source.type, args } }, ...mirrors, templates }, null, 2)}\n`;
}

/**
 * The JSON to write over `previous` (the file as it is, if any): unchanged when only the revision would differ,
 * else with the revision one higher than the previous one's (1 for a new file) and `published` now.
 */
export function nextRepositoryJson(
  previous: string | undefined,
  nowSeconds: number,
  build: (top: RepositoryTop) => string,
  mirrors: string[],
): string {
  let before: { revision?: unknown; published?: unknown } = {};
  try {
    before = previous === undefined ? {} : (JSON.parse(previous) as typeof before);
  } catch {
    before = {};
  }
  const revision = Number.isSafeInteger(before.revision) ? (before.revision as number) : 0;
  const published = typeof before.published === 'number' ? before.published : undefined;
  const same = build({ revision, ...(published !== undefined ? { published } : {}), mirrors });
  if (same === previous) return same;
  return build({ revision: revision + 1, published: nowSeconds, mirrors });
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
