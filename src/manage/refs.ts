// Which stored entry a reference names: `repo:name:version` directly, shorter forms through the configured repositories.
import { TemplatesError } from '../errors.js';
import type { RepositorySet } from '../repository/set.js';
import { isValidName } from '../repository/reference.js';
import { resolveReference } from '../repository/resolve.js';
import type { VersionKey } from '../store/layout.js';

/** A fully qualified reference needs no repository (the entry may come from one no longer configured). */
export function storedKey(ref: string, repositories?: RepositorySet): VersionKey {
  const parts = ref.split(':');
  if (parts.length === 3 && parts.every(isValidName)) {
    const [repository, template, version] = parts as [string, string, string];
    return { repository, template, version };
  }
  if (!repositories || repositories.size === 0) {
    throw new TemplatesError(
      'BAD_REFERENCE',
      `${JSON.stringify(ref)}: give the full repo:name:version of a stored template`,
      {
        ref,
        hint: 'see: templates list --stored',
      },
    );
  }
  return resolveReference(ref, repositories).key;
}
