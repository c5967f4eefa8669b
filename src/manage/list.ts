// list: the configured repositories' templates and versions, newest first, with stored state and broken entries.
import type { RepositorySet } from '../repository/set.js';
import { readStoredEntry, type Store } from '../store/store.js';

export interface ListedVersion {
  ref: string;
  repository: string;
  template: string;
  /** Null when the whole template is broken. */
  version: string | null;
  timestamp: number | null;
  stored: boolean;
  /** Why this template or version cannot be fetched (its ENTRY_BROKEN message). */
  broken?: string;
}

/** Versions of `only` (repository names; default all), each template's newest first; broken ones last. */
export async function listTemplates({
  repositories,
  store,
  only = [],
}: {
  repositories: RepositorySet;
  store: Store;
  only?: string[];
}): Promise<ListedVersion[]> {
  const out: ListedVersion[] = [];
  for (const repository of repositories) {
    if (only.length && !only.includes(repository.name)) continue;
    for (const [name, template] of [...repository.templates].sort(([a], [b]) => a.localeCompare(b))) {
      if (!template.ok) {
        out.push({
          ref: `${repository.name}:${name}`,
          repository: repository.name,
          template: name,
          version: null,
          timestamp: null,
          stored: false,
          broken: template.error.message,
        });
        continue;
      }
      const versions = [...template.value.versions];
      const good = versions.flatMap(([, v]) => (v.ok ? [v.value] : [])).sort((a, b) => b.timestamp - a.timestamp);
      for (const version of good) {
        const key = { repository: repository.name, template: name, version: version.name };
        out.push({
          ref: `${repository.name}:${name}:${version.name}`,
          repository: repository.name,
          template: name,
          version: version.name,
          timestamp: version.timestamp,
          stored: (await readStoredEntry(store, key)) !== undefined,
        });
      }
      for (const [versionName, version] of versions) {
        if (version.ok) continue;
        out.push({
          ref: `${repository.name}:${name}:${versionName}`,
          repository: repository.name,
          template: name,
          version: versionName,
          timestamp: null,
          stored: false,
          broken: version.error.message,
        });
      }
    }
  }
  return out;
}
