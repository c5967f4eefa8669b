// The repository JSON that `templates index` writes (pure): lago's format plus the optional hash/size/format fields.

export interface IndexedVersion {
  template: string;
  version: string;
  handle: string;
  timestamp: number;
  sha1: string;
  compressedSha256: string;
  size: number;
  format: string;
}

export type RepositorySource = { type: 'file'; root: string } | { type: 'http'; baseurl: string };

/** Templates sorted by name, versions by timestamp (then name), so the same input gives the same bytes. */
export function repositoryJson(name: string, source: RepositorySource, versions: readonly IndexedVersion[]): string {
  const args = source.type === 'file' ? { root: source.root } : { baseurl: source.baseurl };
  const templates: Record<string, { versions: Record<string, unknown> }> = {};
  const sorted = [...versions].sort((a, b) => cmp(a.template, b.template) || a.timestamp - b.timestamp || cmp(a.version, b.version));
  for (const v of sorted) {
    templates[v.template] ??= { versions: {} };
    templates[v.template]!.versions[v.version] = {
      source: name,
      handle: v.handle,
      timestamp: v.timestamp,
      hash: `sha1:${v.sha1}`,
      compressed_hash: `sha256:${v.compressedSha256}`,
      size: v.size,
      format: v.format,
    };
  }
  return `${JSON.stringify({ name, sources: { [name]: { type: source.type, args } }, templates }, null, 2)}\n`;
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
