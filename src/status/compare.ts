// How a mirror's copy compares with the primary's (pure): in sync, behind by how many revisions and since when, or diverged.
import type { Repository } from '../repository/model.js';
import type { RepositoryStatus, SyncState } from './model.js';
import type { CopyReading } from './read-copy.js';

type Sync = RepositoryStatus['sync'];

const sync = (state: SyncState, behindRevisions: number | null = null, since: number | null = null): Sync => ({
  state,
  behindRevisions,
  since,
});

/** Every `template:version` a repository lists. */
function versionsOf(repository: Repository): Set<string> {
  const out = new Set<string>();
  for (const [name, template] of repository.templates) {
    if (template.ok)
      for (const [version, entry] of template.value.versions) if (entry.ok) out.add(`${name}:${version}`);
  }
  return out;
}

/**
 * A mirror is in sync when its JSON has the primary's bytes; behind when its revision is lower (by the difference,
 * since the primary published its own) or, without revisions, when it lists a subset of the primary's versions;
 * diverged otherwise (same revision with other bytes, a higher revision, or versions the primary lacks).
 */
export function compareCopies(primary: CopyReading, mirror: CopyReading): Sync {
  if (!mirror.repository) return sync('down');
  if (!primary.repository) return sync('unknown');
  if (primary.digest === mirror.digest) return sync('in-sync', 0);
  const [p, m] = [primary.repository, mirror.repository];
  if (p.revision !== undefined && m.revision !== undefined) {
    if (m.revision < p.revision) return sync('behind', p.revision - m.revision, p.published ?? null);
    return sync('diverged');
  }
  const theirs = versionsOf(m);
  const ours = versionsOf(p);
  const subset = [...theirs].every((ref) => ours.has(ref));
  return subset && theirs.size < ours.size ? sync('behind', null, p.published ?? null) : sync('diverged');
}
